# Sourced by scripts/serve and scripts/test: system packages, virtualenv and Python
# dependencies, each installed only when missing or changed, so a second run is quick.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3.11}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    local missing=()
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "==> Installing system packages: ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    apt_install python3.11
fi
# mysqlclient builds from source: it needs the client library, pkg-config and a compiler;
# Debian's own Python also needs its venv module and headers.
system_packages=(default-libmysqlclient-dev pkg-config build-essential)
if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    system_packages+=(python3.11-venv)
fi
if ! "$PYTHON" -c 'import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' >/dev/null 2>&1; then
    system_packages+=(python3.11-dev)
fi
apt_install "${system_packages[@]}"

if [ ! -x .venv/bin/python ]; then
    echo "==> Creating the virtualenv in .venv"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha256
wanted=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    echo "==> Installing Python dependencies"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -r requirements.txt
    echo "$wanted" > "$stamp"
fi
