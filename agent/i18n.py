"""Every technician-facing text, in English and Spanish: one catalogue, hints included.

``MESSAGES[id] = {"en": ..., "es": ...}``; placeholders are ``str.format`` names and both
languages use the same ones (tests/test_i18n.py checks). The CLI's own words live here; config
problems, device failure reasons and the command line's help in ``agent.catalogue``; all are
merged into ``MESSAGES``.

Code that is not the CLI never speaks a language: it returns a ``Text`` (a message id with its
arguments), rendered where it is shown, in the reader's language. Its English rendering is what
goes to the journal and, for compatibility, into the text fields of payloads.

The language (``language()``): ``--lang``, else the locale (the first of ``LC_ALL``,
``LC_MESSAGES``, ``LANG`` that is set: "es..." is Spanish, any other language English; "C" and
"POSIX" choose nothing, as on many clinic PCs), else the config's ``language`` key (the
installer writes ``language = "es"``), else English. The daemon's log stays in English: it is
read centrally, and searched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LANGUAGES = ("en", "es")

MESSAGES: dict[str, dict[str, str]] = {
    # -- general ----------------------------------------------------------------------------------
    "mark.ok": {"en": "OK", "es": "OK"},
    "mark.warn": {"en": "WARN", "es": "AVISO"},
    "mark.fail": {"en": "FAIL", "es": "FALLA"},
    "mark.skip": {"en": "SKIP", "es": "OMITIDO"},
    "hint.label": {"en": "What to check:", "es": "Qué revisar:"},
    "value.yes": {"en": "yes", "es": "sí"},
    "value.no": {"en": "no", "es": "no"},
    "time.never": {"en": "never", "es": "nunca"},
    "time.ago": {"en": "{when} ago", "es": "hace {when}"},
    "time.s": {"en": "{n} s", "es": "{n} s"},
    "time.min": {"en": "{n} min", "es": "{n} min"},
    "time.h_min": {"en": "{h} h {m} min", "es": "{h} h {m} min"},
    "time.d_h": {"en": "{d} d {h} h", "es": "{d} d {h} h"},
    "col.device": {"en": "DEVICE", "es": "EQUIPO"},
    "col.kind": {"en": "KIND", "es": "TIPO"},
    "col.status": {"en": "STATUS", "es": "ESTADO"},
    "col.last_good": {"en": "LAST GOOD READING", "es": "ÚLTIMA LECTURA BUENA"},
    "col.reason": {"en": "REASON", "es": "MOTIVO"},
    "col.unit": {"en": "UNIT", "es": "UNIDAD"},
    "col.line": {"en": "LINE", "es": "LÍNEA"},
    "col.answer": {"en": "ANSWER", "es": "RESPUESTA"},
    "col.version": {"en": "VERSION", "es": "VERSIÓN"},
    "col.community": {"en": "COMMUNITY", "es": "COMUNIDAD"},
    "table.holding": {"en": "holding register", "es": "registro holding"},
    "table.input": {"en": "input register", "es": "registro de entrada"},
    "config.invalid": {
        "en": "{path}: {n} problem(s) in the config:",
        "es": "{path}: {n} problema(s) en la configuración:"},
    "agent.no_permission": {
        "en": "The agent is running, but this user may not use its control socket {path}.",
        "es": "El agente está en marcha, pero este usuario no puede usar su socket de control {path}."},

    # -- status -----------------------------------------------------------------------------------
    "status.title": {"en": "clinic-agent status, site {site}", "es": "Estado de clinic-agent, sitio {site}"},
    "status.agent": {"en": "Agent", "es": "Agente"},
    "status.agent.running": {"en": "running (pid {pid}, up {up})",
                             "es": "en marcha (pid {pid}, desde hace {up})"},
    "status.agent.stopped": {"en": "not running", "es": "detenido"},
    "status.agent_error": {"en": "the agent did not answer the status request: {error}",
                           "es": "el agente no respondió a la consulta de estado: {error}"},
    "status.broker": {"en": "Broker", "es": "Bróker"},
    "status.broker.connected": {"en": "connected to {broker}", "es": "conectado a {broker}"},
    "status.broker.disconnected": {"en": "NOT connected ({error})", "es": "SIN conexión ({error})"},
    "status.last_publish": {"en": "Last publish", "es": "Último envío"},
    "status.buffer": {"en": "Buffer", "es": "Búfer"},
    "status.buffer.value": {
        "en": "{n} reading(s) waiting, oldest {oldest}; {dropped} dropped; {size}",
        "es": "{n} lectura(s) en espera, la más antigua de hace {oldest}; {dropped} descartadas; {size}"},
    "status.buffer.empty": {"en": "nothing waiting; {dropped} dropped; {size}",
                            "es": "nada en espera; {dropped} descartadas; {size}"},
    "status.buffer.rejected": {"en": "{n} set aside (refused by the broker)",
                               "es": "{n} apartadas (rechazadas por el bróker)"},
    "status.config": {"en": "Config", "es": "Configuración"},
    "status.config.local": {"en": "local file {path}", "es": "archivo local {path}"},
    "status.config.pushed": {"en": "pushed version {version} ({state})",
                             "es": "versión {version} enviada de forma remota ({state})"},
    "status.config.applied": {"en": "applied", "es": "aplicada"},
    "status.config.confirming": {"en": "waiting for confirmation", "es": "esperando confirmación"},
    "status.devices": {"en": "Devices", "es": "Equipos"},
    "status.all_ok": {"en": "Everything is working.", "es": "Todo funciona."},
    "status.problems": {"en": "{n} problem(s):", "es": "{n} problema(s):"},
    "status.problem.not_running": {"en": "the agent is not running",
                                   "es": "el agente no está en marcha"},
    "status.problem.broker": {"en": "not connected to the broker: {error}",
                              "es": "sin conexión con el bróker: {error}"},
    "status.problem.device": {"en": "device {device}: {status} - {reason}",
                              "es": "equipo {device}: {status} - {reason}"},
    "status.problem.store": {
        "en": "the buffer file cannot be written; {n} reading(s) held in memory",
        "es": "no se puede escribir el archivo del búfer; {n} lectura(s) retenidas en memoria"},
    "status.problem.config": {
        "en": "{path} has {n} problem(s); a running agent keeps its last good config",
        "es": "{path} tiene {n} problema(s); un agente en marcha conserva su última configuración buena"},

    # -- poll-once, tail --------------------------------------------------------------------------
    "poll.via.agent": {"en": "(asked the running agent: its own connections, one poll each)",
                       "es": "(consultado al agente en marcha: sus propias conexiones, una lectura por equipo)"},
    "poll.via.direct": {"en": "(the agent is not running: polled the devices directly)",
                        "es": "(el agente no está en marcha: se consultó a los equipos directamente)"},
    "poll.no_device": {"en": "no device named {device}; devices: {names}",
                       "es": "no hay ningún equipo llamado {device}; equipos: {names}"},
    "poll.agent_refused": {"en": "the agent refused: {error}", "es": "el agente se negó: {error}"},
    "tail.header": {"en": "Live readings as the agent polls them; Ctrl-C to stop.",
                    "es": "Lecturas en vivo según el agente consulta; Ctrl-C para terminar."},
    "tail.not_running": {"en": "The agent is not running: there are no live readings to show.",
                         "es": "El agente no está en marcha: no hay lecturas en vivo que mostrar."},
    "tail.agent_stopped": {"en": "The agent closed the connection (it stopped or restarted).",
                           "es": "El agente cerró la conexión (se detuvo o se reinició)."},

    # -- buffer -----------------------------------------------------------------------------------
    "buffer.title": {"en": "Buffer {path}", "es": "Búfer {path}"},
    "buffer.waiting": {"en": "Waiting", "es": "En espera"},
    "buffer.readings": {"en": "{n} reading(s)", "es": "{n} lectura(s)"},
    "buffer.oldest": {"en": "Oldest", "es": "La más antigua"},
    "buffer.oldest_value": {"en": "{age} ago ({when})", "es": "hace {age} ({when})"},
    "buffer.dropped": {"en": "Dropped", "es": "Descartadas"},
    "buffer.dropped_value": {"en": "{n} (size or age cap, or a full disk; ever)",
                             "es": "{n} (por límite de tamaño o antigüedad, o disco lleno; en total)"},
    "buffer.rejected": {"en": "Set aside", "es": "Apartadas"},
    "buffer.rejected_value": {"en": "{n} (refused by the broker; buffer export --rejected)",
                              "es": "{n} (rechazadas por el bróker; buffer export --rejected)"},
    "buffer.size": {"en": "Size on disk", "es": "Tamaño en disco"},
    "buffer.in_memory": {"en": "Held in memory", "es": "Retenidas en memoria"},
    "buffer.unreadable": {"en": "Cannot read {path}: {error}", "es": "No se puede leer {path}: {error}"},
    "buffer.held_no_permission": {
        "en": "Cannot read {path}: the running agent holds it, and this user may not use its control socket {socket}.",
        "es": "No se puede leer {path}: el agente en marcha lo tiene abierto, y este usuario no puede usar su socket de control {socket}."},
    "buffer.held": {
        "en": "Cannot read {path}: a running agent holds it, and no agent answers on the control socket {socket}.",
        "es": "No se puede leer {path}: un agente en marcha lo tiene abierto, y ningún agente responde en el socket de control {socket}."},
    "export.incomplete": {
        "en": "The export is incomplete ({n} reading(s) written): {error}",
        "es": "La exportación está incompleta ({n} lectura(s) escritas): {error}"},
    "export.bad_time": {
        "en": "not a date/time: {text!r} (use ISO 8601, e.g. 2026-11-20T08:00 or 2026-11-20)",
        "es": "no es una fecha/hora: {text!r} (use ISO 8601, p. ej. 2026-11-20T08:00 o 2026-11-20)"},
    "export.done": {"en": "{n} reading(s) exported to {file}",
                    "es": "{n} lectura(s) exportadas a {file}"},

    # -- events (clinic-agent events; the active problems status shows first) --------------------
    "ev.mains_lost": {"en": "no mains power, running on battery",
                      "es": "sin luz de la red, funcionando con batería"},
    "ev.mains_lost.meter": {"en": "no mains power", "es": "sin luz de la red"},
    "ev.generator_failed": {"en": "the generator did not take the load",
                            "es": "la planta de emergencia no tomó la carga"},
    "ev.battery_low": {"en": "battery low", "es": "batería baja"},
    "ev.battery_replace": {"en": "the UPS asks for a new battery", "es": "el UPS pide cambiar la batería"},
    "ev.battery_fault": {"en": "battery fault", "es": "falla de la batería"},
    "ev.ups_fault": {"en": "UPS fault", "es": "falla del UPS"},
    "ev.overload": {"en": "UPS overloaded", "es": "UPS sobrecargado"},
    "ev.bypass": {"en": "UPS on bypass: the load is not protected",
                  "es": "UPS en bypass: la carga no está protegida"},
    "ev.voltage_low": {"en": "low voltage", "es": "voltaje bajo"},
    "ev.voltage_high": {"en": "high voltage", "es": "voltaje alto"},
    "ev.frequency_low": {"en": "mains frequency low", "es": "frecuencia de la red baja"},
    "ev.frequency_high": {"en": "mains frequency high", "es": "frecuencia de la red alta"},
    "ev.wan_down": {"en": "no internet", "es": "sin internet"},
    "ev.wan_degraded": {"en": "internet slow or losing packets",
                        "es": "internet lento o con pérdida de paquetes"},
    "ev.device_unreachable": {"en": "not answering", "es": "no responde"},
    "ev.disk_full": {"en": "disk almost full", "es": "disco casi lleno"},
    "ev.buffer_dropping": {"en": "the buffer is dropping readings",
                           "es": "el búfer está descartando lecturas"},
    "ev.clock_unsynced": {"en": "the PC's clock is not set", "es": "el reloj de la PC no está a la hora"},
    "ev.clock_stepped": {"en": "the PC's clock jumped", "es": "el reloj de la PC saltó"},
    "ev.unknown": {"en": "{cond}", "es": "{cond}"},
    "ev.part": {"en": "{what} ({part})", "es": "{what} ({part})"},
    "ev.phase": {"en": "phase {phase}", "es": "fase {phase}"},
    "ev.since_time": {"en": "since {time}", "es": "desde las {time}"},
    "ev.since_date": {"en": "since {date} {time}", "es": "desde el {date} a las {time}"},
    "ev.active": {"en": "{dev}: {what} {since} ({dur})", "es": "{dev}: {what} {since} ({dur})"},
    "ev.flapping": {"en": "{what}, coming and going", "es": "{what}, va y viene"},
    "ev.runtime_left": {"en": "about {min} min of battery left",
                        "es": "quedan unos {min} min de batería"},
    "ev.kind.raise": {"en": "began", "es": "comenzó"},
    "ev.kind.clear": {"en": "ended", "es": "terminó"},
    "ev.kind.flapping": {"en": "coming and going", "es": "va y viene"},
    "ev.lasted": {"en": "lasted {dur}", "es": "duró {dur}"},
    "ev.estimated": {"en": "estimated: the PC or the agent was off", "es": "estimado: la PC o el agente estaban apagados"},
    "events.active_title": {"en": "Active now:", "es": "Activos ahora:"},
    "events.none_active": {"en": "Nothing wrong now.", "es": "Nada falla ahora."},
    "events.title": {"en": "Events since {since}:", "es": "Eventos desde {since}:"},
    "events.none": {"en": "No events since {since}.", "es": "Sin eventos desde {since}."},
    "events.bad_since": {
        "en": "not a time: {text!r} (use 2h, 30m, 7d, or ISO 8601 such as 2026-11-20T08:00)",
        "es": "no es una hora: {text!r} (use 2h, 30m, 7d, o ISO 8601 como 2026-11-20T08:00)"},
    "col.time": {"en": "TIME", "es": "HORA"},
    "col.event": {"en": "EVENT", "es": "EVENTO"},
    "col.duration": {"en": "DURATION", "es": "DURACIÓN"},

    # -- doctor -----------------------------------------------------------------------------------
    "doctor.title": {"en": "clinic-agent doctor: checking each link, in order",
                     "es": "clinic-agent doctor: revisando cada eslabón, en orden"},
    "doctor.all_ok": {"en": "No problem found.", "es": "No se encontró ningún problema."},
    "doctor.failed": {"en": "{n} check(s) failed; the hints above say what to look at.",
                      "es": "{n} revisión(es) fallaron; las indicaciones de arriba dicen qué revisar."},
    "step.config": {"en": "config", "es": "config"},
    "step.agent": {"en": "agent", "es": "agente"},
    "step.clock": {"en": "clock", "es": "reloj"},
    "step.dns": {"en": "DNS", "es": "DNS"},
    "step.tcp": {"en": "TCP", "es": "TCP"},
    "step.tls": {"en": "TLS", "es": "TLS"},
    "step.cert": {"en": "certificate", "es": "certificado"},
    "step.mqtt": {"en": "MQTT", "es": "MQTT"},
    "step.device": {"en": "device", "es": "equipo"},
    "doctor.config.ok": {"en": "{path} is valid: site {site}, {n} device(s)",
                         "es": "{path} es válido: sitio {site}, {n} equipo(s)"},
    "doctor.config.invalid": {"en": "{path} has {n} problem(s):", "es": "{path} tiene {n} problema(s):"},
    "doctor.agent.running_connected": {"en": "running (pid {pid}), connected to {broker}",
                                       "es": "en marcha (pid {pid}), conectado a {broker}"},
    "doctor.agent.running_disconnected": {
        "en": "running (pid {pid}) but not connected to the broker: {error}",
        "es": "en marcha (pid {pid}) pero sin conexión con el bróker: {error}"},
    "doctor.agent.stopped": {"en": "not running (nothing answers on {path}); devices are polled directly",
                             "es": "no está en marcha (nada responde en {path}); se consulta a los equipos directamente"},
    "doctor.agent.no_permission": {"en": "running, but this user may not use {path}",
                                   "es": "en marcha, pero este usuario no puede usar {path}"},
    "doctor.agent.unreachable": {"en": "its control socket {path} does not work: {error}",
                                 "es": "su socket de control {path} no funciona: {error}"},
    "doctor.clock.ok": {"en": "the PC's clock says {now}", "es": "el reloj de la PC marca {now}"},
    "doctor.clock.unset": {"en": "the PC's clock says {now}: it was never set",
                           "es": "el reloj de la PC marca {now}: nunca se puso en hora"},
    "doctor.clock.before_cert": {
        "en": "the PC's clock ({now}) is before the broker's certificate was issued ({since})",
        "es": "el reloj de la PC ({now}) está antes de la emisión del certificado del bróker ({since})"},
    "doctor.skip.no_config": {"en": "broker and device checks need a valid config",
                              "es": "las revisiones del bróker y de los equipos necesitan una configuración válida"},
    "doctor.skip.after": {"en": "not tried: {step} failed above", "es": "no se intentó: falló {step} arriba"},
    "doctor.dns.ip": {"en": "{host} is an IP address; no DNS needed",
                      "es": "{host} es una dirección IP; no hace falta DNS"},
    "doctor.dns.ok": {"en": "{host} -> {addrs}", "es": "{host} -> {addrs}"},
    "doctor.dns.failed": {"en": "cannot resolve {host}: {error}", "es": "no se puede resolver {host}: {error}"},
    "doctor.dns.timeout": {"en": "no DNS answer for {host}", "es": "sin respuesta DNS para {host}"},
    "doctor.tcp.ok": {"en": "{where} accepts connections ({ms} ms)",
                      "es": "{where} acepta conexiones ({ms} ms)"},
    "doctor.tcp.refused": {"en": "{where} refused the connection", "es": "{where} rechazó la conexión"},
    "doctor.tcp.timeout": {"en": "no answer from {where} within {s} s",
                           "es": "sin respuesta de {where} en {s} s"},
    "doctor.tcp.unreachable": {"en": "cannot reach {where}: {error}",
                               "es": "no se puede llegar a {where}: {error}"},
    "doctor.tls.off": {"en": "TLS is off (tls = false): the password travels in clear",
                       "es": "TLS está desactivado (tls = false): la contraseña viaja sin cifrar"},
    "doctor.tls.ok": {"en": "{version} handshake with {where}, certificate trusted (CA: {ca})",
                      "es": "negociación {version} con {where}, certificado de confianza (CA: {ca})"},
    "doctor.tls.files": {"en": "cannot load the TLS files (ca_file {ca}, cert_file {cert}): {error}",
                         "es": "no se pueden cargar los archivos TLS (ca_file {ca}, cert_file {cert}): {error}"},
    "doctor.tls.untrusted": {
        "en": "the broker's certificate is not trusted: {error} (issued by {issuer}, CA used: {ca})",
        "es": "el certificado del bróker no es de confianza: {error} (emitido por {issuer}, CA usada: {ca})"},
    "doctor.tls.expired": {"en": "the broker's certificate expired on {until}",
                           "es": "el certificado del bróker venció el {until}"},
    "doctor.tls.not_yet_valid": {"en": "the broker's certificate is valid only from {since}",
                                 "es": "el certificado del bróker es válido solo a partir del {since}"},
    "doctor.tls.hostname": {"en": "the certificate is for {names}, not for {host}",
                            "es": "el certificado es para {names}, no para {host}"},
    "doctor.tls.verify_other": {"en": "the broker's certificate was refused: {error}",
                                "es": "se rechazó el certificado del bróker: {error}"},
    "doctor.tls.not_tls": {"en": "{where} does not speak TLS", "es": "{where} no habla TLS"},
    "doctor.tls.client_cert": {"en": "the broker refused our client certificate ({error})",
                               "es": "el bróker rechazó nuestro certificado de cliente ({error})"},
    "doctor.tls.failed": {"en": "TLS handshake with {where} failed: {error}",
                          "es": "falló la negociación TLS con {where}: {error}"},
    "doctor.cert.ok": {"en": "valid until {until} ({days} days left), issued by {issuer}",
                       "es": "válido hasta el {until} (quedan {days} días), emitido por {issuer}"},
    "doctor.cert.expires_soon": {"en": "expires on {until}: only {days} day(s) left",
                                 "es": "vence el {until}: quedan solo {days} día(s)"},
    "doctor.cert.expired": {"en": "expired on {until}", "es": "venció el {until}"},
    "doctor.mqtt.ok": {"en": "logged in to {where} as {user}", "es": "sesión iniciada en {where} como {user}"},
    "doctor.mqtt.ok_anonymous": {"en": "connected to {where} (no username configured)",
                                 "es": "conectado a {where} (sin usuario configurado)"},
    "doctor.mqtt.bad_login": {"en": "the broker refused the login of user {user}: {error}",
                              "es": "el bróker rechazó el inicio de sesión del usuario {user}: {error}"},
    "doctor.mqtt.client_id": {"en": "the broker refused the client id: {error}",
                              "es": "el bróker rechazó el identificador de cliente: {error}"},
    "doctor.mqtt.refused": {"en": "the broker refused the connection: {error}",
                            "es": "el bróker rechazó la conexión: {error}"},
    "doctor.mqtt.no_answer": {"en": "no MQTT answer from {where}: {error}",
                              "es": "sin respuesta MQTT de {where}: {error}"},
    "doctor.device.ok": {"en": "{device} ({kind}) answers: {n} value(s)",
                         "es": "{device} ({kind}) responde: {n} valor(es)"},
    "doctor.device.no_values": {"en": "{device} ({kind}) answered but gave no values",
                                "es": "{device} ({kind}) respondió pero no dio ningún valor"},
    "doctor.device.failed": {"en": "{device} ({kind}): {status} - {reason}",
                             "es": "{device} ({kind}): {status} - {reason}"},
    "doctor.device.disabled": {"en": "{device} is disabled in the config",
                               "es": "{device} está desactivado en la configuración"},
    "doctor.device.agent_error": {"en": "the agent could not poll: {error}",
                                  "es": "el agente no pudo consultar: {error}"},

    # -- hints: plain words on what to check ------------------------------------------------------
    "hint.config": {
        "en": "fix each line listed (key path: what is expected), then run: clinic-agent validate",
        "es": "corrija cada línea indicada (ruta de la clave: lo que se espera) y luego ejecute: clinic-agent validate"},
    "hint.no_permission": {
        "en": "run the command with sudo, or add your user to the agent's group and log in again",
        "es": "ejecute el comando con sudo, o agregue su usuario al grupo del agente y vuelva a iniciar sesión"},
    "hint.agent_stopped": {
        "en": "start it with: sudo systemctl start clinic-agent; if it stops again, read: journalctl -u clinic-agent -n 50",
        "es": "inícielo con: sudo systemctl start clinic-agent; si se vuelve a detener, lea: journalctl -u clinic-agent -n 50"},
    "hint.agent_disconnected": {
        "en": "readings wait safely in the buffer; run clinic-agent doctor to find which link fails",
        "es": "las lecturas esperan seguras en el búfer; ejecute clinic-agent doctor para ver qué eslabón falla"},
    "hint.clock_unset": {
        "en": "set the date and time (sudo timedatectl set-time 'YYYY-MM-DD HH:MM') and check NTP "
              "(timedatectl); a flat RTC battery loses the time at every power cut",
        "es": "ponga la fecha y hora (sudo timedatectl set-time 'AAAA-MM-DD HH:MM') y revise NTP "
              "(timedatectl); una pila del RTC agotada pierde la hora en cada corte de luz"},
    "hint.clock_behind": {
        "en": "the PC's clock is probably behind: compare it with a phone, fix it with timedatectl and check NTP",
        "es": "el reloj de la PC probablemente está atrasado: compárelo con un celular, corríjalo con timedatectl y revise NTP"},
    "hint.dns": {
        "en": "check mqtt.host for typos, that the router gives a DNS server (cat /etc/resolv.conf), "
              "and try: getent hosts {host}",
        "es": "revise que mqtt.host esté bien escrito, que el router entregue un servidor DNS (cat /etc/resolv.conf) "
              "y pruebe: getent hosts {host}"},
    "hint.tcp_refused": {
        "en": "the address answers but nothing listens on that port: check mqtt.port (8883 with TLS, "
              "1883 without) and ask the central team whether the broker is up",
        "es": "la dirección responde pero nada escucha en ese puerto: revise mqtt.port (8883 con TLS, "
              "1883 sin TLS) y pregunte al equipo central si el bróker está en marcha"},
    "hint.tcp_timeout": {
        "en": "the internet link is down or a firewall drops the traffic: check the router's WAN light, "
              "the uplink, and that outgoing port {where} is allowed",
        "es": "el enlace a internet está caído o un firewall bloquea el tráfico: revise la luz WAN del router, "
              "el enlace, y que la salida hacia {where} esté permitida"},
    "hint.tcp_unreachable": {
        "en": "this PC has no route there: check its network cable or Wi-Fi and the router",
        "es": "esta PC no tiene ruta hacia allá: revise su cable de red o Wi-Fi y el router"},
    "hint.tls_files": {
        "en": "check that mqtt.ca_file (and cert_file/key_file if set) exist and are readable by the agent",
        "es": "revise que mqtt.ca_file (y cert_file/key_file si se usan) existan y el agente pueda leerlos"},
    "hint.cert_untrusted": {
        "en": "the CA in mqtt.ca_file ({ca}) did not sign the broker's certificate: get the right ca.crt "
              "from the central team (or the broker is not the one you think)",
        "es": "la CA de mqtt.ca_file ({ca}) no firmó el certificado del bróker: pida el ca.crt correcto "
              "al equipo central (o el bróker no es el que usted cree)"},
    "hint.cert_expired": {
        "en": "if the PC's date is right ({now}), the central team must renew the broker's certificate; "
              "if the date is wrong, fix the clock first",
        "es": "si la fecha de la PC es correcta ({now}), el equipo central debe renovar el certificado del bróker; "
              "si la fecha está mal, corrija primero el reloj"},
    "hint.cert_hostname": {
        "en": "set mqtt.host to the name the certificate is for ({names})",
        "es": "ponga en mqtt.host el nombre para el que es el certificado ({names})"},
    "hint.cert_renew": {
        "en": "tell the central team the broker's certificate must be renewed before {until}",
        "es": "avise al equipo central que el certificado del bróker debe renovarse antes del {until}"},
    "hint.not_tls": {
        "en": "this port is plain MQTT: use the broker's TLS port (usually 8883) or ask the central team",
        "es": "este puerto es MQTT sin cifrar: use el puerto TLS del bróker (normalmente 8883) o pregunte al equipo central"},
    "hint.client_cert": {
        "en": "the broker wants a client certificate: set mqtt.cert_file and mqtt.key_file to the files "
              "the central team issued for this clinic",
        "es": "el bróker pide un certificado de cliente: ponga en mqtt.cert_file y mqtt.key_file los archivos "
              "que el equipo central emitió para esta clínica"},
    "hint.tls_other": {
        "en": "check mqtt.tls, mqtt.port and mqtt.ca_file; a proxy or captive portal on the link also breaks TLS",
        "es": "revise mqtt.tls, mqtt.port y mqtt.ca_file; un proxy o portal cautivo en el enlace también rompe TLS"},
    "hint.tls_off": {
        "en": "use tls = true with the broker's TLS port unless the link is private",
        "es": "use tls = true con el puerto TLS del bróker salvo que el enlace sea privado"},
    "hint.mqtt_login": {
        "en": "check mqtt.username and the password in the secrets file (exact, no spaces); the central "
              "team can confirm the clinic's account",
        "es": "revise mqtt.username y la contraseña del archivo de secretos (exacta, sin espacios); el equipo "
              "central puede confirmar la cuenta de la clínica"},
    "hint.mqtt_client_id": {
        "en": "check mqtt.client_id: the broker may accept only ids it knows",
        "es": "revise mqtt.client_id: el bróker puede aceptar solo identificadores que conoce"},
    "hint.mqtt_other": {
        "en": "read the reason; the central team can see the refusal in the broker's log",
        "es": "lea el motivo; el equipo central puede ver el rechazo en el registro del bróker"},
    "hint.mqtt_no_answer": {
        "en": "the port accepts connections but no MQTT broker answers: check mqtt.port and mqtt.tls",
        "es": "el puerto acepta conexiones pero ningún bróker MQTT responde: revise mqtt.port y mqtt.tls"},
    "hint.device.snmp.timeout": {
        "en": "check the router's address in the config, that SNMP is enabled on its LAN side, and the "
              "community or v3 user (a wrong one gets no answer); try: clinic-agent scan snmp --target ADDRESS",
        "es": "revise la dirección del router en la configuración, que SNMP esté activo del lado LAN, y la "
              "comunidad o el usuario v3 (uno incorrecto no recibe respuesta); pruebe: clinic-agent scan snmp --target DIRECCIÓN"},
    "hint.device.snmp.refused": {
        "en": "the router refused our credentials: check the v3 user, auth/priv protocols and keys, or the "
              "view allowed to the community",
        "es": "el router rechazó nuestras credenciales: revise el usuario v3, los protocolos y claves auth/priv, "
              "o la vista permitida a la comunidad"},
    "hint.device.snmp.bad_answer": {
        "en": "the router answered something unexpected: compare with clinic-agent scan snmp and its model",
        "es": "el router respondió algo inesperado: compare con clinic-agent scan snmp y su modelo"},
    "hint.device.modbus.timeout": {
        "en": "check the device is powered, the RS-485 wiring (A/B swapped?, termination), the baud rate, "
              "parity and unit id; try: clinic-agent scan modbus --port /dev/ttyUSB0 (stop the agent first)",
        "es": "revise que el equipo tenga corriente, el cableado RS-485 (¿A/B invertidos?, terminación), la "
              "velocidad, paridad y unit id; pruebe: clinic-agent scan modbus --port /dev/ttyUSB0 (detenga antes el agente)"},
    "hint.device.modbus.refused": {
        "en": "nothing listens at the gateway's address and port: check the gateway is powered, its IP "
              "address and port (usually 502), or the serial port's permissions",
        "es": "nada escucha en la dirección y puerto del gateway: revise que el gateway tenga corriente, su "
              "dirección IP y puerto (normalmente 502), o los permisos del puerto serie"},
    "hint.device.modbus.bad_answer": {
        "en": "the device answers, but not as the register map expects: check addresses (address_base), "
              "types and word order against its manual, and that no other device has the same unit id",
        "es": "el equipo responde, pero no como espera el mapa de registros: revise direcciones (address_base), "
              "tipos y orden de palabras según su manual, y que ningún otro equipo tenga el mismo unit id"},
    "hint.device.timeout": {"en": "check the device's address, power and cabling",
                            "es": "revise la dirección del equipo, su alimentación y el cableado"},
    "hint.device.refused": {"en": "the device refused: check the credentials and port in the config",
                            "es": "el equipo se negó: revise las credenciales y el puerto en la configuración"},
    "hint.device.bad_answer": {"en": "the device answered something unusable: check its settings in the config",
                               "es": "el equipo respondió algo inutilizable: revise su configuración"},
    "hint.device.error": {"en": "read the reason; the agent's log has the details: journalctl -u clinic-agent",
                          "es": "lea el motivo; el registro del agente tiene los detalles: journalctl -u clinic-agent"},
    "hint.device.no_values": {"en": "check the register list or interface filter in the config",
                              "es": "revise la lista de registros o el filtro de interfaces en la configuración"},
    "hint.buffer_held": {
        "en": "the agent may be starting or stopping: try again in a minute; or an agent runs with another config: use it with -c",
        "es": "el agente puede estar iniciando o deteniéndose: intente de nuevo en un minuto; o corre un agente con otra configuración: úsela con -c"},
    "hint.buffer_unreadable": {
        "en": "check the path (buffer.path or state_dir) and run with sudo if it belongs to the agent's user",
        "es": "revise la ruta (buffer.path o state_dir) y use sudo si pertenece al usuario del agente"},
    "hint.scan_port_busy": {
        "en": "a bus has one master: stop the agent first (sudo systemctl stop clinic-agent), scan, then start it",
        "es": "un bus tiene un solo maestro: detenga primero el agente (sudo systemctl stop clinic-agent), escanee y vuelva a iniciarlo"},
    "hint.scan_modbus_serial": {
        "en": "check the device is on, the A/B wires (swap them and retry), the adapter's ground and "
              "termination; try more settings with --baud and --parity",
        "es": "revise que el equipo esté encendido, los cables A/B (inviértalos y reintente), la tierra del "
              "adaptador y la terminación; pruebe otras opciones con --baud y --parity"},
    "hint.scan_modbus_tcp": {
        "en": "check the gateway's serial settings (its web page) match the devices, the wiring behind it, "
              "and --tcp-port; for a plain serial server try --rtu-over-tcp",
        "es": "revise que la configuración serie del gateway (su página web) coincida con los equipos, el "
              "cableado detrás y --tcp-port; para un servidor serie simple pruebe --rtu-over-tcp"},
    "hint.scan_snmp": {
        "en": "enable SNMP on the router's LAN side (read-only), note its community, and retry with "
              "--community NAME; check --target is the router",
        "es": "active SNMP del lado LAN del router (solo lectura), anote su comunidad y reintente con "
              "--community NOMBRE; revise que --target sea el router"},

    # -- scan -------------------------------------------------------------------------------------
    "scan.bad_args": {"en": "bad --units, --baud or --parity (e.g. --units 1-10,100 --baud 9600,19200 --parity N,E)",
                      "es": "--units, --baud o --parity inválidos (p. ej. --units 1-10,100 --baud 9600,19200 --parity N,E)"},
    "scan.interrupted": {"en": "scan interrupted", "es": "escaneo interrumpido"},
    "scan.suggest": {"en": "Suggested entry (paste into agent.toml, rename, then check with clinic-agent validate):",
                     "es": "Entrada sugerida (péguela en agent.toml, cambie el nombre y revise con clinic-agent validate):"},
    "scan.modbus.title": {"en": "Modbus scan of {where}: {n} unit id(s), {settings} line setting(s)",
                          "es": "Escaneo Modbus de {where}: {n} unit id(s), {settings} configuración(es) de línea"},
    "scan.modbus.port_busy": {"en": "The running agent polls devices on {port}.",
                              "es": "El agente en marcha consulta equipos en {port}."},
    "scan.modbus.gateway_shared": {
        "en": "Note: the running agent also polls {where}; the scan shares the gateway with it.",
        "es": "Nota: el agente en marcha también consulta {where}; el escaneo comparte el gateway con él."},
    "scan.modbus.no_port": {"en": "{port} does not exist. Serial ports found: {ports}",
                            "es": "{port} no existe. Puertos serie encontrados: {ports}"},
    "scan.modbus.cannot_open": {"en": "Cannot open {where}: {error}", "es": "No se puede abrir {where}: {error}"},
    "scan.modbus.tried": {"en": "Tried: {settings}", "es": "Probado: {settings}"},
    "scan.modbus.unsupported": {"en": "The port refused some settings (skipped): {settings}",
                                "es": "El puerto rechazó algunas configuraciones (omitidas): {settings}"},
    "scan.modbus.nothing": {"en": "Nothing answered.", "es": "Nada respondió."},
    "scan.modbus.noise": {"en": "bytes came back garbled at {settings}: a device is there, at another baud rate or parity",
                          "es": "llegaron bytes ilegibles con {settings}: hay un equipo, con otra velocidad o paridad"},
    "scan.modbus.found": {"en": "{n} unit(s) answered:", "es": "{n} unidad(es) respondieron:"},
    "scan.modbus.value": {"en": "{table} {address} = {value}", "es": "{table} {address} = {value}"},
    "scan.modbus.exception": {"en": "answered with exception {exception}",
                              "es": "respondió con la excepción {exception}"},
    "scan.modbus.registers_comment": {
        "en": "Replace with the registers from the device's manual (this one answered the scan):",
        "es": "Reemplace con los registros del manual del equipo (este respondió al escaneo):"},
    "scan.snmp.title": {"en": "SNMP scan of {target}:{port} with {n} communit(y/ies), v2c and v1, then v3",
                        "es": "Escaneo SNMP de {target}:{port} con {n} comunidad(es), v2c y v1, luego v3"},
    "scan.snmp.no_gateway": {"en": "No default gateway found; give the router's address with --target",
                             "es": "No se encontró puerta de enlace predeterminada; indique la dirección del router con --target"},
    "scan.snmp.error": {"en": "Cannot scan: {error}", "es": "No se puede escanear: {error}"},
    "scan.snmp.found": {"en": "{n} way(s) in answered:", "es": "{n} forma(s) de acceso respondieron:"},
    "scan.snmp.nothing": {"en": "No answer with any of the {tried} communities (v2c, v1).",
                          "es": "Sin respuesta con ninguna de las {tried} comunidades (v2c, v1)."},
    "scan.snmp.v3_yes": {"en": "SNMPv3: the agent answers (preferred: create a read-only v3 user on the router)",
                         "es": "SNMPv3: el agente responde (preferible: cree un usuario v3 de solo lectura en el router)"},
    "scan.snmp.v3_no": {"en": "SNMPv3: no answer", "es": "SNMPv3: sin respuesta"},
    "scan.snmp.public_warning": {
        "en": "\"public\" is the factory default anyone can guess and the config refuses it: set a private "
              "read-only community on the router and use that",
        "es": "\"public\" es el valor de fábrica que cualquiera adivina y la configuración lo rechaza: ponga una "
              "comunidad privada de solo lectura en el router y use esa"},
    "scan.snmp.community_comment": {
        "en": "community: in the secrets file (below), never here",
        "es": "comunidad: en el archivo de secretos (abajo), nunca aquí"},
    "scan.snmp.secrets_part": {"en": "And in the secrets file (secrets.toml):",
                               "es": "Y en el archivo de secretos (secrets.toml):"},
}


def _merge_catalogues() -> None:
    from agent.catalogue import CATALOGUES
    for catalogue in CATALOGUES:
        for msg_id, entry in catalogue.items():
            if msg_id in MESSAGES:
                raise RuntimeError(f"message id {msg_id} is defined twice")
            MESSAGES[msg_id] = entry


_merge_catalogues()


def locale_language(env: Mapping[str, str]) -> str | None:
    """The language the locale names, or None when it names none ("C", "POSIX", unset)."""
    for key in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(key)
        if value:
            word = value.split(".")[0].split("@")[0].lower()
            if word in ("c", "posix", ""):
                return None
            return "es" if word.startswith("es") else "en"
    return None


def language(env: Mapping[str, str], *, option: str | None = None,
             configured: str | None = None) -> str:
    """The reader's language: ``option`` (--lang), else the locale, else ``configured`` (the
    config's ``language`` key), else English."""
    if option in LANGUAGES:
        return str(option)
    chosen = locale_language(env)
    if chosen is not None:
        return chosen
    if configured in LANGUAGES:
        return str(configured)
    return "en"


