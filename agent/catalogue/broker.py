"""Why the agent is not connected to the broker (``agent.publish.connect_errors``), in English
and Mexican Spanish. Arguments are addresses, OpenSSL mnemonics and errno names: the same in
every language; OS errors are nested codes (agent.oserror). The English texts keep the words the journal showed before (scripts grep them).
"""

from __future__ import annotations

_CHECK_CA = {"en": "check mqtt.ca_file and the PC's clock",
             "es": "revise mqtt.ca_file y el reloj de la PC"}

MESSAGES: dict[str, dict[str, str]] = {
    "broker.unreachable": {
        "en": "nothing listening at broker {where} (broker down or wrong port)",
        "es": "nada escucha en el bróker {where} (bróker apagado o puerto equivocado)"},
    "broker.no_route": {
        "en": "cannot connect to broker {where}: {error}; is the internet link up?",
        "es": "no se puede conectar al bróker {where}: {error}; ¿funciona el enlace a internet?"},
    "broker.timeout": {
        "en": "no answer from broker {where} in time (link down, firewall, or broker overloaded)",
        "es": "sin respuesta a tiempo del bróker {where} (enlace caído, firewall o bróker saturado)"},
    "broker.closed": {
        "en": "broker {where} closed the connection during the handshake",
        "es": "el bróker {where} cerró la conexión durante el saludo inicial"},
    "broker.connect_failed": {
        "en": "cannot connect to broker {where}: {error}",
        "es": "no se puede conectar al bróker {where}: {error}"},
    "dns.failed": {
        "en": "cannot resolve broker host {host} (DNS)",
        "es": "no se puede resolver el nombre del bróker {host} (DNS)"},
    "tls.verify_failed": {
        "en": "TLS: the certificate of broker {where} could not be verified (OpenSSL error {verify_code}); "
              + _CHECK_CA["en"],
        "es": "TLS: no se pudo verificar el certificado del bróker {where} (error OpenSSL {verify_code}); "
              + _CHECK_CA["es"]},
    "tls.verify_failed.untrusted": {
        "en": "TLS: the certificate of broker {where} could not be verified (not signed by the CA in "
              "mqtt.ca_file); " + _CHECK_CA["en"],
        "es": "TLS: no se pudo verificar el certificado del bróker {where} (no lo firmó la CA de "
              "mqtt.ca_file); " + _CHECK_CA["es"]},
    "tls.verify_failed.expired": {
        "en": "TLS: the certificate of broker {where} could not be verified (expired); " + _CHECK_CA["en"],
        "es": "TLS: no se pudo verificar el certificado del bróker {where} (vencido); " + _CHECK_CA["es"]},
    "tls.verify_failed.not_yet_valid": {
        "en": "TLS: the certificate of broker {where} could not be verified (not valid yet: is the "
              "PC's clock behind?); " + _CHECK_CA["en"],
        "es": "TLS: no se pudo verificar el certificado del bróker {where} (aún no es válido: ¿está "
              "atrasado el reloj de la PC?); " + _CHECK_CA["es"]},
    "tls.verify_failed.hostname": {
        "en": "TLS: the certificate of broker {where} could not be verified (it is not for {host}); "
              "check mqtt.host",
        "es": "TLS: no se pudo verificar el certificado del bróker {where} (no es para {host}); "
              "revise mqtt.host"},
    "tls.handshake_failed": {
        "en": "TLS handshake with broker {where} failed ({reason}); is it a TLS port, and does it "
              "accept our client certificate?",
        "es": "falló la negociación TLS con el bróker {where} ({reason}); ¿es un puerto TLS y acepta "
              "nuestro certificado de cliente?"},
    "tls.files_unreadable": {
        "en": "cannot read the TLS file {path}: {error}; check mqtt.ca_file, cert_file, key_file",
        "es": "no se puede leer el archivo TLS {path}: {error}; revise mqtt.ca_file, cert_file, key_file"},
    "tls.files_bad": {
        "en": "the TLS files are not usable ({reason}); check mqtt.ca_file, cert_file, key_file",
        "es": "los archivos TLS no sirven ({reason}); revise mqtt.ca_file, cert_file, key_file"},
    "broker.refused": {
        "en": "broker {where} refused the connection (reason code {code})",
        "es": "el bróker {where} rechazó la conexión (código {code})"},
    "broker.refused.unsupported_protocol": {
        "en": "broker {where} refused the connection: it does not speak this MQTT version; try mqtt.protocol = \"3.1.1\"",
        "es": "el bróker {where} rechazó la conexión: no habla esta versión de MQTT; pruebe mqtt.protocol = \"3.1.1\""},
    "broker.refused.client_id_not_valid": {
        "en": "broker {where} refused the connection: client id not valid (mqtt.client_id)",
        "es": "el bróker {where} rechazó la conexión: id de cliente no válido (mqtt.client_id)"},
    "broker.refused.bad_credentials": {
        "en": "broker {where} refused the connection: bad user name or password (mqtt.username, mqtt.password)",
        "es": "el bróker {where} rechazó la conexión: usuario o contraseña incorrectos (mqtt.username, mqtt.password)"},
    "broker.refused.not_authorized": {
        "en": "broker {where} refused the connection: not authorized (check mqtt.username and mqtt.password; Mosquitto says this for a wrong password too; or the central team has not allowed this site yet)",
        "es": "el bróker {where} rechazó la conexión: no autorizado (revise mqtt.username y mqtt.password; Mosquitto lo dice también ante una contraseña incorrecta; o el equipo central aún no da de alta este sitio)"},
    "broker.refused.server_unavailable": {
        "en": "broker {where} refused the connection: server unavailable (retrying)",
        "es": "el bróker {where} rechazó la conexión: servidor no disponible (se reintenta)"},
    "broker.refused.server_busy": {
        "en": "broker {where} refused the connection: server busy (retrying)",
        "es": "el bróker {where} rechazó la conexión: servidor ocupado (se reintenta)"},
    "broker.refused.banned": {
        "en": "broker {where} refused the connection: this client is banned (for now)",
        "es": "el bróker {where} rechazó la conexión: este cliente está bloqueado (por ahora)"},
    "broker.refused.bad_auth_method": {
        "en": "broker {where} refused the connection: authentication method not accepted",
        "es": "el bróker {where} rechazó la conexión: método de autenticación no aceptado"},
    "broker.refused.packet_too_large": {
        "en": "broker {where} refused the connection: packet too large",
        "es": "el bróker {where} rechazó la conexión: paquete demasiado grande"},
    "broker.refused.quota_exceeded": {
        "en": "broker {where} refused the connection: quota exceeded (retrying)",
        "es": "el bróker {where} rechazó la conexión: cuota excedida (se reintenta)"},
    "broker.refused.use_another_server": {
        "en": "broker {where} refused the connection: use another server",
        "es": "el bróker {where} rechazó la conexión: use otro servidor"},
    "broker.refused.server_moved": {
        "en": "broker {where} refused the connection: server moved",
        "es": "el bróker {where} rechazó la conexión: el servidor cambió de dirección"},
    "broker.refused.rate_exceeded": {
        "en": "broker {where} refused the connection: too many connections (retrying more slowly)",
        "es": "el bróker {where} rechazó la conexión: demasiadas conexiones (se reintenta más despacio)"},

    # -- the backlog drain budget from the centre (agent.publish.budget) ----------------------
    "budget.not_json": {
        "en": "drain budget on {topic} ignored: not a JSON object",
        "es": "presupuesto de envío en {topic} ignorado: no es un objeto JSON"},
    "budget.too_large": {
        "en": "drain budget on {topic} ignored: larger than {max} bytes",
        "es": "presupuesto de envío en {topic} ignorado: mayor que {max} bytes"},
    "budget.bad_version": {
        "en": "drain budget on {topic} ignored: unknown version {v}",
        "es": "presupuesto de envío en {topic} ignorado: versión desconocida {v}"},
    "budget.bad_kbps": {
        "en": "drain budget on {topic} ignored: kbps must be a number from {min} to {max}",
        "es": "presupuesto de envío en {topic} ignorado: kbps debe ser un número de {min} a {max}"},
}
