#!/usr/bin/env bash
# The platform-free core (src/core) on a Cortex-M4: arm-none-eabi-g++ -mcpu=cortex-m4 -mthumb
# -Os -fno-exceptions -fno-rtti, newlib-nano. Prints flash (.text + .rodata) and static RAM
# (.data + .bss) and checks that the core never uses the heap.
#
#   bash scripts/cortex-m-size.sh        (root on Debian 12; installs the toolchain if missing)
#
# Measured, for the default caps and for the small caps of scripts/cortex-m-common.sh:
#   core library      libew_core.a: every object of src/core, nothing of libc
#   core firmware     tests/target/core_footprint.elf: every entry point of the core linked
#                     with newlib-nano and no OS (nosys), the core's state (Config, Health
#                     table, SSE parser, Metrics, a 2 KB output buffer) in static RAM
# Fails when
#   - the core library references malloc, free, calloc, realloc, sbrk, operator new or
#     operator delete (arm-none-eabi-nm -u);
#   - the core library has flash >= 64 KB or static RAM >= 16 KB;
#   - the firmware with the small caps has flash >= 64 KB or static RAM >= 16 KB;
#   - the linked core firmware contains the heap at all (the chain of members that pulled
#     it in is printed from the linker map). The core formats text with its own code
#     (StrBuf), not newlib's printf, which would pull in _malloc_r.
#   The self-test's heap comes from semihosting stdio (rdimon), the harness, not the core:
#   it is reported, and fatal only with EW_LINKED_HEAP=fail.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/cortex-m-common.sh

LIMIT_FLASH=65536
LIMIT_RAM=16384
LINKED_HEAP=${EW_LINKED_HEAP:-warn}
HEAP_RE='^(malloc|free|calloc|realloc|reallocf|memalign|aligned_alloc|posix_memalign|valloc|pvalloc|_malloc_r|_free_r|_calloc_r|_realloc_r|_memalign_r|sbrk|_sbrk|_sbrk_r|_Znw[jm].*|_Zna[jm].*|_ZdlPv.*|_ZdaPv.*)$'

ew_apt_install cmake make gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib
echo "== $(arm-none-eabi-gcc --version | head -1)"
cm4_build "$EW_CM4_BUILD" "" ew_core core_footprint core_selftest >/dev/null
cm4_build "$EW_CM4_SMALL_BUILD" "$EW_CM4_SMALL_CAPS" ew_core core_footprint core_selftest >/dev/null

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# "TEXT RODATA DATA BSS" of an object, archive or ELF (sections .text*, .rodata*, .data*, .bss*).
sections() {
  arm-none-eabi-size -A "$1" | awk '
    $1 ~ /^\.text/ {t += $2} $1 ~ /^\.rodata/ {r += $2} $1 ~ /^\.data/ {d += $2} $1 ~ /^\.bss/ {b += $2}
    END {printf "%d %d %d %d\n", t, r, d, b}'
}