@dataclass(frozen=True)
class Text:
    """A message id with its arguments, rendered in the reader's language where it is shown.

    Arguments may themselves be ``Text`` (e.g. "expected {what}, got {got}" with ``what`` a
    phrase of its own), or a list of them (shown joined by "; "). ``str()`` is the English
    rendering (logs, compatible text fields).
    """

    id: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def render(self, t: Messages) -> str:
        return t(self.id, **self.args)

    def __str__(self) -> str:
        return self.render(ENGLISH)

    def to_doc(self) -> dict[str, Any]:
        """Language-neutral form for JSON: {"code": id, "args": {...}}."""
        return {"code": self.id, "args": {k: _arg_doc(v) for k, v in self.args.items()}}

    @classmethod
    def from_doc(cls, doc: Any) -> Text | None:
        if not isinstance(doc, Mapping) or not isinstance(doc.get("code"), str):
            return None
        raw = doc.get("args")
        args: Mapping[Any, Any] = raw if isinstance(raw, Mapping) else {}
        return cls(doc["code"], {k: _arg_from_doc(v) for k, v in args.items()})


def _arg_doc(value: Any) -> Any:
    if isinstance(value, Text):
        return value.to_doc()
    if isinstance(value, (list, tuple)):
        return [_arg_doc(v) for v in value]
    return value


