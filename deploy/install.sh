#!/usr/bin/env bash
# Install the kdlib course hub on one Debian or Ubuntu machine. Run as root from a clone of the
# repository that every user can read (e.g. /opt/kdlib). Running it again updates the install.
#
#   git clone <repository> /opt/kdlib && cd /opt/kdlib && sudo deploy/install.sh
#
# Settings (environment variables, defaults in brackets):
#   KDLIB_PREFIX [/opt/kdlib-hub]        the Python environment of the hub and of every user server
#   TORCH_REQUIREMENT [torch]            e.g. "torch==2.13.0"; a CPU-only build is much smaller:
#   TORCH_INDEX_URL []                   https://download.pytorch.org/whl/cpu for the CPU-only build
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${KDLIB_PREFIX:-/opt/kdlib-hub}
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }

# 1. system packages: Python with venv, Node.js for the hub's proxy
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv nodejs npm >/dev/null
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -ge 20 ]; then chp=configurable-http-proxy@5; else chp=configurable-http-proxy@5.1; fi
npm install -g --silent "$chp"

# 2. one environment for the hub and all users: it must be readable by everyone, so it is made
#    from the system's Python (not one inside a home folder such as ~/.pyenv)
/usr/bin/python3 -m venv "$PREFIX"
"$PREFIX/bin/python" -m pip install --quiet --upgrade pip
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  "$PREFIX/bin/python" -m pip install --quiet "${TORCH_REQUIREMENT:-torch}" --index-url "$TORCH_INDEX_URL"
else
  "$PREFIX/bin/python" -m pip install --quiet "${TORCH_REQUIREMENT:-torch}"
fi
"$PREFIX/bin/python" -m pip install --quiet "$REPO[classroom]"
chmod -R a+rX "$PREFIX"

# 3. settings, state, exchange and the service
[ -f /etc/kdlib-hub.env ] || install -m 644 "$REPO/deploy/kdlib-hub.env" /etc/kdlib-hub.env
set -a; . /etc/kdlib-hub.env; set +a
install -d -m 700 "${KDLIB_HUB_STATE:-/srv/kdlib-hub}"
install -d -m 755 "$(dirname "${KDLIB_EXCHANGE:-/srv/nbgrader/exchange}")"
install -d -m 1777 "${KDLIB_EXCHANGE:-/srv/nbgrader/exchange}"   # every user writes, nobody lists others' files
sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@REPO@|$REPO|g" -e "s|@STATE@|${KDLIB_HUB_STATE:-/srv/kdlib-hub}|g" \
  "$REPO/deploy/kdlib-hub.service" > /etc/systemd/system/kdlib-hub.service
systemctl daemon-reload
systemctl enable --now kdlib-hub
systemctl restart kdlib-hub
echo "kdlib hub running: http://$(hostname -f):${KDLIB_HUB_PORT:-8000}  (logs: journalctl -u kdlib-hub)"
echo "next: $PREFIX/bin/python $REPO/deploy/classroom.py add-instructor <name>"
