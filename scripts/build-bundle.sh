#!/usr/bin/env bash
# Build an offline install bundle for clinics with no (or a slow) internet link on install day.
#
#   scripts/build-bundle.sh                        for PCs like this one (same Python, same CPU)
#   scripts/build-bundle.sh --python-version 3.11 --platform manylinux_2_28_aarch64
#                                                  for other PCs (binary wheels from PyPI only)
#
# Needs internet here, once. The result, dist/clinic-agent-VERSION-pyX.Y-MACHINE.tar.gz, holds
# the agent and every dependency as wheels, pip itself, install.sh, the systemd unit, the example
# configuration and SHA256SUMS. At the clinic:
#
#   tar xzf clinic-agent-*.tar.gz && cd clinic-agent-*/ && sudo ./install.sh
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: build-bundle.sh [OPTIONS]

  --python PATH            Python used to build (default: python3); its version and the CPU of
                           this PC are the bundle's target unless the next two options are given
  --python-version X.Y     target Python version (e.g. 3.11 for Debian 12)
  --platform TAG           target wheel platform (e.g. manylinux_2_28_aarch64); repeatable
  --out DIR                where to write the tarball (default: dist/)
  -h, --help               show this help
EOF
}

if [ -t 1 ]; then BOLD=$'\e[1m'; RED=$'\e[31m'; GREEN=$'\e[32m'; OFF=$'\e[0m'
else BOLD=; RED=; GREEN=; OFF=; fi
STEP=0
STEPS=5
step() { STEP=$((STEP + 1)); printf '\n%s==> [%d/%d] %s%s\n' "$BOLD" "$STEP" "$STEPS" "$*" "$OFF"; }
info() { printf '    %s\n' "$*"; }
die()  { printf '\n%sERROR: %s%s\n' "$RED" "$*" "$OFF" >&2; exit 1; }

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=python3
TARGET_PYTHON=""
PLATFORMS=()
OUT=$SRC/dist

while [ $# -gt 0 ]; do
    case "$1" in
        --python)         [ $# -ge 2 ] || die "--python needs a path"; PYTHON=$2; shift ;;
        --python-version) [ $# -ge 2 ] || die "--python-version needs X.Y"; TARGET_PYTHON=$2; shift ;;
        --platform)       [ $# -ge 2 ] || die "--platform needs a tag"; PLATFORMS+=("$2"); shift ;;
        --out)            [ $# -ge 2 ] || die "--out needs a directory"; OUT=$2; shift ;;
        -h|--help)        usage; exit 0 ;;
        *)                usage >&2; die "unknown option: $1" ;;
    esac
    shift
done

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
LOG=$WORK/pip.log

# pip quietly into a log; on failure show its end.
run_logged() {
    if ! "$@" >>"$LOG" 2>&1; then
        tail -n 25 "$LOG" >&2
        return 1
    fi
}

# -- 1 --------------------------------------------------------------------------------------------
step "Checking the build tools"
command -v "$PYTHON" >/dev/null 2>&1 || die "no $PYTHON: install Python 3.11 or newer"
PYTHON=$(command -v "$PYTHON")
"$PYTHON" -m pip --version >/dev/null 2>&1 || die "$PYTHON has no pip (apt-get install python3-pip)"
HERE_PYTHON=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ ${#PLATFORMS[@]} -gt 0 ] && [ -z "$TARGET_PYTHON" ]; then
    die "--platform needs --python-version too"
fi
TARGET_PYTHON=${TARGET_PYTHON:-$HERE_PYTHON}
if [ ${#PLATFORMS[@]} -gt 0 ]; then
    case "${PLATFORMS[0]}" in
        *x86_64) MACHINE=x86_64 ;;
        *aarch64) MACHINE=aarch64 ;;
        *armv7l) MACHINE=armv7l ;;
        *) MACHINE=${PLATFORMS[0]} ;;
    esac
else
    MACHINE=$(uname -m)
