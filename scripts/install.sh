#!/usr/bin/env bash
# Install, upgrade or remove the clinic agent on a Debian or Ubuntu PC.
#
#   sudo ./install.sh                      install or upgrade (online, or offline from a bundle);
#                                          on a terminal it asks for this clinic's settings
#   sudo ./install.sh --site-id DFSSA001234 --broker mqtt.example.org --ca-file ca.crt \
#        --mqtt-user DFSSA001234 --mqtt-password-file pw.txt --trusted-keys keys/ \
#        --timezone America/Mexico_City    the same with every setting given (--help lists them)
#   sudo ./install.sh --uninstall          remove the program; keep configuration and readings
#   sudo ./install.sh --uninstall --purge  remove everything, including the readings not yet sent
#
# What goes where:
#   /opt/clinic-agent/releases/<date>    the program, one virtualenv per install
#   /opt/clinic-agent/venv               -> the release in use (the previous one is kept)
#   /etc/clinic-agent/agent.toml         settings   (root:clinic-agent 0640)  written from the
#   /etc/clinic-agent/secrets.toml       passwords  (clinic-agent 0600)       options, else kept
#   /etc/clinic-agent/ca.crt, client.crt, client.key, trusted-keys/*.pub      copied from the options
#   /var/lib/clinic-agent/               reading buffer and status.json        kept on upgrade
#   /etc/systemd/system/clinic-agent.service
#   /usr/local/bin/clinic-agent          -> the command (validate, doctor, ...)
#
# Running it twice is safe: an upgrade builds a new virtualenv beside the old one and switches
# over only when it works, so a failed upgrade leaves the running agent untouched. The clinic's
# settings are all checked before anything is changed; in an agent.toml the technician edited,
# only the keys given change (the file before is kept beside it). Passwords never pass through
# this script's variables or command lines: Python reads them from a file or from the terminal.
#
# Every text the technician reads is in the agent's catalogue (agent/catalogue/install.py), in
# Spanish and English, loaded once with `python -m agent.install messages`; only the two said
# before Python and the agent's files are found are written here, in both languages.
set -euo pipefail
# The program must not depend on the environment of whoever runs the installer.
unset PYTHONPATH PYTHONHOME PYTHONUSERBASE PYTHONSTARTUP VIRTUAL_ENV

APP=clinic-agent                 # service, user, directory names
DIST=clinic-edge-agent           # the Python distribution (setup.cfg)
AGENT_USER=clinic-agent
MIN_PYTHON=3.11

PREFIX=/opt/clinic-agent
ETC=/etc/clinic-agent
STATE=/var/lib/clinic-agent
UNIT=/etc/systemd/system/clinic-agent.service
BIN_LINK=/usr/local/bin/clinic-agent
INSTALL_LOG=/var/log/clinic-agent-install.log

# -- output ---------------------------------------------------------------------------------------

if [ -t 1 ]; then BOLD=$'\e[1m'; RED=$'\e[31m'; YELLOW=$'\e[33m'; GREEN=$'\e[32m'; OFF=$'\e[0m'
else BOLD=; RED=; YELLOW=; GREEN=; OFF=; fi

