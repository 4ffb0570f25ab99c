#!/usr/bin/env bash
# The test command: installs everything the suite needs on a fresh Debian machine (Debian
# packages, then emu with its dev extra and the vmcoreinfo plugin into the virtual environment
# .venv of this checkout), then runs ruff and the whole pytest suite from that environment.
# Arguments go to pytest. EMU_VENV=DIR uses another virtual environment.
#
# Debian's python3 refuses `pip install` outside a virtual environment (PEP 668,
# "externally-managed-environment"), hence .venv. pip runs only when .venv is new or when
# pyproject.toml, plugins/vmcoreinfo/pyproject.toml, the Python or the checkout's path changed
# since the last install (the stamp .venv/emu-install.stamp records them).
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(qemu-system-x86 qemu-system-arm binutils gdb gdb-multiarch crash makedumpfile
                 acpica-tools  # iasl, for tests/test_acpi_tables.py
                 liblzo2-dev python3-dev  # python-lzo (kdump-lzo dumps) is built from source
                 device-tree-compiler
                 # the Linux test kernels (tools/linux/build.py)
                 linux-source-6.1 make gcc gcc-aarch64-linux-gnu flex bison bc libelf-dev cpio
                 xz-utils)
PYTHON=${PYTHON:-python3}
VENV=${EMU_VENV:-.venv}

# A minimal Debian has no python3; python3 -m venv needs ensurepip, which Debian ships in
# python3-venv.
if ! command -v "$PYTHON" >/dev/null; then
    DEBIAN_PACKAGES+=(python3 python3-venv)
elif [ ! -x "$VENV/bin/python" ] && ! "$PYTHON" -c 'import ensurepip' >/dev/null 2>&1; then
    DEBIAN_PACKAGES+=(python3-venv)
fi
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x "$VENV/bin/python" ]; then
    rm -rf "$VENV"  # a venv that failed half-way (no pip) would be kept otherwise
    "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/emu-install.stamp"
want=$( { sha256sum pyproject.toml plugins/vmcoreinfo/pyproject.toml
          "$VENV/bin/python" -c 'import sys; print(sys.version)'
          pwd; } | sha256sum)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    rm -f "$stamp"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        -e '.[dev]' -e plugins/vmcoreinfo
    echo "$want" >"$stamp"
fi

"$VENV/bin/ruff" check .
# The Linux test kernels: built once per machine into ~/.cache/emu-linux (keyed by their
# inputs), reused afterwards (about 5 minutes on 2 cores the first time).
"$VENV/bin/python" tools/linux/build.py x86_64 arm64
# Debian's distribution kernels (linux-image-amd64, linux-image-arm64) and their initramfs,
# fetched once into ~/.cache/emu-linux/debian (tests/test_debian_kernels.py).
"$VENV/bin/python" tools/linux/debian_kernels.py amd64 arm64
exec "$VENV/bin/python" -m pytest "$@"
