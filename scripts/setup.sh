#!/usr/bin/env bash
# One-time set-up of a Debian/Ubuntu machine for running the demo and the tests:
# system packages for the simulated clinic (Mosquitto, net-snmp, socat, ...) and a Python
# virtualenv in .venv with the agent and its test tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

APT_PACKAGES=(
  python3 python3-venv python3-pip     # the agent
  mosquitto mosquitto-clients          # MQTT broker for demo and tests
  snmpd snmp                           # a real SNMP agent as the simulated router
  socat                                # serial (RS-485) links over pseudo-terminals
  iproute2 libfaketime tmux            # network namespaces, clock tests, CLI tests
  systemd                              # systemd-analyze for the unit file checks
  victoria-metrics postgresql          # the central side's stores (clinic-central, tests, demo)
  prometheus-alertmanager              # alert delivery for clinic-central alerts (tests start a real one)
  chromium chromium-driver             # the fleet page's browser test (headless, never downloaded)
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The tests and the demo start their own servers on loopback. A service these packages just
  # started by themselves (Alertmanager and VictoriaMetrics listen on every address) is stopped.
  if [ -d /run/systemd/system ]; then
    for unit in prometheus-alertmanager victoria-metrics mosquitto postgresql snmpd; do
      for p in "${missing[@]}"; do
        [ "$p" = "$unit" ] && $SUDO systemctl disable --now "$unit" >/dev/null 2>&1 || true
      done
    done
  fi
else
  echo "==> system packages already installed"
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
echo "==> installing the agent, clinic-central and test tools into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test,central]"
# snmpsim serves the real-device SNMP recordings to the tests. It needs pysmi, which must stay
# out of .venv (with pysmi present, pysnmp compiles MIBs on the agent's first request): own venv.
if [ ! -x .venv-snmpsim/bin/snmpsim-command-responder ]; then
  echo "==> installing snmpsim into .venv-snmpsim"
  "$PYTHON" -m venv .venv-snmpsim
  .venv-snmpsim/bin/python -m pip install -q --disable-pip-version-check "snmpsim>=1.2,<2" "pysmi>=2,<3"
fi
echo "==> set-up done"
