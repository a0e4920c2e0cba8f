#!/usr/bin/env bash
# Builds the Debian package from this repository (debian/, dpkg-buildpackage) and checks it
# with lintian (no errors allowed).
#
#   bash scripts/build-deb.sh [ARCH]     ARCH: amd64 (the machine's, default), arm64, armhf
#
# Output: build-deb/ARCH/edgeway_VERSION_ARCH.deb, and lintian's report beside it. The tree
# built is this working tree's tracked files (committed or not; without git, the tree minus its
# build folders), copied to build-deb/ARCH/src,
# because dpkg-buildpackage writes its results into the parent folder of the source.
# A foreign ARCH is cross-built (dpkg-buildpackage -a ARCH) with Debian's cross compiler and
# the multiarch Mbed TLS and c-ares of that architecture. Root on Debian 12 installs what is
# missing, as scripts/cross-aarch64.sh does; otherwise it says what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
native=$(dpkg --print-architecture)
arch=${1:-$native}
case "$arch" in
  amd64|arm64|armhf) ;;
  *) echo "build-deb.sh: unknown architecture $arch (amd64, arm64, armhf)"; exit 2 ;;
esac

source scripts/debian-release.sh
pkgs=(dpkg-dev debhelper lintian cmake pkg-config "$EW_LLHTTP_PKG")
if [ "$arch" = "$native" ]; then
  pkgs+=(build-essential "libmbedtls-dev:$arch" "libc-ares-dev:$arch")
else
  triple=$(dpkg-architecture -a "$arch" -qDEB_HOST_GNU_TYPE 2>/dev/null)
  # libstdc++6:ARCH: dpkg-shlibdeps looks for the libraries the binary needs (armhf needs it for
  # __aeabi_atexit) among the ARCH packages.
  pkgs+=("crossbuild-essential-$arch" "libc6-dev:$arch" "libstdc++6:$arch" "libmbedtls-dev:$arch" "libc-ares-dev:$arch")
  # Debian 13 links the system llhttp, so a cross build needs libllhttp-dev:ARCH; that package
  # is not Multi-Arch: same, and installing it removes the machine's own libllhttp-dev (which
  # every native build needs). Cross packages are built on Debian 12 (node-llhttp's sources).
  if [ "$EW_LLHTTP_PKG" = libllhttp-dev ]; then
    echo "skipped: a cross-built $arch package needs libllhttp-dev:$arch, which would replace this machine's libllhttp-dev (Debian 13); build it on Debian 12"
    exit 77
  fi
fi
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "build-deb.sh: missing packages: ${missing[*]}"; exit 1; fi
  echo "== installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if [ "$arch" != "$native" ] && ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
    dpkg --add-architecture "$arch"
  fi
  apt-get update -qq || echo "warning: apt-get update reported errors; installing anyway"
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

out=build-deb/$arch
rm -rf "$out"
mkdir -p "$out/src"
if command -v git >/dev/null && git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$out/src"
else
  # Not a git checkout (a source tarball), or no git on this machine: everything but what
  # builds and tests leave behind.
  tar --exclude='./build*' --exclude='./.git' --exclude='./artifacts' --exclude='node_modules' \
    -cf - . | tar -xf - -C "$out/src"
fi
echo "== dpkg-buildpackage ($arch${triple:+, cross to $triple})"
args=(-b -us -uc)
[ "$arch" = "$native" ] || args+=(-a "$arch")
(cd "$out/src" && dpkg-buildpackage "${args[@]}") >"$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
deb=$(ls "$out"/edgeway_*_"$arch".deb)
echo "   $deb ($(stat -c %s "$deb") bytes)"
dpkg-deb --info "$deb" | sed -n 's/^ \(Package\|Version\|Architecture\|Depends\):/   \1:/p'
dpkg-deb --contents "$deb" | awk '{print "   " $1, $6}'

echo "== lintian"
# --fail-on error: any error fails the build; warnings are printed for a person to read.
lintian --fail-on error --tag-display-limit 0 "$out"/*.changes | tee "$out/lintian.txt"
echo "   lintian: $(grep -c '^E:' "$out/lintian.txt" || true) errors, $(grep -c '^W:' "$out/lintian.txt" || true) warnings"

# The packaged binary is for ARCH, and (foreign ARCH, with qemu-user) it runs.
x=$(mktemp -d)
trap 'rm -rf "$x"' EXIT
dpkg-deb -x "$deb" "$x"
machine=$(readelf -h "$x/usr/bin/edgeway" | awk -F: '/Machine:/ {gsub(/^ +/, "", $2); print $2}')
echo "== usr/bin/edgeway: $machine"
case "$arch" in
  amd64) want="Advanced Micro Devices X86-64"; qemu= ;;
  arm64) want=AArch64; qemu=qemu-aarch64 ;;
  armhf) want=ARM; qemu=qemu-arm ;;
esac
[ "$machine" = "$want" ] || { echo "FAIL: the $arch package holds a $machine binary"; exit 1; }
if [ -z "$qemu" ]; then
  "$x/usr/bin/edgeway" --version
elif command -v "$qemu" >/dev/null; then
  "$qemu" -L "/usr/$triple" "$x/usr/bin/edgeway" --version
  "$qemu" -L "/usr/$triple" "$x/usr/bin/edgeway" --check-config "$x/etc/edgeway/edgeway.ini"
  echo "   runs under $qemu; --check-config of its INI exits 0"
else
  echo "   ($qemu not installed: not run)"
fi
