"""Config problems, in English and Spanish: what is wrong with a key of agent.toml and what to do.

Each problem is shown after its key path (``devices[1] (ups).port: ...``); ``{got}`` is the value
as written in the file. ``cfg.what.*`` are the phrases that fill "expected {what}".
"""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    # -- values, as shown -------------------------------------------------------------------------
    "cfg.value.table": {"en": "a table", "es": "una tabla"},
    "cfg.value.list": {"en": "a list", "es": "una lista"},

    # -- bounds of any TOML document (docs/limits.md) -----------------------------------------------
    "cfg.toml.too_big": {"en": "the file is {size} bytes, more than the {max} a config may have",
                         "es": "el archivo tiene {size} bytes, más de los {max} que puede tener "
                               "una configuración"},
    "cfg.toml.too_deep": {"en": "lists or tables nested more than {max} levels deep",
                          "es": "listas o tablas anidadas a más de {max} niveles"},
    "cfg.toml.huge_int": {"en": "an integer of thousands of digits (TOML integers are 64-bit: "
                                "{lo} to {hi})",
                          "es": "un entero de miles de dígitos (los enteros de TOML son de 64 "
                                "bits: de {lo} a {hi})"},
    "cfg.toml.int64": {"en": "an integer outside the 64-bit range TOML allows ({lo} to {hi})",
                       "es": "un entero fuera del rango de 64 bits de TOML ({lo} a {hi})"},

    # -- general ----------------------------------------------------------------------------------
    "cfg.required": {"en": "is required but missing", "es": "es obligatorio y falta"},
    "cfg.required_table": {"en": "is required but missing (add a [{key}] section)",
                           "es": "es obligatorio y falta (agregue una sección [{key}])"},
    "cfg.required_tables": {"en": "is required but missing (add at least one [[{key}]] entry)",
                            "es": "es obligatorio y falta (agregue al menos una entrada [[{key}]])"},
    "cfg.expected": {"en": "expected {what}, got {got}", "es": "se esperaba {what}; dice {got}"},
    "cfg.expected_unquote": {
        "en": "expected {what}, got {got}: write numbers without quotes, {key} = {fixed}",
        "es": "se esperaba {what}; dice {got}: escriba los números sin comillas, {key} = {fixed}"},
    "cfg.expected_decimal_point": {
        "en": "expected {what}, got {got}: write decimals with a point, {key} = {fixed}",
        "es": "se esperaba {what}; dice {got}: escriba los decimales con punto, {key} = {fixed}"},
    "cfg.expected_quotes": {
        "en": "expected {what}, got {got}: write it in quotes, {key} = {fixed}",
        "es": "se esperaba {what}; dice {got}: escríbalo entre comillas, {key} = {fixed}"},
    "cfg.expected_bool": {"en": "expected true or false, got {got}",
                          "es": "se esperaba true o false; dice {got}"},
    "cfg.expected_bool_unquote": {
        "en": "expected true or false, got {got}: write {key} = {fixed} (without quotes)",
        "es": "se esperaba true o false; dice {got}: escriba {key} = {fixed} (sin comillas)"},
    "cfg.expected_seconds": {
        "en": "expected {what}, got {got}: write the number of seconds alone, {key} = {fixed}",
        "es": "se esperaba {what}; dice {got}: escriba solo el número de segundos, {key} = {fixed}"},
    "cfg.expected_chars": {"en": "expected {what}, got {n} character(s)",
                           "es": "se esperaba {what}; tiene {n} carácter(es)"},
    "cfg.expected_absolute": {
        "en": "expected an absolute path (the agent does not run from the config's folder), got {got}",
        "es": "se esperaba una ruta absoluta (el agente no se ejecuta desde la carpeta de la configuración); dice {got}"},
    "cfg.choice": {"en": "expected one of {choices}, got {got}",
                   "es": "se esperaba uno de {choices}; dice {got}"},
    "cfg.choice_did_you_mean": {"en": "expected one of {choices}, got {got}; did you mean {suggestion}?",
                                "es": "se esperaba uno de {choices}; dice {got}; ¿quiso decir {suggestion}?"},
    "cfg.unknown_key": {
        "en": "is not a known setting (misspelt?); check its spelling against the example config, or delete the line",
        "es": "no es una opción conocida (¿mal escrita?); compare con la configuración de ejemplo, o borre la línea"},
    "cfg.unknown_key_did_you_mean": {"en": "is not a known setting; did you mean {suggestion}?",
                                     "es": "no es una opción conocida; ¿quiso decir {suggestion}?"},
    "cfg.name_used": {"en": "{name} is already used by {other}", "es": "{name} ya lo usa {other}"},
    "cfg.listed_twice": {"en": "{got} is listed twice", "es": "{got} aparece dos veces"},
    "cfg.timeout_over_interval": {
        "en": "expected at most interval_s ({interval}), got {got}",
        "es": "se esperaba como máximo interval_s ({interval}); dice {got}"},
    "cfg.not_a_folder": {"en": "{got} is not a folder", "es": "{got} no es una carpeta"},
    "cfg.bad_regex": {"en": "not a valid regular expression: {error}",
                      "es": "no es una expresión regular válida: {error}"},
    "cfg.secret_string": {"en": "expected a string (in quotes)", "es": "se esperaba un texto (entre comillas)"},
    "cfg.cannot_read": {"en": "cannot read the file {path}: {error}",
                        "es": "no se puede leer el archivo {path}: {error}"},
    "cfg.not_toml": {"en": "not valid TOML: {error}", "es": "no es TOML válido: {error}"},
    "cfg.in_file": {"en": "{file}: {message}", "es": "{file}: {message}"},
    "cfg.in_file_key": {"en": "{file}: {key}: {message}", "es": "{file}: {key}: {message}"},

    # -- host names and addresses -----------------------------------------------------------------
    "cfg.ip_range": {
        "en": "{got} is not an IP address: each of its four numbers goes from 0 to 255, and {part} is more",
        "es": "{got} no es una dirección IP: cada uno de sus cuatro números va de 0 a 255, y {part} es mayor"},
    "cfg.ip_parts": {
        "en": "{got} is not an IP address: it has four numbers separated by dots, e.g. 192.168.1.50",
        "es": "{got} no es una dirección IP: lleva cuatro números separados por puntos, p. ej. 192.168.1.50"},
    "cfg.ip_invalid": {
        "en": "{got} is not an IP address: write four numbers 0-255 without leading zeros, e.g. 192.168.1.50",
        "es": "{got} no es una dirección IP: escriba cuatro números de 0 a 255 sin ceros a la izquierda, p. ej. 192.168.1.50"},
    "cfg.host_scheme": {
        "en": "{got} is a web address: write only the host name or IP address, {fixed}",
        "es": "{got} es una dirección web: escriba solo el nombre o la dirección IP, {fixed}"},
    "cfg.host_spaces": {"en": "{got} has spaces in it: write it without them, {fixed}",
                        "es": "{got} tiene espacios: escríbalo sin ellos, {fixed}"},
    "cfg.host_port": {
        "en": "{got} has a port in it: write only the host here, {fixed}, and the number in port",
        "es": "{got} lleva un puerto: escriba aquí solo el equipo, {fixed}, y el número en port"},
    "cfg.host_invalid": {
        "en": "{got} is neither an IP address nor a host name (letters, digits, '-' and dots)",
        "es": "{got} no es una dirección IP ni un nombre de equipo (letras, dígitos, '-' y puntos)"},

    # -- syntax (before any key can be read) ------------------------------------------------------
    "cfg.syntax.encoding": {
        "en": "line {line}: the file is not saved as UTF-8 (\"{char}\" is written in another encoding); "
              "save it as UTF-8 (Notepad: Save as, Encoding UTF-8) or retype the accented letters with nano",
        "es": "línea {line}: el archivo no está guardado como UTF-8 (\"{char}\" está en otra codificación); "
              "guárdelo como UTF-8 (Bloc de notas: Guardar como, Codificación UTF-8) o vuelva a escribir los acentos con nano"},
    "cfg.syntax.unquoted": {
        "en": "line {line}: {got} is text and text goes in double quotes: write {fixed}",
        "es": "línea {line}: {got} es texto y el texto va entre comillas dobles: escriba {fixed}"},
    "cfg.syntax.unquoted_secret": {
        "en": "line {line}: the value of {key} is text and text goes in double quotes: write {fixed}",
        "es": "línea {line}: el valor de {key} es texto y el texto va entre comillas dobles: escriba {fixed}"},
    "cfg.syntax.decimal_comma": {
        "en": "line {line}: {got} uses a decimal comma; write decimals with a point: {fixed}",
        "es": "línea {line}: {got} usa coma decimal; escriba los decimales con punto: {fixed}"},
    "cfg.syntax.unclosed_quote": {
        "en": "line {line}: the quote ({quote}) opened for {key} is never closed; add the closing one at the end: {fixed}",
        "es": "línea {line}: la comilla ({quote}) que abre el valor de {key} nunca se cierra; agregue la de cierre al final: {fixed}"},
    "cfg.syntax.bool_word": {
        "en": "line {line}: {got} is not a value TOML knows; write true or false in lowercase: {fixed}",
        "es": "línea {line}: {got} no es un valor que TOML conozca; escriba true o false en minúsculas: {fixed}"},
    "cfg.syntax.no_value": {
        "en": "line {line}: {key} has nothing after the =; write its value, or delete the line",
        "es": "línea {line}: {key} no tiene nada después del =; escriba su valor, o borre la línea"},
    "cfg.syntax.twice": {
        "en": "line {line}: {key} is written a second time in the same section; keep only one of them",
        "es": "línea {line}: {key} aparece por segunda vez en la misma sección; deje solo una"},
    "cfg.syntax.table_bracket": {
        "en": "line {line}: the section name is not closed with ]; write {fixed}",
        "es": "línea {line}: el nombre de la sección no se cierra con ]; escriba {fixed}"},
    "cfg.syntax.key_spaces": {
        "en": "line {line}: setting names have no spaces ({key}); write it as in the example config, e.g. {fixed}",
        "es": "línea {line}: los nombres de las opciones no llevan espacios ({key}); escríbalo como en la configuración de ejemplo, p. ej. {fixed}"},
    "cfg.syntax.other": {
        "en": "line {line}: this line is not valid TOML ({error}); compare it with the example config",
        "es": "línea {line}: esta línea no es TOML válido ({error}); compárela con la configuración de ejemplo"},

    # -- mqtt, secrets ----------------------------------------------------------------------------
    "cfg.mqtt.cert_pair": {"en": "cert_file and key_file go together (client certificate)",
                           "es": "cert_file y key_file van juntos (certificado de cliente)"},
    "cfg.mqtt.tls_off_with_files": {"en": "ca_file/cert_file are set but tls = false; set tls = true",
                                    "es": "ca_file/cert_file están puestos pero tls = false; ponga tls = true"},
    "cfg.buffer.central_only": {
        "en": "only applies with release = \"central\" (readings kept until the central ack); "
              "add that line to [buffer], or remove this one",
        "es": "solo aplica con release = \"central\" (las lecturas se guardan hasta el acuse "
              "central); agregue esa línea en [buffer], o quite esta"},
    "cfg.mqtt.no_broker": {"en": "no broker to connect to", "es": "no hay ningún bróker al que conectarse"},
    "cfg.secrets_only_tables": {
        "en": "only [mqtt] and [devices.NAME] tables belong in the secrets file",
        "es": "en el archivo de secretos solo van las tablas [mqtt] y [devices.NOMBRE]"},
    "cfg.secrets_no_device": {
        "en": "no device of that name in the config (devices: {names})",
        "es": "no hay ningún equipo con ese nombre en la configuración (equipos: {names})"},
    "cfg.secrets_unreadable": {"en": "cannot read {path}: {error}",
                               "es": "no se puede leer {path}: {error}"},

    # -- devices, wan ------------------------------------------------------------------------------
    "cfg.wan.router_not_snmp": {
        "en": "expected the name of an snmp device in this file, got {got}, which is a {kind} device "
              "(snmp devices: {snmp})",
        "es": "se esperaba el nombre de un equipo snmp de este archivo; dice {got}, que es un equipo {kind} "
              "(equipos snmp: {snmp})"},
    "cfg.wan.router_unknown": {
        "en": "expected the name of an snmp device in this file, got {got} (snmp devices: {snmp})",
        "es": "se esperaba el nombre de un equipo snmp de este archivo; dice {got} (equipos snmp: {snmp})"},
    "cfg.wan.no_targets": {"en": 'expected at least one target, e.g. ["1.1.1.1:53"]',
                           "es": 'se esperaba al menos un destino, p. ej. ["1.1.1.1:53"]'},

    # -- modbus -----------------------------------------------------------------------------------
    "cfg.modbus.tcp_only": {
        "en": 'is only used with transport = "tcp" or "rtu_over_tcp"; this device uses transport = "rtu" (serial_port)',
        "es": 'solo se usa con transport = "tcp" o "rtu_over_tcp"; este equipo usa transport = "rtu" (serial_port)'},
    "cfg.modbus.rtu_only": {
        "en": 'is only used with transport = "rtu"; set transport = "rtu" for a serial line',
        "es": 'solo se usa con transport = "rtu"; ponga transport = "rtu" para una línea serie'},
    "cfg.modbus.serial_only": {
        "en": "is only used with transport = \"rtu\"; over TCP the gateway's own serial settings apply",
        "es": "solo se usa con transport = \"rtu\"; por TCP rige la configuración serie del propio gateway"},
    "cfg.modbus.baudrate": {
        "en": "{got} is not a standard baud rate; did you mean {suggestion}? (use the speed printed in the device's manual or menu)",
        "es": "{got} no es una velocidad estándar; ¿quiso decir {suggestion}? (use la velocidad que indica el manual o el menú del equipo)"},
    "cfg.modbus.no_registers": {"en": "expected at least one [[devices.registers]] entry",
                                "es": "se esperaba al menos una entrada [[devices.registers]]"},
    "cfg.modbus.profiles_dir_alone": {"en": 'is only used with profile = "..."',
                                      "es": 'solo se usa con profile = "..."'},
    "cfg.modbus.reserved_name": {
        "en": "names starting with \"{prefix}\" are reserved for the poller's own metrics, got {got}",
        "es": "los nombres que empiezan con \"{prefix}\" están reservados para las métricas propias del agente; dice {got}"},
    "cfg.modbus.bit_table_type": {
        "en": '{table} addresses hold single bits: use type = "bit" or leave type out, got {got}',
        "es": 'las direcciones {table} guardan bits sueltos: use type = "bit" o quite type; dice {got}'},
    "cfg.modbus.length_string_only": {"en": 'is only used with type = "string", got type = {got}',
                                      "es": 'solo se usa con type = "string"; dice type = {got}'},
    "cfg.modbus.bit_only": {"en": 'is only used with type = "bit" in a holding or input register',
                            "es": 'solo se usa con type = "bit" en un registro holding o de entrada'},
    "cfg.modbus.scale_zero": {"en": "expected a number other than 0, got 0",
                              "es": "se esperaba un número distinto de 0; dice 0"},
    "cfg.modbus.numbers_only": {"en": "is only used with number types, got type = {got}",
                                "es": "solo se usa con tipos numéricos; dice type = {got}"},
    "cfg.modbus.integers_only": {"en": "is only used with integer types (int16 ... uint64), got type = {got}",
                                 "es": "solo se usa con tipos enteros (int16 ... uint64); dice type = {got}"},
    "cfg.modbus.enum_and_flags": {
        "en": "use either enum (the register holds one code) or flags (each bit means something), not both",
        "es": "use enum (el registro guarda un código) o flags (cada bit significa algo), no ambos"},
    "cfg.modbus.past_end": {
        "en": "the register's {count} address(es) run past the end of the address space (65535), got {label}",
        "es": "las {count} dirección(es) del registro pasan del final del espacio de direcciones (65535); dice {label}"},
    "cfg.modbus.modicon_table": {
        "en": "address {address} is a Modicon {table_of} address, but table = {got}; leave table out or fix the address",
        "es": "la dirección {address} es una dirección Modicon de tipo {table_of}, pero table = {got}; quite table o corrija la dirección"},
    "cfg.modbus.modicon_address": {
        "en": "expected a Modicon address like 40001 (holding), 30001 (input), 10001 (discrete) or 1 (coil), got {got}",
        "es": "se esperaba una dirección Modicon como 40001 (holding), 30001 (entrada), 10001 (discreta) o 1 (coil); dice {got}"},
    "cfg.modbus.order_both": {"en": "use either order or word_order/byte_order, not both",
                              "es": "use order o word_order/byte_order, no ambos"},
    "cfg.profile_unreadable": {"en": "cannot read {path}: {error}", "es": "no se puede leer {path}: {error}"},
    "cfg.profile_cannot_read": {"en": "cannot read the profile: {error}",
                                "es": "no se puede leer el perfil: {error}"},
    "cfg.profile_missing": {
        "en": "no profile named {name}; available (shipped with the agent): {names}",
        "es": "no hay ningún perfil llamado {name}; disponibles (incluidos con el agente): {names}"},
    "cfg.profile_missing_did_you_mean": {
        "en": "no profile named {name}; did you mean {suggestion}? Available (shipped with the agent): {names}",
        "es": "no hay ningún perfil llamado {name}; ¿quiso decir {suggestion}? Disponibles (incluidos con el agente): {names}"},
    "cfg.profile_missing_dir": {
        "en": "no profile named {name}; available (shipped with the agent or in {dir}): {names}",
        "es": "no hay ningún perfil llamado {name}; disponibles (incluidos con el agente o en {dir}): {names}"},
    "cfg.profile_missing_dir_did_you_mean": {
        "en": "no profile named {name}; did you mean {suggestion}? Available (shipped with the agent or in {dir}): {names}",
        "es": "no hay ningún perfil llamado {name}; ¿quiso decir {suggestion}? Disponibles (incluidos con el agente o en {dir}): {names}"},
    "cfg.profile_not_toml": {"en": "{name} ({where}) is not valid TOML: {error}",
                             "es": "{name} ({where}) no es TOML válido: {error}"},
    "cfg.profile_source_url": {"en": "is required (or path, for a map kept in this repository)",
                               "es": "es obligatorio (o path, para un mapa guardado en este repositorio)"},
    "cfg.profiles_dir_missing": {"en": "{path} is not a directory (create it, or leave profiles_dir out)",
                                 "es": "{path} no es una carpeta (créela, o quite profiles_dir)"},
    "cfg.profiles_dir_denied": {"en": "no permission to read {path}", "es": "sin permiso para leer {path}"},

    # -- snmp -------------------------------------------------------------------------------------
    "cfg.snmp.no_profiles": {"en": 'expected at least one profile, e.g. ["system", "if-mib"]',
                             "es": 'se esperaba al menos un perfil, p. ej. ["system", "if-mib"]'},
    "cfg.snmp.no_profile": {
        "en": "no SNMP profile {got} (available: {names}; add files named {prefix}<name>.toml to a profiles_dir)",
        "es": "no hay ningún perfil SNMP {got} (disponibles: {names}; agregue archivos llamados {prefix}<nombre>.toml a un profiles_dir)"},
    "cfg.snmp.no_profile_dir": {
        "en": "no SNMP profile {got} (available: {names}; looked in {builtin} and {dir})",
        "es": "no hay ningún perfil SNMP {got} (disponibles: {names}; se buscó en {builtin} y {dir})"},
    "cfg.snmp.community_v3": {"en": 'is only used with version "1" or "2c"; v3 uses user and keys',
                              "es": 'solo se usa con version "1" o "2c"; v3 usa usuario y claves'},
    "cfg.snmp.community_required": {
        "en": "is required for SNMP v{version} (the router's read-only community; it may live in the secrets file)",
        "es": "es obligatorio para SNMP v{version} (la comunidad de solo lectura del router; puede ir en el archivo de secretos)"},
    "cfg.snmp.community_public": {
        "en": '"public" is the factory default anyone can guess; set a private read-only community on the router and here',
        "es": '"public" es el valor de fábrica que cualquiera adivina; ponga una comunidad privada de solo lectura en el router y aquí'},
    "cfg.snmp.v3_only": {"en": 'is only used with version = "3", not {version}',
                         "es": 'solo se usa con version = "3", no con {version}'},
    "cfg.snmp.key_required": {"en": "is required with {protocol_key} = {protocol}",
                              "es": "es obligatorio con {protocol_key} = {protocol}"},
    "cfg.snmp.key_unused": {"en": 'is set but {protocol_key} is "none"',
                            "es": 'está puesto pero {protocol_key} es "none"'},
    "cfg.snmp.priv_without_auth": {
        "en": "SNMP v3 cannot encrypt without authentication; set auth_protocol and auth_key too",
        "es": "SNMP v3 no puede cifrar sin autenticación; ponga también auth_protocol y auth_key"},
    "cfg.snmp.protocol_required": {"en": "is required with {key_name} (one of {choices})",
                                   "es": "es obligatorio con {key_name} (uno de {choices})"},
    "cfg.snmp.bad_regex": {"en": 'expected a valid regular expression after "re:", got {got} ({error})',
                           "es": 'se esperaba una expresión regular válida después de "re:"; dice {got} ({error})'},
    "cfg.snmp.unknown_iftype": {
        "en": "unknown ifType {word}: use its number (e.g. type:23) or one of {names}, got {got}",
        "es": "ifType desconocido {word}: use su número (p. ej. type:23) o uno de {names}; dice {got}"},
    "cfg.snmp.oid_too_big": {"en": "OID sub-identifiers must be below 2^32, got {got}",
                             "es": "los números de un OID deben ser menores que 2^32; dice {got}"},
    "cfg.snmp.oid_instance": {"en": "name the object, without the instance .0 (it is added)",
                              "es": "nombre el objeto sin la instancia .0 (se agrega sola)"},
    "cfg.snmp.enum_table": {"en": 'expected a table of number = "label", e.g. { 1 = "unknown" }',
                            "es": 'se esperaba una tabla de número = "etiqueta", p. ej. { 1 = "unknown" }'},
    "cfg.snmp.enum_entry": {"en": 'expected number = "label", got {key} = {got}',
                            "es": 'se esperaba número = "etiqueta"; dice {key} = {got}'},
    "cfg.snmp.enum_raw": {"en": "an enum labels raw numbers: leave out type and scale",
                          "es": "un enum etiqueta números crudos: quite type y scale"},
    "cfg.snmp.true_if_list": {"en": "expected a list of numbers or strings that mean true",
                              "es": "se esperaba una lista de números o textos que significan verdadero"},
    "cfg.snmp.true_if_bool": {"en": 'goes with type = "bool" (or no type)',
                              "es": 'va con type = "bool" (o sin type)'},
    "cfg.snmp.columns_table": {"en": "expected a table of name = column number, e.g. { voltage = 2 }",
                               "es": "se esperaba una tabla de nombre = número de columna, p. ej. { voltage = 2 }"},
    "cfg.snmp.column_name": {"en": "column names are lowercase letters, digits and _",
                             "es": "los nombres de columna son letras minúsculas, dígitos y _"},
    "cfg.snmp.not_a_column": {"en": "{got} is not one of the columns", "es": "{got} no es una de las columnas"},
    "cfg.snmp.key_not_a_column": {"en": "is not one of the columns", "es": "no es una de las columnas"},
    "cfg.snmp.where_table": {"en": 'expected a table of column = value, e.g. { type = "1.3.6..." }',
                             "es": 'se esperaba una tabla de columna = valor, p. ej. { type = "1.3.6..." }'},
    "cfg.snmp.where_value": {"en": "expected a number, a string or a list of them",
                             "es": "se esperaba un número, un texto o una lista de ellos"},
    "cfg.snmp.row_field": {"en": "{field} is neither {{index}} nor one of the columns",
                           "es": "{field} no es {{index}} ni una de las columnas"},
    "cfg.snmp.per_row": {"en": "per_row = false reports nothing without a summary",
                         "es": "per_row = false no informa nada sin un summary"},
    "cfg.snmp.expr_allowed": {"en": "only column names, numbers and + - * / are allowed, got {got}",
                              "es": "solo se permiten nombres de columna, números y + - * /; dice {got}"},
    "cfg.snmp.expr_column": {"en": "{got} is not one of the columns ({columns})",
                             "es": "{got} no es una de las columnas ({columns})"},
    "cfg.snmp.metric_twice": {"en": "{file}: metric {metric} is also defined by profile {other}",
                              "es": "{file}: la métrica {metric} también la define el perfil {other}"},
    "cfg.snmp.interfaces_twice": {
        "en": "{file}: only one profile may have an [interfaces] section; {other} has one too",
        "es": "{file}: solo un perfil puede tener una sección [interfaces]; {other} también la tiene"},
    "cfg.snmp.status_column": {"en": "is required (the interface status column)",
                               "es": "es obligatorio (la columna de estado de la interfaz)"},

    # -- what was expected ------------------------------------------------------------------------
    "cfg.what.table": {"en": "a table", "es": "una tabla"},
    "cfg.what.tables": {"en": "a list of tables ([[{key}]])", "es": "una lista de tablas ([[{key}]])"},
    "cfg.what.string": {"en": "a string", "es": "un texto entre comillas"},
    "cfg.what.str_list": {"en": "a list of strings", "es": "una lista de textos"},
    "cfg.what.pattern": {"en": "a string matching {pattern}", "es": "un texto con la forma {pattern}"},
    "cfg.what.one_of": {"en": "one of {choices}", "es": "uno de {choices}"},
    "cfg.what.int": {"en": "an integer", "es": "un número entero"},
    "cfg.what.int_between": {"en": "an integer {lo}-{hi}", "es": "un número entero de {lo} a {hi}"},
    "cfg.what.int_min": {"en": "an integer >= {lo}", "es": "un número entero mayor o igual a {lo}"},
    "cfg.what.int_max": {"en": "an integer <= {hi}", "es": "un número entero menor o igual a {hi}"},
    "cfg.what.number": {"en": "a number", "es": "un número"},
    "cfg.what.number_between": {"en": "a number {lo}-{hi}", "es": "un número de {lo} a {hi}"},
    "cfg.what.number_min": {"en": "a number >= {lo}", "es": "un número mayor o igual a {lo}"},
    "cfg.what.number_max": {"en": "a number <= {hi}", "es": "un número menor o igual a {hi}"},
    "cfg.what.number_above": {"en": "a number greater than {lo}", "es": "un número mayor que {lo}"},
    "cfg.what.host": {"en": "a host name or IP address", "es": "un nombre de equipo o una dirección IP"},
    "cfg.what.host_port": {"en": '"host:port"', "es": '"equipo:puerto"'},
    "cfg.what.site_id": {
        "en": "a site id of 2-40 letters, digits, '_', '.', '-' (the CLUES code)",
        "es": "un id de sitio de 2 a 40 letras, dígitos, '_', '.', '-' (la clave CLUES)"},
    "cfg.what.socket_path": {"en": "an absolute path of at most 107 characters, or \"\"",
                             "es": "una ruta absoluta de 107 caracteres como máximo, o \"\""},
    "cfg.what.topic_prefix": {"en": "topic words separated by '/', without '+' or '#'",
                              "es": "palabras de tópico separadas por '/', sin '+' ni '#'"},
    "cfg.what.client_id": {"en": "1-64 letters, digits, '_', '.', '-'",
                           "es": "de 1 a 64 letras, dígitos, '_', '.', '-'"},
    "cfg.what.device_name": {"en": "a device name of lowercase letters, digits, '_' or '-' (max 32)",
                             "es": "un nombre de equipo de letras minúsculas, dígitos, '_' o '-' (máx. 32)"},
    "cfg.what.directory": {"en": "a directory path", "es": "la ruta de una carpeta"},
    "cfg.what.serial_port": {"en": "a serial device path like /dev/ttyUSB0 or /dev/serial/by-id/...",
                             "es": "la ruta de un puerto serie como /dev/ttyUSB0 o /dev/serial/by-id/..."},
    "cfg.what.address_base": {"en": '0, 1 or "modicon"', "es": '0, 1 o "modicon"'},
    "cfg.what.profiles_dir": {"en": 'an absolute directory path, e.g. "/etc/clinic-agent/profiles"',
                              "es": 'la ruta absoluta de una carpeta, p. ej. "/etc/clinic-agent/profiles"'},
    "cfg.what.profile_name": {"en": 'a profile name like "eastron-sdm630"',
                              "es": 'un nombre de perfil como "eastron-sdm630"'},
    "cfg.what.doc_title": {"en": "the document's title, as printed on it",
                           "es": "el título del documento, tal como aparece impreso"},
    "cfg.what.doc_version": {"en": "the document's version and/or date",
                             "es": "la versión y/o fecha del documento"},
    "cfg.what.url": {"en": "an http(s) address", "es": "una dirección http(s)"},
    "cfg.what.metric_name": {"en": 'a metric name of dotted lowercase words, e.g. "battery.charge"',
                             "es": 'un nombre de métrica de palabras en minúsculas con puntos, p. ej. "battery.charge"'},
    "cfg.what.metric_dotted": {"en": "a dotted lowercase metric name",
                               "es": "un nombre de métrica en minúsculas con puntos"},
    "cfg.what.metric_prefix": {"en": "a dotted lowercase metric prefix",
                               "es": "un prefijo de métrica en minúsculas con puntos"},
    "cfg.what.lower_word": {"en": "lowercase letters, digits, _", "es": "letras minúsculas, dígitos, _"},
    "cfg.what.code_table": {"en": 'a table of code = "text", e.g. { 0 = "online" }',
                            "es": 'una tabla de código = "texto", p. ej. { 0 = "online" }'},
    "cfg.what.integer_code": {"en": "an integer code", "es": "un código entero"},
    "cfg.what.bit_number": {"en": "a bit number 0-{hi}", "es": "un número de bit de 0 a {hi}"},
    "cfg.what.non_empty": {"en": "a non-empty string", "es": "un texto no vacío"},
    "cfg.what.min_chars": {"en": "at least {n} characters", "es": "al menos {n} caracteres"},
    "cfg.what.flag_name": {"en": "a flag name of lowercase letters, digits and '_'",
                           "es": "un nombre de bandera de letras minúsculas, dígitos y '_'"},
    "cfg.what.snmp_version": {"en": 'one of "1", "2c", "3" (in quotes)',
                              "es": 'uno de "1", "2c", "3" (entre comillas)'},
    "cfg.what.snmp_profile_name": {"en": "a profile name (lowercase, as in snmp-<name>.toml)",
                                   "es": "un nombre de perfil (en minúsculas, como en snmp-<nombre>.toml)"},
    "cfg.what.v3_user": {"en": "a v3 user name of 1-{n} characters without spaces",
                         "es": "un usuario v3 de 1 a {n} caracteres sin espacios"},
    "cfg.what.interface": {"en": 'an interface name or "re:<regular expression>"',
                           "es": 'un nombre de interfaz o "re:<expresión regular>"'},
    "cfg.what.wan_target": {"en": '"host:port" or "host"', "es": '"equipo:puerto" o "equipo"'},
    "cfg.what.oid": {"en": 'a numeric OID such as "1.3.6.1.2.1.1.3"',
                     "es": 'un OID numérico como "1.3.6.1.2.1.1.3"'},
    "cfg.what.column_number": {"en": "a column number >= 1", "es": "un número de columna mayor o igual a 1"},
    "cfg.what.expression": {"en": 'a column name or arithmetic such as "used * units"',
                            "es": 'un nombre de columna o una cuenta como "used * units"'},
    "cfg.what.iftype_list": {"en": "a list of ifType numbers", "es": "una lista de números ifType"},
    "cfg.what.iftype": {"en": "an ifType number", "es": "un número ifType"},
    "cfg.what.dotted_numbers": {"en": "dotted numbers", "es": "números separados por puntos"},
}
