#!/usr/bin/env bash
# Installs what edgeway needs on Debian 12 (bookworm) or Debian 13 (trixie), as root.
# Idempotent and quick when everything is present. The packages follow the release
# (/etc/os-release VERSION_CODENAME):
#                 llhttp                         Catch2          clang (fuzzing)
#   bookworm      node-llhttp (C sources)        2.13, headers   14
#   trixie        libllhttp-dev 9.2 (library)    3.7, library    19
#
#   scripts/install-deps.sh          build + demo: compiler, CMake, Mbed TLS, c-ares, llhttp, Catch2, Node
#   scripts/install-deps.sh --test   also: the e2e client libraries and Chromium, clang with its sanitizer runtimes,
#                                    lwIP, the ARM (aarch64, armhf) and Cortex-M toolchains, qemu,
#                                    the :arm64/:armhf libraries, (bookworm) Mbed TLS 3.6.6
#                                    built from Debian 13's source into /var/cache/edgeway
#                                    (and that source tree, for the lean static build),
#                                    the package tests' debootstrap, debhelper, lintian, nspawn,
#                                    Prometheus + promtool (the metrics test),
#                                    and mosquitto + mosquitto-clients (the MQTT telemetry test)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/debian-release.sh
. scripts/debian-release.sh

want=(build-essential cmake pkg-config libmbedtls-dev libc-ares-dev "$EW_LLHTTP_PKG" catch2 openssl ca-certificates)
if [ "${1:-}" = "--test" ]; then
  want+=(iproute2 procps curl chromium liblwip-dev "clang-$EW_CLANG" "libclang-rt-$EW_CLANG-dev" dpkg-dev
         debootstrap debhelper lintian systemd-container
         gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm
         qemu-user g++-aarch64-linux-gnu g++-arm-linux-gnueabihf prometheus mosquitto mosquitto-clients)
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
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "${1:-}" = "--test" ]; then
  # ARM builds of the libraries (Debian multiarch), for the cross-compiled binaries under
  # qemu-user; on trixie also the target's llhttp and Catch2 (scripts/cross-arm.sh --prepare).
  for arch in arm64 armhf; do bash scripts/cross-arm.sh --prepare "$arch"; done
  # Mbed TLS 3.6.6 for the ci.mbedtls36 test (Debian 12's own is 2.28; Debian 13's is 3.6).
  if [ "$EW_RELEASE" = bookworm ]; then bash scripts/mbedtls36.sh --prepare; fi
  # Its source tree, for the lean static build (ci.lean, scripts/lean.sh), on both releases.
  bash scripts/mbedtls36.sh --source
  # The e2e clients (openai, @langchain/openai, ai, playwright-core), pinned in tests/e2e/package-lock.json.
  if [ -f tests/e2e/package-lock.json ]; then
    (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
  fi
  # playwright-core (pinned in tests/ui/package-lock.json) drives Debian's /usr/bin/chromium;
  # it downloads no browser of its own.
  if [ -f tests/ui/package-lock.json ]; then
    (cd tests/ui && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
