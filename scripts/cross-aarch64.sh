#!/usr/bin/env bash
# The aarch64 cross build and its tests under qemu-aarch64: scripts/cross-arm.sh arm64.
exec bash "$(dirname "$0")/cross-arm.sh" arm64 "$@"