def _arg_from_doc(value: Any) -> Any:
    if isinstance(value, Mapping):
        return Text.from_doc(value) or value
    if isinstance(value, list):
        return [_arg_from_doc(v) for v in value]
    return value


def text(msg_id: str, **args: Any) -> Text:
    """``text("cfg.required")``: shorthand for ``Text(id, args)``."""
    return Text(msg_id, args)


class Messages:
    """``t("status.title", site="X")``: the message in this language, placeholders filled."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGUAGES else "en"

    def __call__(self, msg_id: str, **params: Any) -> str:
        entry = MESSAGES.get(msg_id)
        if entry is None:
            return msg_id   # a missing id shows itself (tests/test_i18n.py keeps them complete)
        text = entry.get(self.lang) or entry["en"]
        params = {k: self._arg(v) for k, v in params.items()}
        try:
            return text.format(**params)
        except (KeyError, IndexError, ValueError):
            return text

    def _arg(self, value: Any) -> Any:
        if isinstance(value, Text):
            return value.render(self)
        if isinstance(value, (list, tuple)):
            return "; ".join(str(self._arg(v)) for v in value)
        return value

    def known(self) -> Mapping[str, Mapping[str, str]]:
        """Every message id there is (for ids built at run time)."""
        return MESSAGES

    def render(self, value: Any) -> str:
        """A ``Text`` in this language; anything else as it is."""
        return value.render(self) if isinstance(value, Text) else str(value)


ENGLISH = Messages("en")