fi
CROSS=0
if [ ${#PLATFORMS[@]} -gt 0 ] || [ "$TARGET_PYTHON" != "$HERE_PYTHON" ]; then CROSS=1; fi
info "building with Python $HERE_PYTHON ($PYTHON), $("$PYTHON" -m pip --version | cut -d' ' -f1-2)"
info "target: Python $TARGET_PYTHON on $MACHINE"

# -- 2 --------------------------------------------------------------------------------------------
step "Building the agent's wheel"
WHEELHOUSE=$WORK/wheelhouse
mkdir -p "$WHEELHOUSE"
# pip builds in the source directory (build/, *.egg-info): build in a copy, so that two builds
# at once, or a developer's stale build/, cannot mix.
BUILD_SRC=$SRC
if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
    BUILD_SRC=$WORK/src
    mkdir -p "$BUILD_SRC"
    # Tracked and new files as they are in the work tree (not the ignored ones: .venv, build/).
    git -C "$SRC" ls-files -z --cached --others --exclude-standard \
        | (cd "$SRC" && while IFS= read -r -d '' f; do if [ -e "$f" ]; then printf '%s\0' "$f"; fi; done) \
        | tar -C "$SRC" --null -T - -cf - | tar -C "$BUILD_SRC" -xf -
fi
run_logged "$PYTHON" -m pip wheel --disable-pip-version-check --no-deps --wheel-dir "$WHEELHOUSE" \
    "$BUILD_SRC" || die "could not build the agent's wheel"
AGENT_WHEEL=$(find "$WHEELHOUSE" -name 'clinic_edge_agent-*.whl' | head -n 1)
[ -n "$AGENT_WHEEL" ] || die "pip built no clinic_edge_agent wheel"
VERSION=$(basename "$AGENT_WHEEL" | cut -d- -f2)
info "$(basename "$AGENT_WHEEL")"

# -- 3 --------------------------------------------------------------------------------------------
step "Collecting the dependencies and pip (from the internet)"
if [ "$CROSS" = 1 ]; then
    # Another PC's Python or CPU: only ready-made binary wheels will do, nothing is compiled here.
    target=(--only-binary=:all: --python-version "$TARGET_PYTHON" --implementation cp)
    for p in "${PLATFORMS[@]}"; do target+=(--platform "$p"); done
    run_logged "$PYTHON" -m pip download --disable-pip-version-check "${target[@]}" \
        --dest "$WHEELHOUSE" --find-links "$WHEELHOUSE" "$AGENT_WHEEL" pip \
        || die "some dependency has no wheel for Python $TARGET_PYTHON on ${PLATFORMS[*]:-$MACHINE}"
else
    run_logged "$PYTHON" -m pip wheel --disable-pip-version-check --wheel-dir "$WHEELHOUSE" \
        --find-links "$WHEELHOUSE" "$AGENT_WHEEL" pip \
        || die "could not collect the dependencies (internet?)"
fi
find "$WHEELHOUSE" -name '*.whl' -printf '%f\n' | sort | sed 's/^/    /'

# -- 4 --------------------------------------------------------------------------------------------
NAME=clinic-agent-$VERSION-py$TARGET_PYTHON-$MACHINE
step "Assembling $NAME"
STAGE=$WORK/$NAME
mkdir -p "$STAGE/systemd" "$STAGE/docs"
mv "$WHEELHOUSE" "$STAGE/wheelhouse"
install -m 0755 "$SRC/scripts/install.sh" "$STAGE/install.sh"
install -m 0644 "$SRC/systemd/clinic-agent.service" "$STAGE/systemd/"
if [ -d "$SRC/conf" ]; then cp -R "$SRC/conf" "$STAGE/conf"; fi
for doc in systemd.md install.md checklist-tecnico.md; do
    if [ -f "$SRC/docs/$doc" ]; then cp "$SRC/docs/$doc" "$STAGE/docs/"; fi
done
COMMIT=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$SRC" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    COMMIT=$COMMIT-modified     # built from a work tree with uncommitted changes
fi
cat > "$STAGE/BUNDLE_INFO" <<EOF
name=$NAME
version=$VERSION
commit=$COMMIT
python=$TARGET_PYTHON
machine=$MACHINE
built=$(date -u +%Y-%m-%dT%H:%M:%SZ)
EOF
cat > "$STAGE/README.txt" <<EOF
Agente de la clínica $VERSION, paquete sin internet para Python $TARGET_PYTHON en PCs $MACHINE
(Debian 12 trae Python 3.11). Lista del técnico: docs/checklist-tecnico.md

Instalar o actualizar (no hace falta internet); pregunta los datos de la clínica:
    sudo ./install.sh
    sudo ./install.sh --help        (cada dato como opción: --site-id, --broker, --ca-file, ...)
Quitar (conserva la configuración y las lecturas sin enviar):
    sudo ./install.sh --uninstall

Clinic agent $VERSION, offline bundle for Python $TARGET_PYTHON on $MACHINE PCs.
Install or upgrade: sudo ./install.sh --lang en (asks for the clinic's settings; --help lists
them as options). Remove, keeping settings and unsent readings: sudo ./install.sh --uninstall
EOF
(cd "$STAGE" && find . -type f -printf '%P\n' | sort | xargs -d '\n' sha256sum) > "$WORK/SHA256SUMS"
mv "$WORK/SHA256SUMS" "$STAGE/SHA256SUMS"
info "$(find "$STAGE/wheelhouse" -name '*.whl' | wc -l) wheels, $(du -sh "$STAGE" | cut -f1) unpacked"

# -- 5 --------------------------------------------------------------------------------------------
step "Writing the tarball"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
TARBALL=$OUT/$NAME.tar.gz
tar -C "$WORK" --owner=0 --group=0 -czf "$TARBALL.tmp" "$NAME"
mv -f "$TARBALL.tmp" "$TARBALL"
info "$TARBALL ($(du -h "$TARBALL" | cut -f1))"
info "sha256 $(sha256sum "$TARBALL" | cut -d' ' -f1)"
printf '\n%sDone.%s At the clinic: tar xzf %s && cd %s && sudo ./install.sh\n' \
    "$GREEN" "$OFF" "$(basename "$TARBALL")" "$NAME"
