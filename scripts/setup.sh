#!/usr/bin/env bash
# Everything tinydeploy needs on a fresh Debian machine: the Arm and RISC-V cross
# toolchains, QEMU for both, CMake and Make (the C library in a user's build), and a
# virtual environment (.venv) with tinydeploy and its Python packages.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="gcc g++ gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm
              gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc
              gcc-xtensa-lx106 binutils-xtensa-lx106 picolibc-xtensa-lx106-elf
              cmake make"
missing=""
for pkg in $APT_PACKAGES; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# Reinstall whenever pyproject.toml (the dependency list) changed since the last install.
stamp=.venv/.tinydeploy-installed
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ] || \
   ! .venv/bin/python -c "import tinydeploy, tensorflow, tflite_micro, platformio, pytest, flwr, ray, ai_edge_quantizer" 2>/dev/null; then
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[train,dev,federated]'
    echo "$wanted" > "$stamp"
fi
echo "tinydeploy is set up: .venv/bin/tinydeploy doctor"
