#!/usr/bin/env bash
# The armhf (32-bit ARM, hard float) cross build and its tests under qemu-arm: scripts/cross-arm.sh armhf.
exec bash "$(dirname "$0")/cross-arm.sh" armhf "$@"
