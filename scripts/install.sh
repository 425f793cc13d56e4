#!/usr/bin/env bash
# Install, upgrade or remove the clinic agent on a Debian or Ubuntu PC.
#
#   sudo ./install.sh                      install or upgrade (online, or offline from a bundle)
#   sudo ./install.sh --uninstall          remove the program; keep configuration and readings
#   sudo ./install.sh --uninstall --purge  remove everything, including the readings not yet sent
#
# What goes where:
#   /opt/clinic-agent/releases/<date>    the program, one virtualenv per install
#   /opt/clinic-agent/venv               -> the release in use (the previous one is kept)
#   /etc/clinic-agent/agent.toml         settings   (root:clinic-agent 0640)  never overwritten
#   /etc/clinic-agent/secrets.toml       passwords  (clinic-agent 0600)       never overwritten
#   /var/lib/clinic-agent/               reading buffer and status.json        kept on upgrade
#   /etc/systemd/system/clinic-agent.service
#   /usr/local/bin/clinic-agent          -> the command (validate, poll-once, ...)
#
# Running it twice is safe: an upgrade builds a new virtualenv beside the old one and switches
# over only when it works, so a failed upgrade leaves the running agent untouched.
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

usage() {
    cat <<'EOF'
Usage: install.sh [OPTIONS]

Installs (or upgrades) the clinic agent and its systemd service. Settings and the reading buffer
of an earlier install are kept.

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
  -h, --help       show this help
EOF
}

# -- output ---------------------------------------------------------------------------------------

if [ -t 1 ]; then BOLD=$'\e[1m'; RED=$'\e[31m'; YELLOW=$'\e[33m'; GREEN=$'\e[32m'; OFF=$'\e[0m'
else BOLD=; RED=; YELLOW=; GREEN=; OFF=; fi

STEP=0
STEPS=0
step() { STEP=$((STEP + 1)); printf '\n%s==> [%d/%d] %s%s\n' "$BOLD" "$STEP" "$STEPS" "$*" "$OFF"; }
info() { printf '    %s\n' "$*"; }
warn() { printf '    %sWARNING: %s%s\n' "$YELLOW" "$*" "$OFF"; }
die()  { printf '\n%sERROR: %s%s\n' "$RED" "$*" "$OFF" >&2; exit 1; }
# Anything else that fails says where, instead of stopping without a word.
set -E
trap 'die "step $STEP/$STEPS failed (line $LINENO: $BASH_COMMAND). Running this script again is safe."' ERR

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

while [ $# -gt 0 ]; do
    case "$1" in
        --offline)   [ $# -ge 2 ] || die "--offline needs a directory"; OFFLINE=$2; shift ;;
        --python)    [ $# -ge 2 ] || die "--python needs a path"; PYTHON=$2; shift ;;
        --root)      [ $# -ge 2 ] || die "--root needs a directory"; ROOT=$2; shift ;;
        --no-start)  NO_START=1 ;;
        --no-users)  NO_USERS=1 ;;
        --uninstall) ACTION=uninstall ;;
        --purge)     PURGE=1 ;;
        -h|--help)   usage; exit 0 ;;
        *)           usage >&2; die "unknown option: $1" ;;
    esac
    shift
done

if [ "$PURGE" = 1 ] && [ "$ACTION" != uninstall ]; then
    die "--purge goes with --uninstall (sudo ./install.sh --uninstall --purge)"
fi
if [ -n "$ROOT" ]; then
    ROOT=$(mkdir -p "$ROOT" && cd "$ROOT" && pwd)
    [ "$ROOT" = / ] && ROOT=""
fi
if [ -n "$ROOT" ]; then
    NO_USERS=1     # the target root's user database is not ours to change
    NO_START=1
elif [ "$(id -u)" != 0 ]; then
    die "run this as root: sudo $0 $ARGS"
fi

# A path inside the target root.
r() { printf '%s%s' "$ROOT" "$1"; }

# Where this script came from: a source checkout (scripts/install.sh) or an unpacked bundle.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -f "$HERE/BUNDLE_INFO" ]; then
    SRC=$HERE
    if [ -z "$OFFLINE" ] && [ -d "$HERE/wheelhouse" ]; then OFFLINE=$HERE/wheelhouse; fi
elif [ -f "$HERE/../setup.cfg" ]; then
    SRC=$(cd "$HERE/.." && pwd)
else
    die "cannot find the agent next to this script (no BUNDLE_INFO, no ../setup.cfg in $HERE)"
