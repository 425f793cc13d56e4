"""Test certificates made with ``cryptography``: a CA, a broker certificate for 127.0.0.1 and
client certificates, so TLS is exercised for real against Mosquitto."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOW = dt.datetime.now(dt.timezone.utc)


@dataclass
class Pki:
    ca: Path
    cert: Path
    key: Path
    ca_key: object = None     # to sign client certificates
    ca_cert: object = None


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key, path: Path) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    return path


def _write_cert(cert, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def make_ca(workdir: Path, name: str):
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=30)).not_valid_after(NOW + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert, _write_cert(cert, workdir / f"{name}.crt")


def make_pki(workdir: Path, *, not_after: dt.datetime | None = None) -> Pki:
    """A CA and a broker certificate for 127.0.0.1 it signed (expiring at ``not_after``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert, ca_path = make_ca(workdir, "clinic-test-ca")
    key = _key()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "broker.test")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=400))
            .not_valid_after(not_after or NOW + dt.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return Pki(ca_path, _write_cert(cert, workdir / "broker.crt"), _write_key(key, workdir / "broker.key"),
               ca_key, ca_cert)




def make_client_cert(workdir: Path, ca_key, ca_cert, name: str) -> tuple[Path, Path]:
    """A client certificate (CN = ``name``) signed by the CA: (cert path, key path)."""
    key = _key()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=365))
            .sign(ca_key, hashes.SHA256()))
    return _write_cert(cert, workdir / f"{name}.crt"), _write_key(key, workdir / f"{name}.key")
