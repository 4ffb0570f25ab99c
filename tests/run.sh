#!/usr/bin/env bash
# The test command: installs everything the suite needs on a fresh Debian machine
# (Debian packages and the Python package with its dev extra), then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(qemu-system-x86 qemu-system-arm binutils gdb gdb-multiarch crash makedumpfile
                 device-tree-compiler)
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

python3 -m pip install -q --disable-pip-version-check -e '.[dev]' -e plugins/vmcoreinfo

ruff check .
python3 -m pytest "$@"
