"""The installer's words (scripts/install.sh and agent.install), in English and Spanish.

install.sh loads every ``inst.*`` message once (``python -m agent.install messages``) and fills in
``{name}`` placeholders itself, so they are plain names only, never format specs or braces.
Option names (--site-id), paths and commands stay as they are typed.
"""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    # -- --help -----------------------------------------------------------------------------------
    "inst.usage": {
        "en": """Usage: install.sh [OPTIONS]

Installs (or upgrades) the clinic agent and its systemd service, with this clinic's settings.
Settings and the reading buffer of an earlier install are kept. On a terminal it asks for each
clinic setting not given as an option; nothing is changed before all of them are checked.

This clinic's settings:
  --site-id CODE           the clinic's CLUES code, e.g. DFSSA001234
  --broker HOST[:PORT]     the central MQTT broker (port 8883 unless given)
  --ca-file FILE           the CA certificate (PEM) that signed the broker's certificate
  --client-cert FILE       the clinic's client certificate (PEM), with --client-key
  --client-key FILE        its private key (PEM, without a passphrase)
  --mqtt-user NAME         the clinic's MQTT user name
  --mqtt-password-file FILE  a file holding the MQTT password (never give it on the command line)
  --trusted-keys DIR       a directory with the operators' public keys (*.pub)
  --timezone ZONE          the PC's time zone, e.g. America/Mexico_City
  --lang es|en             language of the installer and of the technician's commands
                           (default: Spanish)
  --non-interactive        never ask; use only the options given

Installation:
  --offline DIR    install from the wheel files in DIR, without internet
                   (a bundle made by build-bundle.sh does this by itself)
  --python PATH    Python interpreter to use (default: /usr/bin/python3; 3.11 or newer)
  --no-start       install and enable the service, but do not start it now
  --uninstall      remove the program and the service; keep settings and readings
  --purge          with --uninstall: also delete settings, readings and the user
  --root DIR       install into DIR as if it were / (tests, images); implies --no-users and
                   --no-start. The virtualenv only works at the path it was built at.
  --no-users       do not create the user or change file owners; the intended owners are
                   written to /opt/clinic-agent/install-manifest
  -h, --help       show this help""",
        "es": """Uso: install.sh [OPCIONES]

Instala (o actualiza) el agente de la clínica y su servicio systemd, con los datos de esta
clínica. Se conservan la configuración y el búfer de lecturas de una instalación anterior. En
una terminal pregunta cada dato de la clínica que no se dio como opción; no se cambia nada antes
de revisarlos todos.

Datos de esta clínica:
  --site-id CLAVE          la clave CLUES de la clínica, p. ej. DFSSA001234
  --broker EQUIPO[:PUERTO] el bróker MQTT central (puerto 8883 si no se indica)
  --ca-file ARCHIVO        el certificado de la CA (PEM) que firmó el certificado del bróker
  --client-cert ARCHIVO    el certificado de cliente de la clínica (PEM), con --client-key
  --client-key ARCHIVO     su llave privada (PEM, sin frase de paso)
  --mqtt-user NOMBRE       el usuario MQTT de la clínica
  --mqtt-password-file ARCHIVO  un archivo con la contraseña MQTT (nunca la escriba en el comando)
  --trusted-keys DIRECTORIO  un directorio con las llaves públicas de los operadores (*.pub)
  --timezone ZONA          la zona horaria de la PC, p. ej. America/Mexico_City
  --lang es|en             idioma del instalador y de los comandos del técnico
                           (por omisión: español)
  --non-interactive        no preguntar nada; usar solo las opciones dadas

Instalación:
  --offline DIRECTORIO  instalar desde los archivos wheel de DIRECTORIO, sin internet
                   (un paquete hecho con build-bundle.sh lo hace solo)
  --python RUTA    el intérprete de Python (por omisión: /usr/bin/python3; 3.11 o más nuevo)
  --no-start       instalar y habilitar el servicio, pero no iniciarlo ahora
  --uninstall      quitar el programa y el servicio; conservar configuración y lecturas
  --purge          con --uninstall: borrar también configuración, lecturas y el usuario
  --root DIRECTORIO  instalar en DIRECTORIO como si fuera / (pruebas, imágenes); implica
                   --no-users y --no-start. El virtualenv solo funciona en la ruta donde se creó.
  --no-users       no crear el usuario ni cambiar dueños de archivos; los dueños previstos se
                   anotan en /opt/clinic-agent/install-manifest
  -h, --help       mostrar esta ayuda"""},

    # -- frame ------------------------------------------------------------------------------------
    "inst.title.install": {"en": "Installing the clinic agent", "es": "Instalando el agente de la clínica"},
    "inst.title.install_root": {"en": "Installing the clinic agent into {root}",
                                "es": "Instalando el agente de la clínica en {root}"},
    "inst.title.remove": {"en": "Removing the clinic agent", "es": "Quitando el agente de la clínica"},
    "inst.title.remove_root": {"en": "Removing the clinic agent from {root}",
                               "es": "Quitando el agente de la clínica de {root}"},
    "inst.done": {"en": "Done.", "es": "Listo."},
    "inst.done.where": {"en": "Settings: {config}   Status: systemctl status {app}",
                        "es": "Configuración: {config}   Estado: systemctl status {app}"},
    "inst.error": {"en": "ERROR", "es": "ERROR"},
    "inst.warning": {"en": "WARNING", "es": "AVISO"},
    "inst.failed_at": {
        "en": "step {step}/{steps} failed (line {line}: {command}). Running this script again is safe.",
        "es": "falló el paso {step}/{steps} (línea {line}: {command}). Se puede volver a ejecutar este script sin riesgo."},
    "inst.need_root": {"en": "run this as root: sudo {command}",
                       "es": "ejecútelo como root: sudo {command}"},
    "inst.unknown_option": {"en": "unknown option: {option} (install.sh --help lists them)",
                            "es": "opción desconocida: {option} (install.sh --help las muestra)"},
    "inst.needs_value": {"en": "{option} needs a value", "es": "{option} necesita un valor"},
    "inst.purge_alone": {"en": "--purge goes with --uninstall (sudo ./install.sh --uninstall --purge)",
                         "es": "--purge va con --uninstall (sudo ./install.sh --uninstall --purge)"},
    "inst.no_offline_dir": {"en": "--offline: no such directory: {dir}",
                            "es": "--offline: no existe el directorio {dir}"},

    # -- 1: this computer -------------------------------------------------------------------------
    "inst.step.computer": {"en": "Checking this computer", "es": "Revisando esta computadora"},
    "inst.python_old": {
        "en": "Python {version} is too old: the agent needs Python {min} or newer (Debian 12, Ubuntu 24.04).",
        "es": "Python {version} es demasiado viejo: el agente necesita Python {min} o más nuevo (Debian 12, Ubuntu 24.04)."},
    "inst.no_venv": {"en": "Python's venv module is missing. Install it with: apt-get install python3-venv",
                     "es": "Falta el módulo venv de Python. Instálelo con: apt-get install python3-venv"},
    "inst.no_ensurepip": {"en": "Python's ensurepip is missing. Install it with: apt-get install python3-venv",
                          "es": "Falta ensurepip de Python. Instálelo con: apt-get install python3-venv"},
    "inst.python_info": {"en": "Python {version} ({path}), {machine}", "es": "Python {version} ({path}), {machine}"},
    "inst.offline_from": {"en": "installing offline from {dir}", "es": "instalando sin internet desde {dir}"},
    "inst.no_wheels": {"en": "no .whl files in {dir}", "es": "no hay archivos .whl en {dir}"},
    "inst.from_source": {"en": "installing from the source tree {dir} (needs internet for the dependencies)",
                         "es": "instalando desde el código fuente en {dir} (necesita internet para las dependencias)"},
    "inst.target_root": {"en": "target root: {root} (users and owners are recorded, not applied)",
                         "es": "raíz de destino: {root} (usuarios y dueños se anotan, no se aplican)"},
    "inst.bundle_info": {"en": "bundle: {name}, built for Python {python} on {machine}",
                         "es": "paquete: {name}, hecho para Python {python} en {machine}"},
    "inst.bundle_python": {
        "en": "this bundle is for Python {want} but this PC has Python {have}. Build a bundle on a PC like this one (scripts/build-bundle.sh).",
        "es": "este paquete es para Python {want} pero esta PC tiene Python {have}. Haga un paquete en una PC como esta (scripts/build-bundle.sh)."},
    "inst.bundle_machine": {"en": "this bundle is for {want} PCs but this one is {have}.",
                            "es": "este paquete es para PCs {want} pero esta es {have}."},
    "inst.bundle_damaged": {"en": "the bundle is damaged (checksums differ): copy it again",
                            "es": "el paquete está dañado (las sumas de verificación no coinciden): cópielo de nuevo"},
    "inst.bundle_ok": {"en": "bundle checksums OK", "es": "sumas de verificación del paquete correctas"},

    # -- 2: this clinic's settings ----------------------------------------------------------------
    "inst.step.settings": {"en": "This clinic's settings", "es": "Datos de esta clínica"},
    "inst.settings.none": {
        "en": "none given: {path} starts as the example, to be filled in by hand (or run the installer again with --site-id, --broker, ...)",
        "es": "no se dio ninguno: {path} empieza como el ejemplo, para llenarlo a mano (o vuelva a ejecutar el instalador con --site-id, --broker, ...)"},
    "inst.settings.kept": {"en": "none given: the settings in {path} are kept as they are",
                           "es": "no se dio ninguno: se conservan tal cual los datos de {path}"},
    "inst.settings.refused": {
        "en": "nothing was changed: correct the settings above and run the installer again",
        "es": "no se cambió nada: corrija los datos de arriba y vuelva a ejecutar el instalador"},
    "inst.settings.missing": {"en": "{option} is needed too ({what})",
                              "es": "también hace falta {option} ({what})"},
    "inst.settings.pair": {"en": "--client-cert and --client-key go together: give both",
                           "es": "--client-cert y --client-key van juntos: indique los dos"},
    "inst.settings.password_needs_user": {
        "en": "a password needs the user it belongs to: add --mqtt-user",
        "es": "una contraseña necesita el usuario al que pertenece: agregue --mqtt-user"},
    "inst.what.site_id": {"en": "the clinic's CLUES code", "es": "la clave CLUES de la clínica"},
    "inst.what.broker": {"en": "the central broker", "es": "el bróker central"},
    "inst.sum.site_id": {"en": "site id (CLUES): {value}", "es": "id de sitio (CLUES): {value}"},
    "inst.sum.broker": {"en": "broker: {host}:{port}", "es": "bróker: {host}:{port}"},
    "inst.sum.ca_file": {"en": "broker's CA: {path}", "es": "CA del bróker: {path}"},
    "inst.sum.system_ca": {"en": "broker's CA: the system's trusted CAs",
                           "es": "CA del bróker: las CA de confianza del sistema"},
    "inst.sum.client_cert": {"en": "client certificate: {cert} (key {key})",
                             "es": "certificado de cliente: {cert} (llave {key})"},
    "inst.sum.user": {"en": "MQTT user: {user}", "es": "usuario MQTT: {user}"},
    "inst.sum.password": {"en": "MQTT password: given (not shown)",
                          "es": "contraseña MQTT: indicada (no se muestra)"},
    "inst.sum.trusted_keys": {"en": "operators' keys: {n} from {path}",
                              "es": "llaves de los operadores: {n} de {path}"},
    "inst.sum.timezone": {"en": "time zone: {zone}", "es": "zona horaria: {zone}"},
    "inst.sum.language": {"en": "language of the technician's commands: {lang}",
                          "es": "idioma de los comandos del técnico: {lang}"},
    "inst.lang.es": {"en": "Spanish (es)", "es": "español (es)"},
    "inst.lang.en": {"en": "English (en)", "es": "inglés (en)"},
    "inst.bad.option": {"en": "{option}: {message}", "es": "{option}: {message}"},
    "inst.bad.site_id": {"en": "{got} is not a site id: expected {what}",
                         "es": "{got} no es un id de sitio: se espera {what}"},
    "inst.bad.broker": {"en": "{got} is not a broker address: write HOST or HOST:PORT, e.g. mqtt.example.org:8883",
                        "es": "{got} no es una dirección de bróker: escriba EQUIPO o EQUIPO:PUERTO, p. ej. mqtt.example.org:8883"},
    "inst.bad.port": {"en": "{got} is not a port: a number from 1 to 65535 (the broker's TLS port is usually 8883)",
                      "es": "{got} no es un puerto: un número de 1 a 65535 (el puerto TLS del bróker suele ser 8883)"},
    "inst.bad.unreadable": {"en": "cannot read {path}: {error}", "es": "no se puede leer {path}: {error}"},
    "inst.bad.is_dir": {"en": "{path} is a directory: give the file itself",
                        "es": "{path} es un directorio: indique el archivo mismo"},
    "inst.bad.not_dir": {"en": "{path} is not a directory", "es": "{path} no es un directorio"},
    "inst.bad.too_big": {"en": "{path} is larger than {limit} bytes: not the file meant",
                         "es": "{path} pesa más de {limit} bytes: no es el archivo indicado"},
    "inst.bad.ca_is_key": {
        "en": "{path} holds a private key, not the CA certificate: ask the central team for ca.crt (never send private keys)",
        "es": "{path} contiene una llave privada, no el certificado de la CA: pida ca.crt al equipo central (nunca envíe llaves privadas)"},
    "inst.bad.ca_not_pem": {
        "en": "{path} is not a PEM certificate (a text file starting with -----BEGIN CERTIFICATE-----): ask the central team for ca.crt",
        "es": "{path} no es un certificado PEM (un archivo de texto que empieza con -----BEGIN CERTIFICATE-----): pida ca.crt al equipo central"},
    "inst.bad.ca_der": {
        "en": "{path} is a binary (DER) certificate: convert it with: openssl x509 -inform der -in {path} -out ca.crt",
        "es": "{path} es un certificado binario (DER): conviértalo con: openssl x509 -inform der -in {path} -out ca.crt"},
    "inst.bad.ca_damaged": {"en": "{path} cannot be read as a certificate ({error}): copy it again",
                            "es": "{path} no se puede leer como certificado ({error}): cópielo de nuevo"},
    "inst.bad.ca_expired": {
        "en": "the certificate in {path} expired on {until}: ask the central team for the current ca.crt (or, if this PC's date is wrong, set the clock first)",
        "es": "el certificado de {path} venció el {until}: pida el ca.crt vigente al equipo central (o, si la fecha de esta PC está mal, corrija primero el reloj)"},
    "inst.bad.cert_not_pem": {"en": "{path} is not a PEM certificate (-----BEGIN CERTIFICATE-----)",
                              "es": "{path} no es un certificado PEM (-----BEGIN CERTIFICATE-----)"},
    "inst.bad.key_not_pem": {"en": "{path} is not a PEM private key (-----BEGIN ... PRIVATE KEY-----)",
                             "es": "{path} no es una llave privada PEM (-----BEGIN ... PRIVATE KEY-----)"},
    "inst.bad.key_encrypted": {
        "en": "{path} is protected with a passphrase, which the agent cannot type at every start: ask the central team for the key without one",
        "es": "{path} está protegida con una frase de paso, que el agente no puede escribir en cada arranque: pida al equipo central la llave sin frase"},
    "inst.bad.pair_mismatch": {
        "en": "the key {key} does not belong to the certificate {cert}: they must be the pair issued for this clinic",
        "es": "la llave {key} no corresponde al certificado {cert}: deben ser el par emitido para esta clínica"},
    "inst.bad.user": {"en": "{got} is not a user name: one word, no spaces",
                      "es": "{got} no es un nombre de usuario: una palabra, sin espacios"},
    "inst.bad.password_empty": {"en": "the password is empty", "es": "la contraseña está vacía"},
    "inst.bad.password_control": {
        "en": "the password has a line break or another control character in it: the file must hold the password alone, on one line",
        "es": "la contraseña tiene un salto de línea u otro carácter de control: el archivo debe contener solo la contraseña, en una línea"},
    "inst.bad.password_encoding": {"en": "{path} is not UTF-8 text", "es": "{path} no es texto UTF-8"},
    "inst.bad.private_key": {
        "en": "{path} is a private key: only the operators' public keys (*.pub) may be on this PC; remove it and tell the central team",
        "es": "{path} es una llave privada: en esta PC solo pueden estar las llaves públicas de los operadores (*.pub); quítela y avise al equipo central"},
    "inst.bad.not_ed25519": {"en": "{path} is not an Ed25519 public key in PEM (clinic-agent fleet keygen makes them)",
                             "es": "{path} no es una llave pública Ed25519 en PEM (clinic-agent fleet keygen las genera)"},
    "inst.bad.no_keys": {"en": "no *.pub key in {path}", "es": "no hay ninguna llave *.pub en {path}"},
    "inst.bad.timezone": {"en": "{got} is not a time zone this PC knows (e.g. America/Mexico_City; list: timedatectl list-timezones)",
                          "es": "{got} no es una zona horaria que conozca esta PC (p. ej. America/Mexico_City; lista: timedatectl list-timezones)"},
    "inst.bad.timezone_near": {"en": "{got} is not a time zone; did you mean {near}?",
                               "es": "{got} no es una zona horaria; ¿quiso decir {near}?"},
    "inst.bad.lang": {"en": "{got}: the language is es or en", "es": "{got}: el idioma es es o en"},

    # -- questions on a terminal ------------------------------------------------------------------
    "inst.ask.intro": {
        "en": "A few questions about this clinic. Enter keeps the value in [brackets]; nothing is changed until every answer is checked.",
        "es": "Unas preguntas sobre esta clínica. Enter deja el valor entre [corchetes]; no se cambia nada hasta revisar todas las respuestas."},
    "inst.ask.site_id": {"en": "CLUES code of the clinic (e.g. DFSSA001234)",
                         "es": "Clave CLUES de la clínica (p. ej. DFSSA001234)"},
    "inst.ask.broker": {"en": "Central broker, HOST or HOST:PORT (from the central team)",
                        "es": "Bróker central, EQUIPO o EQUIPO:PUERTO (lo da el equipo central)"},
    "inst.ask.ca_file": {"en": "File of the broker's CA, ca.crt (Enter: the system's trusted CAs)",
                         "es": "Archivo de la CA del bróker, ca.crt (Enter: las CA de confianza del sistema)"},
    "inst.ask.auth": {
        "en": "How does the clinic log in to the broker? 1 = user and password, 2 = client certificate, 3 = both, 4 = neither",
        "es": "¿Cómo entra la clínica al bróker? 1 = usuario y contraseña, 2 = certificado de cliente, 3 = ambos, 4 = ninguno"},
    "inst.ask.user": {"en": "MQTT user", "es": "Usuario MQTT"},
    "inst.ask.password": {"en": "MQTT password (not shown as you type)",
                          "es": "Contraseña MQTT (no se muestra al escribir)"},
    "inst.ask.password_again": {"en": "The same password again", "es": "La misma contraseña otra vez"},
    "inst.ask.password_differs": {"en": "the two passwords differ: type them again",
                                  "es": "las dos contraseñas no coinciden: escríbalas de nuevo"},
    "inst.ask.client_cert": {"en": "File of the clinic's client certificate", "es": "Archivo del certificado de cliente de la clínica"},
    "inst.ask.client_key": {"en": "File of its private key", "es": "Archivo de su llave privada"},
    "inst.ask.trusted_keys": {
        "en": "Directory of the operators' public keys, *.pub (Enter: none for now; remote changes are then refused)",
        "es": "Directorio de las llaves públicas de los operadores, *.pub (Enter: ninguna por ahora; se rechazarán los cambios remotos)"},
    "inst.ask.timezone": {"en": "Time zone of the clinic", "es": "Zona horaria de la clínica"},
    "inst.ask.choice": {"en": "answer with one of: {choices}", "es": "responda con una de estas: {choices}"},
    "inst.ask.required": {"en": "an answer is needed", "es": "hace falta una respuesta"},
    "inst.ask.closed": {"en": "no answer (the input was closed)", "es": "sin respuesta (se cerró la entrada)"},

    # -- 3: the user ------------------------------------------------------------------------------
    "inst.step.user": {"en": "System user {user}", "es": "Usuario del sistema {user}"},
    "inst.user.skipped": {"en": "skipped (--no-users): the service runs as '{user}', in group 'dialout'",
                          "es": "omitido (--no-users): el servicio corre como '{user}', en el grupo 'dialout'"},
    "inst.user.exists": {"en": "user {user} already exists", "es": "el usuario {user} ya existe"},
    "inst.user.created": {"en": "created system user {user}", "es": "se creó el usuario del sistema {user}"},
    "inst.user.in_dialout": {"en": "{user} is in group dialout (serial/RS-485 adapters)",
                             "es": "{user} está en el grupo dialout (adaptadores serie/RS-485)"},
    "inst.user.added_dialout": {"en": "added {user} to group dialout (serial/RS-485 adapters)",
                                "es": "se agregó {user} al grupo dialout (adaptadores serie/RS-485)"},

    # -- 4: the program ---------------------------------------------------------------------------
    "inst.step.program": {"en": "Installing the program into {prefix}", "es": "Instalando el programa en {prefix}"},
    "inst.venv.creating": {"en": "creating the virtualenv releases/{name}", "es": "creando el virtualenv releases/{name}"},
    "inst.pip.offline": {"en": "installing {dist} and its dependencies from {dir} (offline)",
                         "es": "instalando {dist} y sus dependencias desde {dir} (sin internet)"},
    "inst.pip.offline_failed": {"en": "pip could not install from {dir} (see {log}). Nothing was changed.",
                                "es": "pip no pudo instalar desde {dir} (vea {log}). No se cambió nada."},
    "inst.pip.online": {"en": "installing {dist} and its dependencies from the internet (a minute or two)",
                        "es": "instalando {dist} y sus dependencias desde internet (uno o dos minutos)"},
    "inst.pip.online_failed": {
        "en": "pip could not install the agent (see {log}). No internet? Use a bundle. Nothing was changed.",
        "es": "pip no pudo instalar el agente (vea {log}). ¿Sin internet? Use un paquete. No se cambió nada."},
    "inst.program.broken": {"en": "the new program does not start: {error}. Nothing was changed.",
                            "es": "el programa nuevo no arranca: {error}. No se cambió nada."},
    "inst.program.installed": {"en": "installed {version}", "es": "instalado {version}"},
    "inst.program.switched": {"en": "{link} -> releases/{name}", "es": "{link} -> releases/{name}"},
    "inst.program.removed_old": {"en": "removed old release {name}", "es": "se quitó la versión anterior {name}"},
    "inst.program.command": {"en": "command: {path}", "es": "comando: {path}"},

    # -- 5: configuration -------------------------------------------------------------------------
    "inst.step.config": {"en": "Configuration in {etc}", "es": "Configuración en {etc}"},
    "inst.perm.corrected": {"en": "corrected the permissions of {path} ({before} -> {after})",
                            "es": "se corrigieron los permisos de {path} ({before} -> {after})"},
    "inst.config.kept": {"en": "kept your settings: {path}", "es": "se conservó su configuración: {path}"},
    "inst.config.created_example": {"en": "created {path}: edit it (site id, broker, devices)",
                                    "es": "se creó {path}: edítelo (id de sitio, bróker, equipos)"},
    "inst.config.created": {"en": "created {path} for site {site}, broker {broker}",
                            "es": "se creó {path} para el sitio {site}, bróker {broker}"},
    "inst.config.updated": {"en": "updated {path}: {keys} (the file before: {backup})",
                            "es": "se actualizó {path}: {keys} (el archivo anterior: {backup})"},
    "inst.config.unchanged": {"en": "{path} already holds these settings",
                              "es": "{path} ya tiene estos datos"},
    "inst.config.cannot_edit": {
        "en": "cannot change {keys} in {path} safely (the file was left as it was): set them by hand, then run clinic-agent validate",
        "es": "no se puede cambiar {keys} en {path} sin riesgo (el archivo quedó como estaba): escríbalos a mano y luego ejecute clinic-agent validate"},
    "inst.secrets.kept": {"en": "kept your passwords: {path}", "es": "se conservaron sus contraseñas: {path}"},
    "inst.secrets.created": {"en": "created {path} (passwords; readable by the agent only)",
                             "es": "se creó {path} (contraseñas; solo el agente puede leerlo)"},
    "inst.secrets.password": {"en": "the MQTT password is in {path} (not shown)",
                              "es": "la contraseña MQTT está en {path} (no se muestra)"},
    "inst.file.ca": {"en": "broker's CA certificate: {path}", "es": "certificado de la CA del bróker: {path}"},
    "inst.file.client_cert": {"en": "client certificate: {path}", "es": "certificado de cliente: {path}"},
    "inst.file.client_key": {"en": "client key (readable by the agent only): {path}",
                             "es": "llave de cliente (solo el agente puede leerla): {path}"},
    "inst.file.trusted_keys": {"en": "{n} operator key(s) in {path}: {names}",
                               "es": "{n} llave(s) de operadores en {path}: {names}"},
    "inst.file.trusted_removed": {"en": "removed the key {name}, not in the new set",
                                  "es": "se quitó la llave {name}, que no está en el juego nuevo"},
    "inst.tz.set": {"en": "time zone: {zone} (was {before})", "es": "zona horaria: {zone} (antes {before})"},
    "inst.tz.same": {"en": "time zone: {zone} (unchanged)", "es": "zona horaria: {zone} (sin cambio)"},
    "inst.tz.failed": {"en": "could not set the time zone ({error}): set it with: sudo timedatectl set-timezone {zone}",
                       "es": "no se pudo poner la zona horaria ({error}): póngala con: sudo timedatectl set-timezone {zone}"},
    "inst.tz.unknown": {"en": "unknown", "es": "desconocida"},

    # The comments of a new agent.toml and secrets.toml.
    "inst.cfg.head": {"en": "clinic-agent settings for the clinic {site}, written by install.sh on {date}.",
                      "es": "Configuración de clinic-agent para la clínica {site}, escrita por install.sh el {date}."},
    "inst.cfg.example": {"en": "Every option is explained in {path}",
                         "es": "Cada opción se explica en {path}"},
    "inst.cfg.after_edit": {"en": "After each edit: clinic-agent validate && sudo systemctl reload clinic-agent",
                            "es": "Después de cada cambio: clinic-agent validate && sudo systemctl reload clinic-agent"},
    "inst.cfg.site_id": {"en": "The clinic's CLUES code: names the clinic on the central broker.",
                         "es": "La clave CLUES de la clínica: la identifica ante el bróker central."},
    "inst.cfg.language": {"en": "Language of the technician's commands: \"es\" or \"en\".",
                          "es": "Idioma de los comandos del técnico: \"es\" o \"en\"."},
    "inst.cfg.secrets": {"en": "Passwords, communities and keys: readable by the agent only.",
                         "es": "Contraseñas, comunidades y llaves: solo el agente puede leerlas."},
    "inst.cfg.broker": {"en": "The central broker; TLS with the broker's certificate checked.",
                        "es": "El bróker central; TLS con el certificado del bróker verificado."},
    "inst.cfg.system_ca": {"en": "No ca_file: the system's trusted CAs check the broker.",
                           "es": "Sin ca_file: las CA de confianza del sistema verifican al bróker."},
    "inst.cfg.password": {"en": "password: in the secrets file.", "es": "password: en el archivo de secretos."},
    "inst.cfg.devices": {
        "en": "This PC. Add the router, UPS and meter (see the example); clinic-agent scan snmp and clinic-agent scan modbus find their settings.",
        "es": "Esta PC. Agregue el router, el UPS y el medidor (vea el ejemplo); clinic-agent scan snmp y clinic-agent scan modbus encuentran sus datos."},
    "inst.cfg.remote": {"en": "Signed changes from the central team: only keys in trusted_keys_dir are accepted.",
                        "es": "Cambios firmados del equipo central: solo se aceptan las llaves de trusted_keys_dir."},
    "inst.sec.head": {"en": "Secrets of clinic-agent: readable by the agent only (0600), never logged.",
                      "es": "Secretos de clinic-agent: solo el agente puede leerlos (0600), nunca se registran."},
    "inst.sec.devices": {"en": "A router's community or SNMPv3 keys go in a [devices.NAME] table (see the example).",
                         "es": "La comunidad del router o las llaves SNMPv3 van en una tabla [devices.NOMBRE] (vea el ejemplo)."},

    # -- 6, 7: data directory, service ------------------------------------------------------------
    "inst.step.state": {"en": "Data directory {path}", "es": "Directorio de datos {path}"},
    "inst.state.kept_buffer": {"en": "kept the reading buffer ({size} on disk)",
                               "es": "se conservó el búfer de lecturas ({size} en disco)"},
    "inst.state.exists": {"en": "already there", "es": "ya existe"},
    "inst.state.created": {"en": "created", "es": "creado"},
    "inst.step.unit": {"en": "systemd service {unit}", "es": "servicio systemd {unit}"},
    "inst.unit.unchanged": {"en": "unit file unchanged: {path}", "es": "archivo de unidad sin cambios: {path}"},
    "inst.unit.updated": {"en": "unit file updated: {path}", "es": "archivo de unidad actualizado: {path}"},
    "inst.unit.installed": {"en": "unit file installed: {path}", "es": "archivo de unidad instalado: {path}"},
    "inst.unit.missing": {"en": "missing {path}", "es": "falta {path}"},
    "inst.unit.enabled": {"en": "enabled: starts at every boot", "es": "habilitado: arranca con cada encendido"},

    # -- 8: validate ------------------------------------------------------------------------------
    "inst.step.validate": {"en": "Checking the configuration (clinic-agent validate)",
                           "es": "Revisando la configuración (clinic-agent validate)"},
    "inst.validate.example": {
        "en": "{path} is still the example: put in this clinic's site id, broker and devices (or run the installer again with --site-id, --broker, ...), then run:",
        "es": "{path} sigue siendo el ejemplo: ponga el id de sitio, el bróker y los equipos de esta clínica (o vuelva a ejecutar el instalador con --site-id, --broker, ...) y luego ejecute:"},
    "inst.validate.example_secrets": {"en": "{path} still holds the example passwords",
                                      "es": "{path} todavía tiene las contraseñas del ejemplo"},
    "inst.validate.cannot_run": {
        "en": "user {user} cannot run the program: is {python} in a private directory (such as /root)? Install again with --python /usr/bin/python3.",
        "es": "el usuario {user} no puede ejecutar el programa: ¿está {python} en un directorio privado (como /root)? Instale de nuevo con --python /usr/bin/python3."},
    "inst.validate.new": {"en": "This is a new install: fill in {path} (and secrets.toml), then run:",
                          "es": "Es una instalación nueva: llene {path} (y secrets.toml) y luego ejecute:"},
    "inst.validate.problems": {"en": "the configuration has problems (above). Fix {path}, then run:",
                               "es": "la configuración tiene problemas (arriba). Corrija {path} y luego ejecute:"},

    # -- 9: start ---------------------------------------------------------------------------------
    "inst.step.start": {"en": "Starting the service", "es": "Iniciando el servicio"},
    "inst.start.root": {"en": "not started: installed into {root}, not onto this computer",
                        "es": "no se inició: se instaló en {root}, no en esta computadora"},
    "inst.start.no_systemd": {
        "en": "systemd is not running on this computer (container or chroot?): the service is installed and enabled but not started. To run the agent by hand:",
        "es": "systemd no está corriendo en esta computadora (¿contenedor o chroot?): el servicio está instalado y habilitado pero no iniciado. Para correr el agente a mano:"},
    "inst.start.no_start": {"en": "not started (--no-start). Start it with: systemctl restart {app}",
                            "es": "no se inició (--no-start). Inícielo con: systemctl restart {app}"},
    "inst.start.bad_config": {"en": "not started: the configuration needs fixing first (see above)",
                              "es": "no se inició: primero hay que corregir la configuración (vea arriba)"},
    "inst.start.failed": {"en": "the service did not start (log above; more with: journalctl -u {app})",
                          "es": "el servicio no arrancó (registro arriba; más con: journalctl -u {app})"},
    "inst.start.running": {"en": "running: {status}", "es": "en marcha: {status}"},
    "inst.start.follow": {"en": "follow its log with: journalctl -u {app} -f",
                          "es": "siga su registro con: journalctl -u {app} -f"},

    # -- 10: doctor -------------------------------------------------------------------------------
    "inst.step.doctor": {"en": "Checking every link (clinic-agent doctor)",
                         "es": "Revisando cada eslabón (clinic-agent doctor)"},
    "inst.doctor.example": {"en": "not run: the configuration is still the example",
                            "es": "no se ejecutó: la configuración sigue siendo el ejemplo"},
    "inst.doctor.ok": {"en": "every link works: the clinic reports to the central team",
                       "es": "todos los eslabones funcionan: la clínica informa al equipo central"},
    "inst.doctor.problems": {
        "en": "doctor found problems (above, each with what to check); the agent keeps the readings meanwhile. After fixing them run: sudo clinic-agent doctor",
        "es": "doctor encontró problemas (arriba, cada uno con qué revisar); mientras tanto el agente guarda las lecturas. Después de corregirlos ejecute: sudo clinic-agent doctor"},

    # -- uninstall --------------------------------------------------------------------------------
    "inst.step.stop": {"en": "Stopping and disabling the service", "es": "Deteniendo y deshabilitando el servicio"},
    "inst.stop.done": {"en": "stopped and disabled", "es": "detenido y deshabilitado"},
    "inst.stop.disabled": {"en": "disabled", "es": "deshabilitado"},
    "inst.step.remove": {"en": "Removing the program", "es": "Quitando el programa"},
    "inst.remove.not_ours": {"en": "left {path} alone: it is not the link this installer made",
                             "es": "no se tocó {path}: no es el enlace que hizo este instalador"},
    "inst.remove.removed": {"en": "removed {path}", "es": "se quitó {path}"},
    "inst.remove.gone": {"en": "already gone: {path}", "es": "ya no estaba: {path}"},
    "inst.step.data": {"en": "Settings and readings", "es": "Configuración y lecturas"},
    "inst.purge.deleted": {"en": "deleted {etc} and {state} (settings, passwords, unsent readings)",
                           "es": "se borraron {etc} y {state} (configuración, contraseñas, lecturas sin enviar)"},
    "inst.purge.user": {"en": "deleted user {user}", "es": "se borró el usuario {user}"},
    "inst.keep.kept": {"en": "kept {etc} (settings) and {state} (unsent readings): a new install picks them up",
                       "es": "se conservaron {etc} (configuración) y {state} (lecturas sin enviar): una instalación nueva los retoma"},
    "inst.keep.purge": {"en": "to delete them too: {command} --uninstall --purge",
                        "es": "para borrarlos también: {command} --uninstall --purge"},
}