fi
if [ -n "$OFFLINE" ]; then
    OFFLINE=$(cd "$OFFLINE" 2>/dev/null && pwd) || die "--offline: no such directory"
fi

systemd_running() { [ -z "$ROOT" ] && [ -d /run/systemd/system ]; }

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
        info "corrected the permissions of $path ($before -> $after)"
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
    step "Checking this computer"
    command -v "$PYTHON" >/dev/null 2>&1 \
        || die "Python 3 is not installed. Install it with: apt-get install python3 python3-venv"
    PYTHON=$(command -v "$PYTHON")
    local version
    version=$(python_version_of "$PYTHON")
    "$PYTHON" -c "import sys; sys.exit(sys.version_info < tuple(map(int, '$MIN_PYTHON'.split('.'))))" \
        || die "Python $version is too old: the agent needs Python $MIN_PYTHON or newer (Debian 12, Ubuntu 24.04)."
    "$PYTHON" -c 'import venv' 2>/dev/null \
        || die "Python's venv module is missing. Install it with: apt-get install python3-venv"
    info "Python $version ($PYTHON), $(uname -m)"
    if [ -n "$OFFLINE" ]; then
        info "installing offline from $OFFLINE"
        if [ -f "$SRC/BUNDLE_INFO" ] && [ "$OFFLINE" = "$SRC/wheelhouse" ]; then
            check_bundle "$version"
        fi
        ls "$OFFLINE"/*.whl >/dev/null 2>&1 || die "no .whl files in $OFFLINE"
    else
        info "installing from the source tree $SRC (needs internet for the dependencies)"
        "$PYTHON" -c 'import ensurepip' 2>/dev/null \
            || die "Python's ensurepip is missing. Install it with: apt-get install python3-venv"
    fi
    if [ -n "$ROOT" ]; then info "target root: $ROOT (users and owners are recorded, not applied)"; fi
}

# The wheels of a bundle are built for one Python version and one processor type.
check_bundle() {
    local version=$1 want_python want_machine
    want_python=$(sed -n 's/^python=//p' "$SRC/BUNDLE_INFO")
    want_machine=$(sed -n 's/^machine=//p' "$SRC/BUNDLE_INFO")
    info "bundle: $(sed -n 's/^name=//p' "$SRC/BUNDLE_INFO"), built for Python $want_python on $want_machine"
    if [ -n "$want_python" ] && [ "$want_python" != "$version" ]; then
        die "this bundle is for Python $want_python but this PC has Python $version. Build a bundle on a PC like this one (scripts/build-bundle.sh)."
    fi
    if [ -n "$want_machine" ] && [ "$want_machine" != "$(uname -m)" ]; then
        die "this bundle is for $want_machine PCs but this one is $(uname -m)."
    fi
    if [ -f "$SRC/SHA256SUMS" ]; then
        (cd "$SRC" && sha256sum --check --quiet SHA256SUMS) \
            || die "the bundle is damaged (checksums differ): copy it again"
        info "bundle checksums OK"
    fi
}

create_user() {
    step "System user $AGENT_USER"
    if [ "$NO_USERS" = 1 ]; then
        info "skipped (--no-users): the service runs as '$AGENT_USER', in group 'dialout'"
        return
    fi
    if getent passwd "$AGENT_USER" >/dev/null; then
        info "user $AGENT_USER already exists"
    else
        useradd --system --user-group --no-create-home --home-dir "$STATE" \
            --shell /usr/sbin/nologin --comment "Clinic edge agent" "$AGENT_USER"
        info "created system user $AGENT_USER"
    fi
    getent group dialout >/dev/null || groupadd --system dialout
    if id -nG "$AGENT_USER" | tr ' ' '\n' | grep -qx dialout; then
        info "$AGENT_USER is in group dialout (serial/RS-485 adapters)"
    else
        usermod -a -G dialout "$AGENT_USER"
        info "added $AGENT_USER to group dialout (serial/RS-485 adapters)"
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
    step "Installing the program into $PREFIX"
    mkdir -p "$(r "$PREFIX/releases")" "$(r "$(dirname "$INSTALL_LOG")")"
    own 0755 root root "$PREFIX"
    own 0755 root root "$PREFIX/releases"
    printf '\n=== %s install.sh %s\n' "$(date -Is)" "$ARGS" >>"$(r "$INSTALL_LOG")"

    local name release n=1
    name=$(date +%Y%m%d-%H%M%S)
    while [ -e "$(r "$PREFIX/releases/$name")" ]; do name=$(date +%Y%m%d-%H%M%S)-$n; n=$((n + 1)); done
    release=$(r "$PREFIX/releases/$name")

    local pip_wheel=""
    if [ -n "$OFFLINE" ]; then
        pip_wheel=$(find "$OFFLINE" -maxdepth 1 -name 'pip-*.whl' | sort -V | tail -n 1)
    fi
    info "creating the virtualenv releases/$name"
    # On failure remove the half-built release: the one in use stays as it was.
    HALF_BUILT=$release
    trap 'if [ -n "$HALF_BUILT" ]; then rm -rf "$HALF_BUILT"; fi' EXIT
    if [ -n "$pip_wheel" ]; then
        # No ensurepip needed (python3-venv may be missing on a bare PC): pip runs from its wheel.
        run_logged "$PYTHON" -m venv --without-pip "$release"
        info "installing $DIST and its dependencies from $(basename "$OFFLINE") (offline)"
        run_logged "$release/bin/python" "$pip_wheel/pip" install --isolated --no-index \
            --find-links "$OFFLINE" --disable-pip-version-check --no-warn-script-location \
            --root-user-action=ignore "$DIST" || die "pip could not install from $OFFLINE (see $INSTALL_LOG). Nothing was changed."
    else
        run_logged "$PYTHON" -m venv "$release"
        local pip=("$release/bin/python" -m pip install --disable-pip-version-check
                   --no-warn-script-location --root-user-action=ignore)
        if [ -n "$OFFLINE" ]; then
            info "installing $DIST and its dependencies from $(basename "$OFFLINE") (offline)"
            run_logged "${pip[@]}" --no-index --find-links "$OFFLINE" "$DIST" \
                || die "pip could not install from $OFFLINE (see $INSTALL_LOG). Nothing was changed."
        else
            info "installing $DIST and its dependencies from the internet (a minute or two)"
            run_logged "${pip[@]}" "$SRC" \
                || die "pip could not install the agent (see $INSTALL_LOG). No internet? Use a bundle. Nothing was changed."
        fi
    fi
    local version
    version=$("$release/bin/clinic-agent" --version 2>&1) \
        || die "the new program does not start: $version. Nothing was changed."
    HALF_BUILT=""
    info "installed $version"

    # Switch atomically: the service always sees either the old or the new release.
    local venv
    venv=$(r "$PREFIX/venv")
    if [ -d "$venv" ] && [ ! -L "$venv" ]; then
        mv "$venv" "$(r "$PREFIX/releases/$name-before")"   # a layout older than releases/
    fi
    ln -sfn "releases/$name" "$venv.new"
    mv -Tf "$venv.new" "$venv"
    info "$PREFIX/venv -> releases/$name"

    # Keep the release in use and the one before it (to go back by hand: ln -sfn releases/OLD venv).
    local old others=() i
    while IFS= read -r old; do
        if [ "$old" != "$name" ]; then others+=("$old"); fi
    done < <(find "$(r "$PREFIX/releases")" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort)
    for ((i = 0; i < ${#others[@]} - 1; i++)); do     # all but the newest of the others
        rm -rf "$(r "$PREFIX/releases/${others[i]}")"
        info "removed old release ${others[i]}"
    done

    mkdir -p "$(r "$(dirname "$BIN_LINK")")"
    ln -sfn "$PREFIX/venv/bin/clinic-agent" "$(r "$BIN_LINK")"
    info "command: $BIN_LINK"

    # Examples and docs of this version, to compare with a kept configuration after an upgrade.
    rm -rf "$(r "$PREFIX/share")"
    mkdir -p "$(r "$PREFIX/share/examples")" "$(r "$PREFIX/share/doc")"
    if [ -d "$SRC/conf" ]; then cp -R "$SRC/conf/." "$(r "$PREFIX/share/examples/")"; fi
    if [ -f "$SRC/docs/systemd.md" ]; then cp "$SRC/docs/systemd.md" "$(r "$PREFIX/share/doc/")"; fi
    chmod -R u=rwX,go=rX "$(r "$PREFIX/share")"
}

EXAMPLE_CONFIG=conf/agent.example.toml
EXAMPLE_SECRETS=conf/secrets.example.toml

# The first configuration: the project's example, else a minimal file that
# `clinic-agent validate` rejects until the site id and broker are filled in.
default_config() {
    if [ -f "$SRC/$EXAMPLE_CONFIG" ]; then cat "$SRC/$EXAMPLE_CONFIG"; return; fi
    cat <<'EOF'
# Clinic agent settings. Fill in site_id and the broker, add the devices, then run
#   clinic-agent validate && systemctl restart clinic-agent
# Examples of every option: /opt/clinic-agent/share/examples/
site_id = ""                      # the clinic's code, e.g. "KE-KSM-014"
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
# username = "clinic-ke-ksm-014"
# password = "..."
#
# [devices.router]
# community = "..."
EOF
}

NEW_CONFIG=0

install_config() {
    step "Configuration in $ETC"
    # Existing files are never rewritten; only wrong permissions on them are corrected (and said).
    local fixing=0
    if [ -d "$(r "$ETC")" ]; then fixing=1; else mkdir -p "$(r "$ETC")"; fi
    FIXING=$fixing own 0750 root "$AGENT_USER" "$ETC"
    fixing=0
    if [ -e "$(r "$ETC/agent.toml")" ]; then
        fixing=1
        info "kept your settings: $ETC/agent.toml"
    else
        (umask 027 && default_config > "$(r "$ETC/agent.toml")")
        NEW_CONFIG=1
        info "created $ETC/agent.toml: edit it (site id, broker, devices)"
    fi
    FIXING=$fixing own 0640 root "$AGENT_USER" "$ETC/agent.toml"
    fixing=0
    if [ -e "$(r "$ETC/secrets.toml")" ]; then
        fixing=1
        info "kept your passwords: $ETC/secrets.toml"
    else
        (umask 077 && default_secrets > "$(r "$ETC/secrets.toml")")
        info "created $ETC/secrets.toml (passwords; readable by the agent only)"
    fi
    FIXING=$fixing own 0600 "$AGENT_USER" "$AGENT_USER" "$ETC/secrets.toml"
}

install_state() {
    step "Data directory $STATE"
    local buffer
    buffer=$(r "$STATE/buffer.sqlite")
    if [ -d "$(r "$STATE")" ]; then
        if [ -f "$buffer" ]; then
            info "kept the reading buffer ($(du -h "$buffer" | cut -f1) on disk)"
        else
            info "already there"
        fi
    else
        mkdir -p "$(r "$STATE")"
        info "created"
    fi
    own 0750 "$AGENT_USER" "$AGENT_USER" "$STATE"
}

install_unit() {
    step "systemd service $APP.service"
    local unit_src=$SRC/systemd/$APP.service target
    target=$(r "$UNIT")
    [ -f "$unit_src" ] || die "missing $unit_src"
    mkdir -p "$(dirname "$target")"
    if [ -f "$target" ] && cmp -s "$unit_src" "$target"; then
        info "unit file unchanged: $UNIT"
    else
        if [ -f "$target" ]; then info "unit file updated: $UNIT"; else info "unit file installed: $UNIT"; fi
        install -m 0644 "$unit_src" "$target"
    fi
    own 0644 root root "$UNIT"
    if systemd_running; then
        systemctl daemon-reload
        systemctl enable --quiet "$APP.service"
    else
        enable_offline
    fi
    info "enabled: starts at every boot"
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

CONFIG_OK=0

check_config() {
    step "Checking the configuration"
    local cmd=("$(r "$PREFIX/venv/bin/clinic-agent")" validate "$(r "$ETC/agent.toml")") out
    # As the agent's user where possible: that also proves it can read its files.
    if [ "$NO_USERS" = 0 ] && command -v runuser >/dev/null 2>&1; then
        cmd=(runuser -u "$AGENT_USER" -- "${cmd[@]}")
    fi
    if [ -f "$SRC/$EXAMPLE_CONFIG" ] && cmp -s "$SRC/$EXAMPLE_CONFIG" "$(r "$ETC/agent.toml")"; then
        # Valid, but it would report as the example clinic to the example broker.
        warn "$ETC/agent.toml is still the example: put in this clinic's site id, broker and"
        info "devices, then run:"
        info "    clinic-agent validate && systemctl restart $APP"
        return
    fi
    if [ -f "$SRC/$EXAMPLE_SECRETS" ] && cmp -s "$SRC/$EXAMPLE_SECRETS" "$(r "$ETC/secrets.toml")"; then
        warn "$ETC/secrets.toml still holds the example passwords"
    fi
    if [ "$NO_USERS" = 0 ] && ! out=$(runuser -u "$AGENT_USER" -- "$PREFIX/venv/bin/clinic-agent" --version 2>&1); then
        printf '%s\n' "$out" | sed 's/^/    /'
        warn "user $AGENT_USER cannot run the program: is $PYTHON in a private directory"
        info "(such as /root)? Install again with --python /usr/bin/python3."
        return
    fi
    if out=$("${cmd[@]}" 2>&1); then
        CONFIG_OK=1
        info "${GREEN}${out}${OFF}"
    else
        printf '%s\n' "$out" | sed 's/^/    /'
        if [ "$NEW_CONFIG" = 1 ]; then
            info "This is a new install: fill in $ETC/agent.toml (and secrets.toml), then run:"
        else
            warn "the configuration has problems (above). Fix $ETC/agent.toml, then run:"
        fi
        info "    clinic-agent validate && systemctl restart $APP"
    fi
}

start_service() {
    step "Starting the service"
    if [ -n "$ROOT" ]; then
        info "not started: installed into $ROOT, not onto this computer"
    elif ! systemd_running; then
        warn "systemd is not running on this computer (container or chroot?): the service is"
        info "installed and enabled but not started. To run the agent by hand:"
        info "    sudo -u $AGENT_USER $PREFIX/venv/bin/clinic-agent run -c $ETC/agent.toml"
    elif [ "$NO_START" = 1 ]; then
        info "not started (--no-start). Start it with: systemctl restart $APP"
    elif [ "$CONFIG_OK" = 0 ]; then
        warn "not started: the configuration needs fixing first (see above)"
    else
        # Type=notify: this returns once the agent reported READY=1 (or failed).
        if ! systemctl restart "$APP.service"; then
            journalctl -u "$APP.service" -n 30 --no-pager >&2 || true
            die "the service did not start (log above; more with: journalctl -u $APP)"
        fi
        info "${GREEN}running${OFF}: $(systemctl show -p StatusText --value "$APP.service")"
        info "follow its log with: journalctl -u $APP -f"
    fi
}

# -- uninstall ------------------------------------------------------------------------------------

uninstall() {
    step "Stopping and disabling the service"
    if systemd_running; then
        systemctl disable --now --quiet "$APP.service" 2>/dev/null || true
        info "stopped and disabled"
    else
        if command -v systemctl >/dev/null 2>&1; then
            systemctl --root="${ROOT:-/}" disable --quiet "$APP.service" >/dev/null 2>&1 || true
        fi
        rm -f "$(r "/etc/systemd/system/multi-user.target.wants/$APP.service")"
        info "disabled"
    fi

    step "Removing the program"
    local path
    for path in "$UNIT" "$BIN_LINK" "$PREFIX"; do
        if [ "$path" = "$BIN_LINK" ] && [ -e "$(r "$path")" ] && [ ! -L "$(r "$path")" ]; then
            warn "left $path alone: it is not the link this installer made"
        elif [ -e "$(r "$path")" ] || [ -L "$(r "$path")" ]; then
            rm -rf "$(r "$path")"
            info "removed $path"
        else
            info "already gone: $path"
        fi
    done
    if systemd_running; then
        systemctl daemon-reload
        systemctl reset-failed "$APP.service" 2>/dev/null || true
    fi

    step "Settings and readings"
    if [ "$PURGE" = 1 ]; then
        rm -rf "$(r "$ETC")" "$(r "$STATE")" "$(r "$INSTALL_LOG")"
        info "deleted $ETC and $STATE (settings, passwords, unsent readings)"
        if [ "$NO_USERS" = 0 ] && getent passwd "$AGENT_USER" >/dev/null; then
            userdel "$AGENT_USER"
            info "deleted user $AGENT_USER"
        fi
    else
        info "kept $ETC (settings) and $STATE (unsent readings): a new install picks them up"
        info "to delete them too: $0 --uninstall --purge"
    fi
}

# -- main -----------------------------------------------------------------------------------------

if [ "$ACTION" = uninstall ]; then
    STEPS=3
    printf '%sRemoving the clinic agent%s%s\n' "$BOLD" "${ROOT:+ from $ROOT}" "$OFF"
    uninstall
    printf '\n%sDone.%s\n' "$GREEN" "$OFF"
    exit 0
fi

STEPS=8
printf '%sInstalling the clinic agent%s%s\n' "$BOLD" "${ROOT:+ into $ROOT}" "$OFF"
check_computer
create_user
install_program
install_config
install_state
install_unit
write_manifest
check_config
start_service
printf '\n%sDone.%s Settings: %s/agent.toml   Status: systemctl status %s\n' \
    "$GREEN" "$OFF" "$ETC" "$APP"
