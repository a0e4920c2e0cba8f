#!/usr/bin/env bash
# The core's self-test (tests/target/core_selftest.cpp) on an emulated Cortex-M4:
# built with toolchains/cortex-m4.cmake (newlib-nano, semihosting) and run with
#   qemu-system-arm -M mps2-an386 -nographic -semihosting -kernel core_selftest.elf
# once with the default caps and once with the small caps of scripts/cortex-m-common.sh.
# The program's exit status (semihosting SYS_EXIT) is qemu's; each run has a time limit.
#
#   bash scripts/cortex-m-test.sh        (root on Debian 12; installs what is missing)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cortex-m-common.sh

RUN_TIMEOUT=${EW_QEMU_TIMEOUT:-60}

ew_apt_install cmake make gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm
cm4_build "$EW_CM4_BUILD" "" core_selftest >/dev/null
cm4_build "$EW_CM4_SMALL_BUILD" "$EW_CM4_SMALL_CAPS" core_selftest >/dev/null

status=0
for dir in "$EW_CM4_BUILD" "$EW_CM4_SMALL_BUILD"; do
  elf=$dir/tests/target/core_selftest.elf
  log=$dir/core_selftest.log
  echo "== qemu-system-arm -M mps2-an386 -semihosting -kernel $elf"
  set +e
  # Semihosting writes to qemu's stderr; no stdin (-nographic would read commands from it).
  timeout "$RUN_TIMEOUT" qemu-system-arm -M mps2-an386 -nographic -semihosting -kernel "$elf" \
    </dev/null >"$log" 2>&1
  rc=$?
  set -e
  cat "$log"
  if [ "$rc" -eq 124 ]; then
    echo "FAIL: $elf did not finish within ${RUN_TIMEOUT}s"
    status=1
  elif [ "$rc" -ne 0 ]; then
    echo "FAIL: $elf exited with status $rc"
    status=1
  elif ! grep -qE '^[0-9]+ passed, 0 failed$' "$log"; then
    echo "FAIL: $elf exited 0 without its closing line"
    status=1
  fi
done
exit "$status"