declare -A MSG=()
# m ID [NAME=VALUE ...]: the message in the installer's language, its {NAME}s filled in.
m() {
    local text=${MSG[$1]-$1} kv
    shift
    for kv in "$@"; do text=${text//"{${kv%%=*}}"/"${kv#*=}"}; done
    printf '%s' "$text"
}

STEP=0
STEPS=0
step() { STEP=$((STEP + 1)); printf '\n%s==> [%d/%d] %s%s\n' "$BOLD" "$STEP" "$STEPS" "$*" "$OFF"; }
info() { printf '    %s\n' "$*"; }
warn() { printf '    %s%s: %s%s\n' "$YELLOW" "$(m inst.warning)" "$*" "$OFF"; }
die()  { printf '\n%s%s: %s%s\n' "$RED" "${MSG[inst.error]-ERROR}" "$*" "$OFF" >&2; exit 1; }
# Anything else that fails says where, instead of stopping without a word.
set -E
trap 'die "$(m inst.failed_at step="$STEP" steps="$STEPS" line="$LINENO" command="$BASH_COMMAND")"' ERR

# -- options --------------------------------------------------------------------------------------

ARGS="$*"
ROOT=""
OFFLINE=""
# The system's Python: one in a home directory (pyenv, conda) is unreadable to the agent's user.
PYTHON=python3
if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; fi
ACTION=install
PURGE=0
NO_USERS=0
NO_START=0
HELP=0
LANG_OPT=""
INTERACTIVE=1
SITE_ARGS=()        # this clinic's settings, checked by agent.install
OPTION_ERROR=()     # said once the messages are loaded: message id and its arguments

while [ $# -gt 0 ]; do
    case "$1" in
        --offline|--python|--root|--lang|--site-id|--broker|--ca-file|--client-cert|--client-key|\
        --mqtt-user|--mqtt-password-file|--trusted-keys|--timezone)
            if [ $# -lt 2 ]; then OPTION_ERROR=(inst.needs_value option="$1"); break; fi
            case "$1" in
                --offline) OFFLINE=$2 ;;
                --python)  PYTHON=$2 ;;
                --root)    ROOT=$2 ;;
                --lang)    LANG_OPT=$2 ;;
                *)         SITE_ARGS+=("$1" "$2") ;;
            esac
            shift ;;
        --non-interactive) INTERACTIVE=0 ;;
        --no-start)  NO_START=1 ;;
        --no-users)  NO_USERS=1 ;;
        --uninstall) ACTION=uninstall ;;
        --purge)     PURGE=1 ;;
        -h|--help)   HELP=1 ;;
        *)           OPTION_ERROR=(inst.unknown_option option="$1"); break ;;
    esac
    shift
done
if [ ! -t 0 ] || [ ! -t 1 ]; then INTERACTIVE=0; fi
LANG_BAD=""
case "$LANG_OPT" in ""|es|en) ;; *) LANG_BAD=$LANG_OPT; LANG_OPT="" ;; esac

# -- Python, the agent's files and its messages -------------------------------------------------

# Where this script came from: a source checkout (scripts/install.sh) or an unpacked bundle.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
AGENT_PY=""         # what to put on sys.path to import the agent before its virtualenv exists
if [ -f "$HERE/BUNDLE_INFO" ]; then
    SRC=$HERE
    if [ -z "$OFFLINE" ] && [ -d "$HERE/wheelhouse" ]; then OFFLINE=$HERE/wheelhouse; fi
    # A pure-Python wheel is a zip file Python imports from directly.
    AGENT_PY=$(find "$HERE/wheelhouse" -maxdepth 1 -name 'clinic_edge_agent-*.whl' 2>/dev/null | sort -V | tail -n 1)
elif [ -f "$HERE/../setup.cfg" ]; then
    SRC=$(cd "$HERE/.." && pwd)
    AGENT_PY=$SRC
fi
if [ -z "$AGENT_PY" ]; then
    die "cannot find the agent next to this script (no BUNDLE_INFO with a wheelhouse, no ../setup.cfg in $HERE) /
no se encuentra el agente junto a este script (ni BUNDLE_INFO con wheelhouse, ni ../setup.cfg en $HERE)"
fi
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    die "Python 3 is not installed. Install it with: apt-get install python3 python3-venv /
Python 3 no está instalado. Instálelo con: apt-get install python3 python3-venv"
fi
PYTHON=$(command -v "$PYTHON")

# The agent's own code on the system's Python (-I: nothing from the environment or the current
# directory), before its virtualenv exists: agent.install uses the standard library only.
agent_py() {
    "$PYTHON" -I -c 'import sys; sys.path.insert(0, sys.argv[1]); from agent.install.__main__ import main; sys.exit(main(sys.argv[2:]))' \
        "$AGENT_PY" "$@"
}

if ! MESSAGES=$(agent_py messages ${LANG_OPT:+--lang "$LANG_OPT"}); then
    die "cannot read the agent's files with $PYTHON (Python $MIN_PYTHON or newer is needed; a damaged bundle?) /
no se pueden leer los archivos del agente con $PYTHON (se necesita Python $MIN_PYTHON o más nuevo; ¿paquete dañado?)"
fi
eval "$MESSAGES"
LANG_GIVEN=0
if [ -n "$LANG_OPT" ]; then LANG_GIVEN=1; fi

