#!/usr/bin/env bash
# Installs what edgeway needs on Debian 12, as root. Idempotent and quick when present.
#   scripts/install-deps.sh          build + demo: compiler, CMake, Mbed TLS, cJSON, c-ares, llhttp, Catch2, Node
#   scripts/install-deps.sh --test   also: the e2e client libraries and Chromium, clang for fuzzing,
#                                    lwIP, the ARM and Cortex-M toolchains, qemu,
#                                    and the package tests' debootstrap, debhelper, lintian, nspawn
set -euo pipefail
cd "$(dirname "$0")/.."

want=(build-essential cmake pkg-config libmbedtls-dev libcjson-dev libc-ares-dev node-llhttp catch2 openssl ca-certificates)
if [ "${1:-}" = "--test" ]; then
  want+=(iproute2 procps curl chromium liblwip-dev clang-14 libclang-rt-14-dev
         debootstrap dpkg-dev debhelper lintian systemd-container
         gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm
         qemu-user g++-aarch64-linux-gnu)
fi
# Node: Debian's nodejs and npm, unless a Node is already installed (a newer Node from
# elsewhere ships its own npm, and Debian's npm package conflicts with it).
command -v node >/dev/null || want+=(nodejs)
command -v npm >/dev/null || want+=(npm)

missing=()
for p in "${want[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi

if [ "${1:-}" = "--test" ]; then
  # ARM64 builds of the libraries, for the cross-compiled binary under qemu-aarch64.
  if ! dpkg -s libmbedtls-dev:arm64 libcjson-dev:arm64 libc-ares-dev:arm64 >/dev/null 2>&1; then
    dpkg --add-architecture arm64
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libmbedtls-dev:arm64 libcjson-dev:arm64 libc-ares-dev:arm64 libc6:arm64
  fi
  # The e2e clients (openai, @langchain/openai, ai, playwright-core), pinned in tests/e2e/package-lock.json.
  if [ -f tests/e2e/package-lock.json ]; then
    (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
