"""Signed bundles: one push, signed as several envelopes of at most N sites each.

An envelope lists every site it is for and is published, retained, on each of those sites' own
``config/set``. One envelope for a fleet of 3,200 sites is 60 KB, kept 3,200 times by the broker
(~192 MB) and downloaded by each clinic over its thin link for a one-line change. Signed as
envelopes of 100 sites each, every copy is ~2.5 KB (docs/benchmarks.md).

    payload for all the sites --sign_bundle(key, chunk_size)--> Bundle --to_bytes--> the file
    the file's bytes --parse_bundle--> Bundle (every envelope shape-checked, all alike)
    Bundle.for_site(site) --> the envelope that lists the site: what is published to it

The file is JSON lines: one envelope a line, exactly the bytes published (an envelope is
canonical JSON, which has no raw line break). A file of one envelope, what ``fleet sign`` wrote
before bundles, is a bundle of one. Blank lines and whitespace around a line are ignored.

All envelopes of a bundle say the same thing and differ only in their ``sites``: one key, one
kind, one version and content, one ``issued_at``/``not_after``; no site is in two of them. A
bundle that breaks this is refused whole (``BundleError``), so a rollout never sends one version
to some sites and another to the rest. Signatures are checked by the sites (the centre need not
hold the operator's public key); a bundle is ordinary signed pushes, and agents need nothing new.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.remote.envelope import MAX_SITES, Envelope, Malformed, open_envelope, seal, sha256_hex

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

DEFAULT_CHUNK_SIZE = 100
MAX_BUNDLE_BYTES = 64 * 1024 * 1024
MAX_ENVELOPES = MAX_SITES       # each lists at least one site, and no site twice


class BundleError(Malformed):
    """A bundle file that cannot be used as one push (the message says which line and why)."""


@dataclass(frozen=True)
class Signed:
    """One envelope of a bundle: its exact bytes (what is published) and what they say."""

    raw: bytes
    envelope: Envelope


@dataclass(frozen=True)
class Bundle:
    """Envelopes of one push, checked alike; ``index`` says which envelope lists each site."""

    envelopes: tuple[Signed, ...]
    index: Mapping[str, int]

    @property
    def first(self) -> Envelope:
        return self.envelopes[0].envelope

    @property
    def sites(self) -> tuple[str, ...]:
        """Every site signed for, in order."""
        return tuple(sorted(self.index))

    def for_site(self, site: str) -> bytes:
        """The envelope that lists ``site`` (KeyError for a site the bundle is not for)."""
        return self.envelopes[self.index[site]].raw

    def to_bytes(self) -> bytes:
        """The envelopes, one a line (no final line break; a bundle of one is its envelope)."""
        return b"\n".join(s.raw for s in self.envelopes)

    @property
    def sha256(self) -> str:
        return sha256_hex(self.to_bytes())

    @property
    def largest(self) -> int:
        """Bytes of the largest envelope: what one site downloads at most."""
        return max(len(s.raw) for s in self.envelopes)


def chunks(sites: Iterable[str], size: int) -> list[list[str]]:
    """The sites in order, ``size`` at a time (site ids of a region sort together)."""
    if not 1 <= size <= MAX_SITES:
        raise ValueError(f"chunk size must be 1 to {MAX_SITES}, got {size}")
    ordered = sorted(set(sites))
    return [ordered[i:i + size] for i in range(0, len(ordered), size)]


def sign_bundle(payload: Mapping[str, Any], key: Ed25519PrivateKey, *,
                chunk_size: int = DEFAULT_CHUNK_SIZE) -> Bundle:
    """Sign ``payload`` (made for all its ``sites``) as one envelope per ``chunk_size`` sites;
    everything but ``sites`` is the same in each."""
    raws = [seal({**payload, "sites": part}, key)
            for part in chunks(payload["sites"], chunk_size)]
    return parse_bundle(b"\n".join(raws))


def parse_bundle(data: bytes, *, source: str = "bundle") -> Bundle:
    """Every envelope of a bundle file, shape-checked and alike. Raises ``BundleError``."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(f"{source}: {len(data):,} bytes, more than a bundle may have "
                          f"({MAX_BUNDLE_BYTES:,})")
    lines = [(n, stripped) for n, line in enumerate(data.split(b"\n"), 1)
             if (stripped := line.strip())]
    if not lines:
        raise BundleError(f"{source}: no envelope in it")
    if len(lines) > MAX_ENVELOPES:
        raise BundleError(f"{source}: {len(lines):,} envelopes, more than {MAX_ENVELOPES:,}")
    envelopes: list[Signed] = []
    index: dict[str, int] = {}
    first_line = lines[0][0]
    for n, raw in lines:
        try:
            env = open_envelope(raw)
        except Malformed as exc:
            raise BundleError(f"{source} line {n}: {exc}") from exc
        if envelopes:
            _alike(envelopes[0].envelope, env, f"{source} line {n}", f"line {first_line}")
        for site in env.payload.sites:
            if site in index:
                raise BundleError(f"{source} line {n}: site {site} is listed in two envelopes "
                                  "(each site must get exactly one)")
            index[site] = len(envelopes)
        envelopes.append(Signed(raw, env))
    return Bundle(tuple(envelopes), index)


def _alike(first: Envelope, env: Envelope, where: str, first_where: str) -> None:
    a, b = first.payload, env.payload
    if env.key_id != first.key_id:
        raise BundleError(f"{where}: signed with key {env.key_id}, {first_where} with key "
                          f"{first.key_id} (one bundle, one signing key)")
    if b.kind != a.kind:
        raise BundleError(f"{where}: a {b.kind} envelope, {first_where} is a {a.kind}")
    if b.body.get("version") != a.body.get("version"):
        raise BundleError(f"{where}: version {b.body.get('version')!r:.30}, {first_where} has "
                          f"{a.body.get('version')!r:.30} (one bundle, one version)")
    if b.body != a.body:
        raise BundleError(f"{where}: its content differs from {first_where}'s (one bundle, one "
                          "push; only the sites may differ)")
    if (b.issued_at, b.not_after) != (a.issued_at, a.not_after):
        raise BundleError(f"{where}: issued_at/not_after differ from {first_where}'s (a bundle "
                          "is signed in one go)")