if [ "$HELP" = 1 ]; then m inst.usage; echo; exit 0; fi
if [ -n "$LANG_BAD" ]; then die "$(m inst.bad.lang got="$LANG_BAD")"; fi
if [ ${#OPTION_ERROR[@]} -gt 0 ]; then die "$(m "${OPTION_ERROR[@]}")"; fi
if [ "$PURGE" = 1 ] && [ "$ACTION" != uninstall ]; then die "$(m inst.purge_alone)"; fi
if [ -n "$ROOT" ]; then
    ROOT=$(mkdir -p "$ROOT" && cd "$ROOT" && pwd)
    [ "$ROOT" = / ] && ROOT=""
fi
if [ -n "$ROOT" ]; then
    NO_USERS=1     # the target root's user database is not ours to change
    NO_START=1
elif [ "$(id -u)" != 0 ]; then
    die "$(m inst.need_root command="$0 $ARGS")"
fi
if [ -n "$OFFLINE" ]; then
    OFFLINE=$(cd "$OFFLINE" 2>/dev/null && pwd) || die "$(m inst.no_offline_dir dir="$OFFLINE")"
fi

# A path inside the target root.
r() { printf '%s%s' "$ROOT" "$1"; }

systemd_running() { [ -z "$ROOT" ] && [ -d /run/systemd/system ]; }

# Private scratch space (mode 0700): the staged settings, the password among them.
STAGE=$(mktemp -d)
HALF_BUILT=""
cleanup() {
    rm -rf "$STAGE"
    if [ -n "$HALF_BUILT" ]; then rm -rf "$HALF_BUILT"; fi
}
trap cleanup EXIT

# -- ownership: applied, and always recorded ------------------------------------------------------

MANIFEST_LINES=()

# own MODE OWNER GROUP PATH: set the mode, the owner (unless --no-users), remember the intention.
own() {
    local mode=$1 owner=$2 group=$3 path=$4 target
    target=$(r "$path")
    local before
    before=$(stat -c '%a %U:%G' "$target")
    chmod "$mode" "$target"
    if [ "$NO_USERS" = 0 ]; then chown "$owner:$group" "$target"; fi
    MANIFEST_LINES+=("$mode $owner:$group $path")
    local after
    after=$(stat -c '%a %U:%G' "$target")
    if [ "${FIXING:-0}" = 1 ] && [ "$before" != "$after" ]; then
        info "$(m inst.perm.corrected path="$path" before="$before" after="$after")"
    fi
}

write_manifest() {
    local file
    file=$(r "$PREFIX/install-manifest")
    {
        echo "# mode owner:group path, as install.sh intends them (applied unless --no-users)"
        printf '%s\n' "${MANIFEST_LINES[@]}"
    } > "$file"
    chmod 0644 "$file"
}

# -- install steps --------------------------------------------------------------------------------

python_version_of() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }

check_computer() {
    step "$(m inst.step.computer)"
    local version
    version=$(python_version_of "$PYTHON")
    "$PYTHON" -c "import sys; sys.exit(sys.version_info < tuple(map(int, '$MIN_PYTHON'.split('.'))))" \
        || die "$(m inst.python_old version="$version" min="$MIN_PYTHON")"
    "$PYTHON" -c 'import venv' 2>/dev/null || die "$(m inst.no_venv)"
    info "$(m inst.python_info version="$version" path="$PYTHON" machine="$(uname -m)")"
    if [ -n "$OFFLINE" ]; then
        info "$(m inst.offline_from dir="$OFFLINE")"
        if [ -f "$SRC/BUNDLE_INFO" ] && [ "$OFFLINE" = "$SRC/wheelhouse" ]; then
            check_bundle "$version"
        fi
        ls "$OFFLINE"/*.whl >/dev/null 2>&1 || die "$(m inst.no_wheels dir="$OFFLINE")"
    else
        info "$(m inst.from_source dir="$SRC")"
        "$PYTHON" -c 'import ensurepip' 2>/dev/null || die "$(m inst.no_ensurepip)"
    fi
    if [ -n "$ROOT" ]; then info "$(m inst.target_root root="$ROOT")"; fi
}

# The wheels of a bundle are built for one Python version and one processor type.
check_bundle() {
    local version=$1 want_python want_machine
    want_python=$(sed -n 's/^python=//p' "$SRC/BUNDLE_INFO")
    want_machine=$(sed -n 's/^machine=//p' "$SRC/BUNDLE_INFO")
    info "$(m inst.bundle_info name="$(sed -n 's/^name=//p' "$SRC/BUNDLE_INFO")" \
        python="$want_python" machine="$want_machine")"
    if [ -n "$want_python" ] && [ "$want_python" != "$version" ]; then
        die "$(m inst.bundle_python want="$want_python" have="$version")"
    fi
    if [ -n "$want_machine" ] && [ "$want_machine" != "$(uname -m)" ]; then
        die "$(m inst.bundle_machine want="$want_machine" have="$(uname -m)")"
    fi
    if [ -f "$SRC/SHA256SUMS" ]; then
        (cd "$SRC" && sha256sum --check --quiet SHA256SUMS >/dev/null 2>&1) \
            || die "$(m inst.bundle_damaged)"
        info "$(m inst.bundle_ok)"
    fi
}

EXAMPLE_CONFIG=conf/agent.example.toml
EXAMPLE_SECRETS=conf/secrets.example.toml
CONFIG_STATE=new      # agent.toml: new (none yet), example (still the unedited example) or edited
HAVE_SETTINGS=0

# Check every setting given (and, on a terminal, ask for the missing ones) before any change.
gather_settings() {
    step "$(m inst.step.settings)"
    local config
    config=$(r "$ETC/agent.toml")
    if [ ! -e "$config" ]; then CONFIG_STATE=new
    elif [ -f "$SRC/$EXAMPLE_CONFIG" ] && cmp -s "$SRC/$EXAMPLE_CONFIG" "$config"; then CONFIG_STATE=example
    else CONFIG_STATE=edited; fi
    local args=(gather --stage "$STAGE" --state "$CONFIG_STATE" --root "${ROOT:-/}"
                --lang "$INSTALL_LANG" ${SITE_ARGS[@]+"${SITE_ARGS[@]}"})
    if [ "$LANG_GIVEN" = 1 ]; then args+=(--lang-given); fi
    if [ "$INTERACTIVE" = 1 ]; then args+=(--interactive); fi
    agent_py "${args[@]}" || die "$(m inst.settings.refused)"
    if [ -f "$STAGE/settings.json" ]; then
        HAVE_SETTINGS=1
    elif [ "$CONFIG_STATE" = edited ]; then
        info "$(m inst.settings.kept path="$ETC/agent.toml")"
    else
        info "$(m inst.settings.none path="$ETC/agent.toml")"
    fi
}

create_user() {
    step "$(m inst.step.user user="$AGENT_USER")"
    if [ "$NO_USERS" = 1 ]; then
        info "$(m inst.user.skipped user="$AGENT_USER")"
        return
    fi
    if getent passwd "$AGENT_USER" >/dev/null; then
        info "$(m inst.user.exists user="$AGENT_USER")"
    else
        useradd --system --user-group --no-create-home --home-dir "$STATE" \
            --shell /usr/sbin/nologin --comment "Clinic edge agent" "$AGENT_USER"
        info "$(m inst.user.created user="$AGENT_USER")"
    fi
    getent group dialout >/dev/null || groupadd --system dialout
    if id -nG "$AGENT_USER" | tr ' ' '\n' | grep -qx dialout; then
        info "$(m inst.user.in_dialout user="$AGENT_USER")"
    else
        usermod -a -G dialout "$AGENT_USER"
        info "$(m inst.user.added_dialout user="$AGENT_USER")"
    fi
}

# pip, quietly into the install log; on failure show the end of the log.
run_logged() {
    if ! "$@" >>"$(r "$INSTALL_LOG")" 2>&1; then
        printf '\n' >&2
        tail -n 25 "$(r "$INSTALL_LOG")" >&2
        return 1
    fi
}

install_program() {
    step "$(m inst.step.program prefix="$PREFIX")"
    mkdir -p "$(r "$PREFIX/releases")" "$(r "$(dirname "$INSTALL_LOG")")"
    own 0755 root root "$PREFIX"
    own 0755 root root "$PREFIX/releases"
    # Option values only (a password is never an option's value, only the file holding it).
    printf '\n=== %s install.sh %s\n' "$(date -Is)" "$ARGS" >>"$(r "$INSTALL_LOG")"

    local name release n=1
    name=$(date +%Y%m%d-%H%M%S)
    while [ -e "$(r "$PREFIX/releases/$name")" ]; do name=$(date +%Y%m%d-%H%M%S)-$n; n=$((n + 1)); done
    release=$(r "$PREFIX/releases/$name")

    local pip_wheel=""
    if [ -n "$OFFLINE" ]; then
        pip_wheel=$(find "$OFFLINE" -maxdepth 1 -name 'pip-*.whl' | sort -V | tail -n 1)
    fi
    info "$(m inst.venv.creating name="$name")"
    # On failure remove the half-built release: the one in use stays as it was.
    HALF_BUILT=$release
    if [ -n "$pip_wheel" ]; then
        # No ensurepip needed (python3-venv may be missing on a bare PC): pip runs from its wheel.
        run_logged "$PYTHON" -m venv --without-pip "$release"
        info "$(m inst.pip.offline dist="$DIST" dir="$(basename "$OFFLINE")")"
        run_logged "$release/bin/python" "$pip_wheel/pip" install --isolated --no-index \
            --find-links "$OFFLINE" --disable-pip-version-check --no-warn-script-location \
            --root-user-action=ignore "$DIST" \
            || die "$(m inst.pip.offline_failed dir="$OFFLINE" log="$INSTALL_LOG")"
    else
        run_logged "$PYTHON" -m venv "$release"
        local pip=("$release/bin/python" -m pip install --disable-pip-version-check
                   --no-warn-script-location --root-user-action=ignore)
        if [ -n "$OFFLINE" ]; then
            info "$(m inst.pip.offline dist="$DIST" dir="$(basename "$OFFLINE")")"
            run_logged "${pip[@]}" --no-index --find-links "$OFFLINE" "$DIST" \
                || die "$(m inst.pip.offline_failed dir="$OFFLINE" log="$INSTALL_LOG")"
        else
            info "$(m inst.pip.online dist="$DIST")"
            run_logged "${pip[@]}" "$SRC" \
                || die "$(m inst.pip.online_failed log="$INSTALL_LOG")"
        fi
    fi
    local version
    version=$("$release/bin/clinic-agent" --version 2>&1) \
        || die "$(m inst.program.broken error="$version")"
    HALF_BUILT=""
    info "$(m inst.program.installed version="$version")"

    # Switch atomically: the service always sees either the old or the new release.
    local venv
    venv=$(r "$PREFIX/venv")
    if [ -d "$venv" ] && [ ! -L "$venv" ]; then
        mv "$venv" "$(r "$PREFIX/releases/$name-before")"   # a layout older than releases/
    fi
    ln -sfn "releases/$name" "$venv.new"
    mv -Tf "$venv.new" "$venv"
    info "$(m inst.program.switched link="$PREFIX/venv" name="$name")"

    # Keep the release in use and the one before it (to go back by hand: ln -sfn releases/OLD venv).
    local old others=() i
    while IFS= read -r old; do
        if [ "$old" != "$name" ]; then others+=("$old"); fi
    done < <(find "$(r "$PREFIX/releases")" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort)
    for ((i = 0; i < ${#others[@]} - 1; i++)); do     # all but the newest of the others
        rm -rf "$(r "$PREFIX/releases/${others[i]}")"
        info "$(m inst.program.removed_old name="${others[i]}")"
    done

    mkdir -p "$(r "$(dirname "$BIN_LINK")")"
    ln -sfn "$PREFIX/venv/bin/clinic-agent" "$(r "$BIN_LINK")"
    info "$(m inst.program.command path="$BIN_LINK")"

    # Examples and docs of this version, to compare with a kept configuration after an upgrade.
    rm -rf "$(r "$PREFIX/share")"
    mkdir -p "$(r "$PREFIX/share/examples")" "$(r "$PREFIX/share/doc")"
    if [ -d "$SRC/conf" ]; then cp -R "$SRC/conf/." "$(r "$PREFIX/share/examples/")"; fi
    local doc
    for doc in systemd.md install.md checklist-tecnico.md; do
        if [ -f "$SRC/docs/$doc" ]; then cp "$SRC/docs/$doc" "$(r "$PREFIX/share/doc/")"; fi
    done
    chmod -R u=rwX,go=rX "$(r "$PREFIX/share")"
}

# The first configuration: the project's example, else a minimal file that
# `clinic-agent validate` rejects until the site id and broker are filled in.
default_config() {
    if [ -f "$SRC/$EXAMPLE_CONFIG" ]; then cat "$SRC/$EXAMPLE_CONFIG"; return; fi
    cat <<'EOF'
# Clinic agent settings. Fill in site_id and the broker, add the devices, then run
#   clinic-agent validate && systemctl restart clinic-agent
# Examples of every option: /opt/clinic-agent/share/examples/
site_id = ""                      # the clinic's CLUES code, e.g. "DFSSA001234"
state_dir = "/var/lib/clinic-agent"
secrets_file = "secrets.toml"     # passwords live there (readable only by the agent)

[mqtt]
host = ""                         # the central broker, e.g. "mqtt.example.org"
tls = true

[[devices]]
name = "pc"
kind = "host"
interval_s = 60
EOF
}

default_secrets() {
    if [ -f "$SRC/$EXAMPLE_SECRETS" ]; then cat "$SRC/$EXAMPLE_SECRETS"; return; fi
    cat <<'EOF'
# Passwords and SNMP communities; only the agent can read this file.
# [mqtt]
# password = "..."
#
# [devices.router]
# community = "..."
EOF
}

NEW_CONFIG=0

install_config() {
    step "$(m inst.step.config etc="$ETC")"
    # Existing files are never rewritten unless settings were given; wrong permissions on them are
    # corrected (and said).
    local fixing=0 fix_config=0 fix_secrets=0
    if [ -d "$(r "$ETC")" ]; then fixing=1; else mkdir -p "$(r "$ETC")"; fi
    FIXING=$fixing own 0750 root "$AGENT_USER" "$ETC"
    if [ -e "$(r "$ETC/agent.toml")" ] && [ "$CONFIG_STATE" = edited ]; then fix_config=1; fi
    if [ -e "$(r "$ETC/secrets.toml")" ]; then fix_secrets=1; fi
    if [ "$HAVE_SETTINGS" = 1 ]; then
        local args=(write --stage "$STAGE" --state "$CONFIG_STATE" --root "${ROOT:-/}" --etc "$ETC"
                    --user "$AGENT_USER" --lang "$INSTALL_LANG")
        if [ -f "$SRC/$EXAMPLE_SECRETS" ]; then args+=(--example-secrets "$SRC/$EXAMPLE_SECRETS"); fi
        if systemd_running; then args+=(--systemd); fi
        agent_py "${args[@]}"     # each file with its own mode (0600 for keys and secrets)
        if [ "$CONFIG_STATE" != edited ]; then NEW_CONFIG=1; fi
        local mode owner group path
        while read -r mode owner group path; do
            own "$mode" "$owner" "$group" "$path"
        done < "$STAGE/owners"
    else
        if [ -e "$(r "$ETC/agent.toml")" ]; then
            fix_config=1
            info "$(m inst.config.kept path="$ETC/agent.toml")"
        else
            (umask 027 && default_config > "$(r "$ETC/agent.toml")")
            NEW_CONFIG=1
            info "$(m inst.config.created_example path="$ETC/agent.toml")"
        fi
        if [ -e "$(r "$ETC/secrets.toml")" ]; then
            info "$(m inst.secrets.kept path="$ETC/secrets.toml")"
        else
            (umask 077 && default_secrets > "$(r "$ETC/secrets.toml")")
            info "$(m inst.secrets.created path="$ETC/secrets.toml")"
        fi
    fi
    FIXING=$fix_config own 0640 root "$AGENT_USER" "$ETC/agent.toml"
    FIXING=$fix_secrets own 0600 "$AGENT_USER" "$AGENT_USER" "$ETC/secrets.toml"
}

install_state() {
    step "$(m inst.step.state path="$STATE")"
    local buffer
    buffer=$(r "$STATE/buffer.sqlite")
    if [ -d "$(r "$STATE")" ]; then
        if [ -f "$buffer" ]; then
            info "$(m inst.state.kept_buffer size="$(du -h "$buffer" | cut -f1)")"
        else
            info "$(m inst.state.exists)"
        fi
    else
        mkdir -p "$(r "$STATE")"
        info "$(m inst.state.created)"
    fi
    own 0750 "$AGENT_USER" "$AGENT_USER" "$STATE"
}

install_unit() {
    step "$(m inst.step.unit unit="$APP.service")"
    local unit_src=$SRC/systemd/$APP.service target
    target=$(r "$UNIT")
    [ -f "$unit_src" ] || die "$(m inst.unit.missing path="$unit_src")"
    mkdir -p "$(dirname "$target")"
    if [ -f "$target" ] && cmp -s "$unit_src" "$target"; then
        info "$(m inst.unit.unchanged path="$UNIT")"
    else
        if [ -f "$target" ]; then info "$(m inst.unit.updated path="$UNIT")"
        else info "$(m inst.unit.installed path="$UNIT")"; fi
        install -m 0644 "$unit_src" "$target"
    fi
    own 0644 root root "$UNIT"
    if systemd_running; then
        systemctl daemon-reload
        systemctl enable --quiet "$APP.service"
    else
        enable_offline
    fi
    info "$(m inst.unit.enabled)"
}

# Enabling is only symlinks; systemctl --root does it without a running systemd.
enable_offline() {
    if command -v systemctl >/dev/null 2>&1 \
        && systemctl --root="${ROOT:-/}" enable --quiet "$APP.service" >/dev/null 2>&1; then
        return
    fi
    mkdir -p "$(r /etc/systemd/system/multi-user.target.wants)"
    ln -sfn "$UNIT" "$(r "/etc/systemd/system/multi-user.target.wants/$APP.service")"
}

# The config the checks read: the installed file, or with --root a copy of it whose paths point
# into the root (its secrets, certificates and keys are there, not in this computer's /etc).
checked_config() {
    if [ -z "$ROOT" ]; then printf '%s' "$ETC/agent.toml"; return; fi
    agent_py rooted --root "$ROOT" --config "$(r "$ETC/agent.toml")" \
        --out "$STAGE/agent.toml" --socket "$STAGE/control.sock"
    printf '%s' "$STAGE/agent.toml"
}

# The agent's command, as the agent's user where possible: that also proves it can read its files.
agent_cmd() {
    AGENT_CMD=("$(r "$PREFIX/venv/bin/clinic-agent")" "$@")
    if [ "$NO_USERS" = 0 ] && command -v runuser >/dev/null 2>&1; then
        AGENT_CMD=(runuser -u "$AGENT_USER" -- "${AGENT_CMD[@]}")
    fi
}

still_example() { [ -f "$SRC/$EXAMPLE_CONFIG" ] && cmp -s "$SRC/$EXAMPLE_CONFIG" "$(r "$ETC/agent.toml")"; }

CONFIG_OK=0

check_config() {
    step "$(m inst.step.validate)"
    local out config
    if still_example; then
        # Valid, but it would report as the example clinic to the example broker.
        warn "$(m inst.validate.example path="$ETC/agent.toml")"
        info "    clinic-agent validate && systemctl restart $APP"
        return
    fi
    if [ -f "$SRC/$EXAMPLE_SECRETS" ] && cmp -s "$SRC/$EXAMPLE_SECRETS" "$(r "$ETC/secrets.toml")"; then
        warn "$(m inst.validate.example_secrets path="$ETC/secrets.toml")"
    fi
    if [ "$NO_USERS" = 0 ] && ! out=$(runuser -u "$AGENT_USER" -- "$PREFIX/venv/bin/clinic-agent" --version 2>&1); then
        printf '%s\n' "$out" | sed 's/^/    /'
        warn "$(m inst.validate.cannot_run user="$AGENT_USER" python="$PYTHON")"
        return
    fi
    config=$(checked_config)
    agent_cmd validate --lang "$INSTALL_LANG" "$config"
    if out=$("${AGENT_CMD[@]}" 2>&1); then
        CONFIG_OK=1
        info "${GREEN}${out}${OFF}"
    else
        printf '%s\n' "$out" | sed 's/^/    /'
        if [ "$NEW_CONFIG" = 1 ]; then
            info "$(m inst.validate.new path="$ETC/agent.toml")"
        else
            warn "$(m inst.validate.problems path="$ETC/agent.toml")"
        fi
        info "    clinic-agent validate && systemctl restart $APP"
    fi
}

start_service() {
    step "$(m inst.step.start)"
    if [ -n "$ROOT" ]; then
        info "$(m inst.start.root root="$ROOT")"
    elif ! systemd_running; then
        warn "$(m inst.start.no_systemd)"
        info "    sudo -u $AGENT_USER $PREFIX/venv/bin/clinic-agent run -c $ETC/agent.toml"
    elif [ "$NO_START" = 1 ]; then
        info "$(m inst.start.no_start app="$APP")"
    elif [ "$CONFIG_OK" = 0 ]; then
        warn "$(m inst.start.bad_config)"
    else
        # Type=notify: this returns once the agent reported READY=1 (or failed).
        if ! systemctl restart "$APP.service"; then
            journalctl -u "$APP.service" -n 30 --no-pager >&2 || true
            die "$(m inst.start.failed app="$APP")"
        fi
        info "${GREEN}$(m inst.start.running status="$(systemctl show -p StatusText --value "$APP.service")")${OFF}"
        info "$(m inst.start.follow app="$APP")"
    fi
}

# Every link, from config to broker to devices, as the technician will check it later. A failure
# does not fail the install: the agent buffers its readings until the link is fixed.
run_doctor() {
    step "$(m inst.step.doctor)"
    if still_example; then
        info "$(m inst.doctor.example)"
        return
    fi
    local config
    config=$(checked_config)
    agent_cmd doctor --lang "$INSTALL_LANG" -c "$config"
    if "${AGENT_CMD[@]}" 2>&1 | sed 's/^/    /'; then
        info "${GREEN}$(m inst.doctor.ok)${OFF}"
    else
        warn "$(m inst.doctor.problems)"
    fi
}

# -- uninstall ------------------------------------------------------------------------------------

uninstall() {
    step "$(m inst.step.stop)"
    if systemd_running; then
        systemctl disable --now --quiet "$APP.service" 2>/dev/null || true
        info "$(m inst.stop.done)"
    else
        if command -v systemctl >/dev/null 2>&1; then
            systemctl --root="${ROOT:-/}" disable --quiet "$APP.service" >/dev/null 2>&1 || true
        fi
        rm -f "$(r "/etc/systemd/system/multi-user.target.wants/$APP.service")"
        info "$(m inst.stop.disabled)"
    fi

    step "$(m inst.step.remove)"
    local path
    for path in "$UNIT" "$BIN_LINK" "$PREFIX"; do
        if [ "$path" = "$BIN_LINK" ] && [ -e "$(r "$path")" ] && [ ! -L "$(r "$path")" ]; then
            warn "$(m inst.remove.not_ours path="$path")"
        elif [ -e "$(r "$path")" ] || [ -L "$(r "$path")" ]; then
            rm -rf "$(r "$path")"
            info "$(m inst.remove.removed path="$path")"
        else
            info "$(m inst.remove.gone path="$path")"
        fi
    done
    if systemd_running; then
        systemctl daemon-reload
        systemctl reset-failed "$APP.service" 2>/dev/null || true
    fi

    step "$(m inst.step.data)"
    if [ "$PURGE" = 1 ]; then
        rm -rf "$(r "$ETC")" "$(r "$STATE")" "$(r "$INSTALL_LOG")"
        info "$(m inst.purge.deleted etc="$ETC" state="$STATE")"
        if [ "$NO_USERS" = 0 ] && getent passwd "$AGENT_USER" >/dev/null; then
            userdel "$AGENT_USER"
            info "$(m inst.purge.user user="$AGENT_USER")"
        fi
    else
        info "$(m inst.keep.kept etc="$ETC" state="$STATE")"
        info "$(m inst.keep.purge command="$0")"
    fi
}

# -- main -----------------------------------------------------------------------------------------

if [ "$ACTION" = uninstall ]; then
    STEPS=3
    if [ -n "$ROOT" ]; then printf '%s%s%s\n' "$BOLD" "$(m inst.title.remove_root root="$ROOT")" "$OFF"
    else printf '%s%s%s\n' "$BOLD" "$(m inst.title.remove)" "$OFF"; fi
    uninstall
    printf '\n%s%s%s\n' "$GREEN" "$(m inst.done)" "$OFF"
    exit 0
fi

STEPS=10
if [ -n "$ROOT" ]; then printf '%s%s%s\n' "$BOLD" "$(m inst.title.install_root root="$ROOT")" "$OFF"
else printf '%s%s%s\n' "$BOLD" "$(m inst.title.install)" "$OFF"; fi
check_computer
gather_settings
create_user
install_program
install_config
install_state
install_unit
write_manifest
check_config
start_service
run_doctor
printf '\n%s%s%s %s\n' "$GREEN" "$(m inst.done)" "$OFF" \
    "$(m inst.done.where config="$ETC/agent.toml" app="$APP")"