# Prints how SYMBOL got into a linked program: the archive member that defines it and, up
# to the program's own object, which member's reference pulled each one in (the linker
# map's "Archive member included to satisfy reference by file (symbol)").
heap_chain() {
  local map=$1 sym=$2
  awk -v sym="$sym" '
    function short(f) { sub(/^.*\//, "", f); return f }
    /^Archive member included to satisfy reference by file \(symbol\)/ { sec = 1; next }
    sec && /^(Discarded input sections|Allocating common symbols|Memory Configuration)/ { sec = 0 }
    sec && /^[^ \t]/ {
      member = $1
      if (NF > 1) { rest = $0; sub(/^[^ \t]+[ \t]+/, "", rest); take(member, rest); member = "" }
      next
    }
    sec && member != "" && /^[ \t]+[^ \t]/ { rest = $0; sub(/^[ \t]+/, "", rest); take(member, rest); member = "" }
    function take(m, rest,   p) {
      p = rest; sub(/[ \t].*$/, "", p)
      sub(/^[^ \t]+[ \t]+/, "", rest)
      parent[m] = p; why[m] = rest
      if (rest == "(" sym ")") def = m
    }
    END {
      if (def == "") { print "    " sym ": defined in the program itself"; exit }
      print "    " sym " (in " short(def) ") was pulled in by:"
      cur = def
      for (i = 0; i < 30 && (cur in parent); i++) {
        printf "      %-44s needs %s\n", short(parent[cur]), why[cur]
        cur = parent[cur]
      }
    }' "$map"
}

# ---- the core library --------------------------------------------------------------------
report_library() {
  local dir=$1 label=$2 lib=$1/libew_core.a
  read -r t r d b < <(sections "$lib")
  local flash=$((t + r)) ram=$((d + b))
  echo
  echo "== core library, $label caps: $lib"
  printf '   flash %6d B  (.text %d + .rodata %d)\n' "$flash" "$t" "$r"
  printf '   RAM   %6d B  (.data %d + .bss %d)\n' "$ram" "$d" "$b"
  [ "$flash" -lt "$LIMIT_FLASH" ] || fail "core library flash $flash B >= $LIMIT_FLASH B"
  [ "$ram" -lt "$LIMIT_RAM" ] || fail "core library static RAM $ram B >= $LIMIT_RAM B"
  local heap
  heap=$(arm-none-eabi-nm -u "$lib" | awk '{print $NF}' | grep -E "$HEAP_RE" | sort -u || true)
  if [ -n "$heap" ]; then
    fail "the core library references the heap: $(echo $heap)"
    arm-none-eabi-nm -u -A "$lib" | grep -E " U ($(echo $heap | tr ' ' '|'))$" | sed 's/^/     /'
  else
    echo "   heap: none referenced (arm-none-eabi-nm -u: no malloc, free, calloc, realloc, sbrk, new, delete)"
  fi
  eval "${label}_lib_flash=$flash ${label}_lib_ram=$ram"
}

# ---- a linked program ----------------------------------------------------------------------
report_linked() {
  local elf=$1 map=${1%.elf}.map label=$2 what=$3 heap_policy=${5:-$LINKED_HEAP}
  read -r t r d b < <(sections "$elf")
  local flash=$((t + r)) ram=$((d + b))
  echo
  echo "== $what, $label caps: $elf"
  printf '   flash %6d B  (.text %d + .rodata %d)\n' "$flash" "$t" "$r"
  printf '   RAM   %6d B  (.data %d + .bss %d)\n' "$ram" "$d" "$b"
  if [ "$d" -gt 0 ]; then
    echo "   (.data is also stored in flash, as its initial image, on a flash-resident device)"
  fi
  echo "   largest static objects:"
  arm-none-eabi-nm -S --size-sort -C "$elf" | awk '$3 ~ /^[bBdD]$/' | tail -6 |
    while read -r _ size _ name; do printf '     %6d B  %s\n' "$((16#$size))" "$name"; done
  local heap
  heap=$(arm-none-eabi-nm "$elf" | awk '$2 ~ /^[TtWw]$/ {print $3}' | grep -E "$HEAP_RE" | sort -u || true)
  if [ -n "$heap" ]; then
    echo "   heap linked in: $(echo $heap)"
    local s
    for s in _malloc_r malloc _Znwj; do
      echo "$heap" | grep -qx "$s" && heap_chain "$map" "$s"
    done
    if [ "$heap_policy" = fail ]; then fail "$elf contains the heap"; else echo "   note: $elf contains the heap (EW_LINKED_HEAP=fail makes this fatal)"; fi
  else
    echo "   heap: not linked in"
  fi
  eval "${label}_${4}_flash=$flash ${label}_${4}_ram=$ram"
}

report_library "$EW_CM4_BUILD" default
report_library "$EW_CM4_SMALL_BUILD" small
report_linked "$EW_CM4_BUILD/tests/target/core_footprint.elf" default "core firmware (whole core + newlib-nano)" fw fail
report_linked "$EW_CM4_SMALL_BUILD/tests/target/core_footprint.elf" small "core firmware (whole core + newlib-nano)" fw fail
report_linked "$EW_CM4_BUILD/tests/target/core_selftest.elf" default "self-test (+ semihosting)" st

[ "$small_fw_flash" -lt "$LIMIT_FLASH" ] || fail "firmware flash $small_fw_flash B >= $LIMIT_FLASH B (small caps)"
[ "$small_fw_ram" -lt "$LIMIT_RAM" ] || fail "firmware static RAM $small_fw_ram B >= $LIMIT_RAM B (small caps)"

echo
echo "== Cortex-M4 summary (bytes; limits: flash < $LIMIT_FLASH, static RAM < $LIMIT_RAM)"
printf '   %-40s %8s %8s\n' "" flash RAM
printf '   %-40s %8d %8d\n' "core library, default caps" "$default_lib_flash" "$default_lib_ram"
printf '   %-40s %8d %8d\n' "core firmware, default caps" "$default_fw_flash" "$default_fw_ram"
printf '   %-40s %8d %8d\n' "core firmware, small caps (checked)" "$small_fw_flash" "$small_fw_ram"
if [ "$failures" -gt 0 ]; then
  echo "cortex-m-size: $failures check(s) failed"
  exit 1
fi
echo "cortex-m-size: ok"
