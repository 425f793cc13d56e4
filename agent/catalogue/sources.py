"""Why a device poll failed (``agent.errors.SourceError.code``), in English and Mexican Spanish.

The English text is what ``poll.reason`` carries and the journal shows (kept word for word as
before, since scripts and the central side search it); the id and its arguments travel as
``poll.reason_code`` and are rendered in the reader's language by the CLI and the central page.
Arguments are addresses, ports, unit ids, OIDs and numbers: the same in every language.
"""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    # -- any device (the poller) -------------------------------------------------------------
    "src.poll.abandoned": {
        "en": "poll took longer than {s}s and was abandoned",
        "es": "la lectura tardó más de {s} s y se abandonó"},
    "src.poll.internal": {
        "en": "internal error: {error}",
        "es": "error interno: {error}"},
    "src.setting_failed": {"en": "{setting}: {error}", "es": "{setting}: {error}"},
    "src.host.stats": {
        "en": "cannot read system statistics: {error}",
        "es": "no se pueden leer las estadísticas del sistema: {error}"},

    # -- SNMP ----------------------------------------------------------------------------------
    "src.snmp.at": {"en": " at {oid}", "es": " en {oid}"},
    "src.snmp.timeout": {
        "en": "timeout: no SNMP answer from {where}; is SNMP enabled on the LAN side and the address "
              "right? (or the community is wrong: the router ignores unknown communities)",
        "es": "tiempo agotado: ninguna respuesta SNMP de {where}; ¿está SNMP activado del lado LAN y es "
              "correcta la dirección? (o la comunidad es incorrecta: el router ignora comunidades "
              "desconocidas)"},
    "src.snmp.timeout_v3": {
        "en": "timeout: no SNMP answer from {where}; is SNMP enabled on the LAN side and the address "
              "right? (a wrong v3 priv_key also looks like this)",
        "es": "tiempo agotado: ninguna respuesta SNMP de {where}; ¿está SNMP activado del lado LAN y es "
              "correcta la dirección? (una priv_key v3 incorrecta también se ve así)"},
    "src.snmp.cannot_resolve": {
        "en": "cannot resolve {host}: check the router's address in the config",
        "es": "no se puede resolver {host}: revise la dirección del router en la configuración"},
    "src.snmp.no_socket": {
        "en": "cannot open a UDP socket to {where}: {error}",
        "es": "no se puede abrir un socket UDP hacia {where}: {error}"},
    "src.snmp.port_unreachable": {
        "en": "nothing is listening for SNMP at {where} (the host answered 'port unreachable')",
        "es": "nada escucha SNMP en {where} (el equipo respondió 'port unreachable')"},
    "src.snmp.not_a_response": {
        "en": "the device at {where} answered with something that is not an SNMP response to this "
              "request",
        "es": "el equipo en {where} respondió algo que no es una respuesta SNMP a esta solicitud"},
    "src.snmp.too_big": {
        "en": "the router at {where} answered tooBig to {request}",
        "es": "el router en {where} respondió tooBig a {request}"},
    "src.snmp.no_such_name": {
        "en": "the router at {where} answered noSuchName{at}",
        "es": "el router en {where} respondió noSuchName{at}"},
    "src.snmp.denied": {
        "en": "access denied: the router at {where} refused {request}{at} ({status}); check the view "
              "allowed to this community/user",
        "es": "acceso denegado: el router en {where} rechazó {request}{at} ({status}); revise la vista "
              "permitida a esta comunidad o usuario"},
    "src.snmp.error_status": {
        "en": "the router at {where} answered {status}{at} to {request}",
        "es": "el router en {where} respondió {status}{at} a {request}"},
    "src.snmp.request_failed": {
        "en": "SNMP {request} to {where} failed: {error}",
        "es": "falló la solicitud SNMP {request} a {where}: {error}"},
    "src.snmp.auth_failed": {
        "en": "authentication failed: check the v3 user and keys ({why})",
        "es": "falló la autenticación: revise el usuario v3 y sus claves ({why})"},
    "src.snmp.auth.unknown_user": {
        "en": "the router does not know this user",
        "es": "el router no conoce a este usuario"},
    "src.snmp.auth.wrong_auth": {
        "en": "wrong auth_key or auth_protocol",
        "es": "auth_key o auth_protocol incorrectos"},
    "src.snmp.auth.wrong_priv": {
        "en": "wrong priv_key or priv_protocol",
        "es": "priv_key o priv_protocol incorrectos"},
    "src.snmp.auth.level": {
        "en": "the user is not allowed this security level",
        "es": "el usuario no tiene permitido este nivel de seguridad"},
    "src.snmp.auth.auth_protocol": {
        "en": "the auth_protocol is not supported",
        "es": "el auth_protocol no es compatible"},
    "src.snmp.auth.priv_protocol": {
        "en": "the priv_protocol is not supported",
        "es": "el priv_protocol no es compatible"},
    "src.snmp.stale_window": {
        "en": "the router at {where} reports our v3 time window is stale; it usually resynchronises "
              "next poll",
        "es": "el router en {where} indica que nuestra ventana de tiempo v3 caducó; normalmente se "
              "resincroniza en la siguiente lectura"},
    "src.snmp.resync_loop": {
        "en": "the router at {where} keeps asking to resynchronise SNMPv3 (engine ID or time "
              "window); is its clock jumping?",
        "es": "el router en {where} pide una y otra vez resincronizar SNMPv3 (engine ID o ventana "
              "de tiempo); ¿su reloj está saltando?"},
    "src.snmp.report": {
        "en": "the router at {where} refused the request ({oid})",
        "es": "el router en {where} rechazó la solicitud ({oid})"},
    "src.snmp.error": {
        "en": "SNMP error talking to {where}: {error}",
        "es": "error SNMP al comunicarse con {where}: {error}"},
    "src.snmp.undecodable": {
        "en": "could not decode the answer of {where}: {error}",
        "es": "no se pudo interpretar la respuesta de {where}: {error}"},
    "src.snmp.endless_table": {
        "en": "the device at {where} never ended a table after {n} requests",
        "es": "el equipo en {where} nunca terminó una tabla tras {n} solicitudes"},
    "src.snmp.empty_table_answer": {
        "en": "the device at {where} answered a table request without any values",
        "es": "el equipo en {where} respondió una solicitud de tabla sin ningún valor"},

    # -- Modbus: the connection ------------------------------------------------------------------
    "src.modbus.open_timeout": {
        "en": "timeout: could not open {port} in time",
        "es": "tiempo agotado: no se pudo abrir {port} a tiempo"},
    "src.modbus.connect_timeout": {
        "en": "timeout: no answer from {where} when connecting; check the network cable and the "
              "gateway's address",
        "es": "tiempo agotado: {where} no respondió al conectar; revise el cable de red y la dirección "
              "del gateway"},
    "src.modbus.line_refused": {
        "en": "{port} does not accept {line} ({error}): this adapter cannot use that baud rate or parity",
        "es": "{port} no acepta {line} ({error}): este adaptador no puede usar esa velocidad o paridad"},
    "src.modbus.no_port": {
        "en": "serial port {port} does not exist; is the USB-RS485 adapter plugged in?",
        "es": "el puerto serie {port} no existe; ¿está conectado el adaptador USB-RS485?"},
    "src.modbus.no_permission": {
        "en": "no permission to open {port}; add the agent's user to the dialout group",
        "es": "sin permiso para abrir {port}; agregue el usuario del agente al grupo dialout"},
    "src.modbus.port_busy": {
        "en": "cannot open {port}; is another program using it?",
        "es": "no se puede abrir {port}; ¿lo está usando otro programa?"},
    "src.modbus.refused": {
        "en": "nothing listening at {where}; is the Modbus TCP gateway on?",
        "es": "nada escucha en {where}; ¿está encendido el gateway Modbus TCP?"},
    "src.cannot_resolve": {
        "en": "cannot resolve the host name {host}: {error}",
        "es": "no se puede resolver el nombre {host}: {error}"},
    "src.modbus.unreachable": {
        "en": "cannot reach {where}: {error}",
        "es": "no se puede alcanzar {where}: {error}"},
    "src.modbus.second_try": {
        "en": "could not connect to {where} (it accepted a second try; will retry next poll)",
        "es": "no se pudo conectar a {where} (aceptó un segundo intento; se reintentará en la "
              "siguiente lectura)"},
    "src.modbus.closed": {
        "en": "connection to {where} is closed",
        "es": "la conexión con {where} está cerrada"},
    "src.modbus.lost": {
        "en": "connection to {where} was closed before unit {unit} answered; did the gateway restart?",
        "es": "la conexión con {where} se cerró antes de que la unidad {unit} respondiera; ¿se reinició "
              "el gateway?"},
    "src.modbus.bus_conflict": {
        "en": "{port} is already used by device {other} at {used}, but this device says {line}; all "
              "devices on one serial bus must use the same baudrate, parity, stopbits, bytesize",
        "es": "{port} ya lo usa el equipo {other} a {used}, pero este equipo indica {line}; todos los "
              "equipos de un bus serie deben usar los mismos baudrate, parity, stopbits, bytesize"},

    # -- Modbus: the answers ----------------------------------------------------------------------
    "src.modbus.no_answer": {
        "en": "timeout: no answer from unit {unit} at {where}; check wiring/address/unit id",
        "es": "tiempo agotado: la unidad {unit} en {where} no respondió; revise cableado, dirección y "
              "unit id"},
    "src.modbus.no_answer_serial": {
        "en": "timeout: no answer from unit {unit} on {port} ({line}); check wiring (A/B), baud rate "
              "and unit id",
        "es": "tiempo agotado: la unidad {unit} en {port} ({line}) no respondió; revise el cableado "
              "(A/B), la velocidad y el unit id"},
    "src.modbus.nonsense_tcp": {
        "en": "garbage: {where} sent {n} bytes that are no answer to a request for unit {unit} "
              "({data}); check the unit id and that this is a Modbus TCP port",
        "es": "basura: {where} envió {n} bytes que no responden a una solicitud para la unidad {unit} "
              "({data}); revise el unit id y que este sea un puerto Modbus TCP"},
    "src.modbus.nonsense_rtu": {
        "en": "garbage: {where} sent {n} bytes that are no answer to a request for unit {unit} "
              "({data}); check the unit id, baud rate and parity",
        "es": "basura: {where} envió {n} bytes que no responden a una solicitud para la unidad {unit} "
              "({data}); revise el unit id, la velocidad y la paridad"},
    "src.modbus.unusable": {
        "en": "unusable answer from unit {unit} at {where}: {error}",
        "es": "respuesta inutilizable de la unidad {unit} en {where}: {error}"},
    "src.modbus.wrong_function": {
        "en": "garbage from unit {unit} at {where}: function code {got} in answer to a {table} read "
              "(code {expected}); check that no other master shares the bus and the unit id",
        "es": "basura de la unidad {unit} en {where}: código de función {got} en respuesta a una "
              "lectura {table} (código {expected}); revise que ningún otro maestro comparta el bus, "
              "y el unit id"},
    "src.modbus.short_registers": {
        "en": "garbage from unit {unit} at {where}: asked for {asked} registers, got {got}",
        "es": "basura de la unidad {unit} en {where}: se pidieron {asked} registros, llegaron {got}"},
    "src.modbus.short_bits": {
        "en": "garbage from unit {unit} at {where}: asked for {asked} bits, got {got}",
        "es": "basura de la unidad {unit} en {where}: se pidieron {asked} bits, llegaron {got}"},
    "src.modbus.range": {"en": "{first} to {last}", "es": "{first} a {last}"},
    "src.modbus.label.holding": {"en": "holding register {n}", "es": "registro holding {n}"},
    "src.modbus.label.input": {"en": "input register {n}", "es": "registro de entrada {n}"},
    "src.modbus.label.coil": {"en": "coil bit {n}", "es": "bit coil {n}"},
    "src.modbus.label.discrete": {"en": "discrete bit {n}", "es": "bit discreto {n}"},
    "src.modbus.illegal_address": {
        "en": "illegal data address at {at} (the device does not have this register)",
        "es": "dirección de datos ilegal en {at} (el equipo no tiene este registro)"},
    "src.modbus.illegal_value": {
        "en": "illegal data value reading {at} (the device rejects this address or count)",
        "es": "valor de datos ilegal al leer {at} (el equipo rechaza esta dirección o cantidad)"},
    "src.modbus.illegal_function": {
        "en": "illegal function: unit {unit} does not support reading {what} (function {function}); "
              "check the table of {at}",
        "es": "función ilegal: la unidad {unit} no permite leer {what} (función {function}); revise "
              "la tabla de {at}"},
    "src.modbus.what.coil": {"en": "coils", "es": "bobinas (coils)"},
    "src.modbus.what.discrete": {"en": "discrete inputs", "es": "entradas discretas"},
    "src.modbus.what.holding": {"en": "holding registers", "es": "registros holding"},
    "src.modbus.what.input": {"en": "input registers", "es": "registros de entrada"},
    "src.modbus.busy": {
        "en": "server device busy reading {at}; try a longer interval_s",
        "es": "el equipo está ocupado al leer {at}; pruebe un interval_s más largo"},
    "src.modbus.gateway_silent": {
        "en": "timeout: the gateway at {where} got no answer from unit {unit} ({name}); check the "
              "RS-485 wiring and unit id",
        "es": "tiempo agotado: el gateway en {where} no obtuvo respuesta de la unidad {unit} ({name}); "
              "revise el cableado RS-485 y el unit id"},
    "src.modbus.exception": {
        "en": "{name} (Modbus exception {code}) reading {at}",
        "es": "{name} (excepción Modbus {code}) al leer {at}"},
    "src.modbus.no_registers": {
        "en": "none of the configured registers exist on the device: {reasons}",
        "es": "ninguno de los registros configurados existe en el equipo: {reasons}"},
    "src.modbus.all_garbage": {
        "en": "every value the device sent was garbage: {values}",
        "es": "todos los valores que envió el equipo eran basura: {values}"},
    "src.modbus.garbage_value": {
        "en": "{name} ({label}) is {why}",
        "es": "{name} ({label}) es {why}"},
    "src.modbus.no_reply": {"en": "no answer", "es": "sin respuesta"},
    "src.modbus.garbage.not_text": {
        "en": "not text (bytes {data})",
        "es": "no es texto (bytes {data})"},
    "src.modbus.garbage.width": {
        "en": "{type} needs {need} register(s), got {got}",
        "es": "{type} necesita {need} registro(s), llegaron {got}"},
    "src.modbus.garbage.nan": {
        "en": "NaN (the device marks the value as not available)",
        "es": "NaN (el equipo marca el valor como no disponible)"},
    "src.modbus.garbage.inf": {
        "en": "infinite (the device marks the value as out of range)",
        "es": "infinito (el equipo marca el valor como fuera de rango)"},
}
