#!/usr/bin/env bash
# The Debian package on a new machine: builds the .deb (scripts/build-deb.sh), installs it with
# apt in a fresh Debian 12 root (debootstrap), and checks there:
#   - edgeway --check-config /etc/edgeway/edgeway.ini exits 0, and --version runs;
#   - the system user "edgeway" exists (no login shell, a system uid);
#   - /etc/edgeway/edgeway.ini is a conffile: a changed one survives reinstalling the package,
#     and purging removes it;
#   - systemd-analyze verify of the installed unit prints nothing and exits 0 (with man-db in the
#     root, so Documentation=man:edgeway(8) is checked too);
#   - systemd-analyze security rates the unit at or below 2.0 (the figure is printed).
#
#   bash tests/package/deb_fresh_root.sh        (root; ctest: package.deb_fresh_root)
#
# The base root (debootstrap --variant=minbase bookworm, plus systemd and man-db, which a Debian
# 12 machine has) is built once and kept as a tarball outside the clone, in
# ${EW_ROOT_CACHE:-/var/tmp/edgeway-roots}; each run unpacks a pristine copy (a few seconds).
# EW_DEB=path skips building the package. Exits 77 (skipped) without root or debootstrap.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "skipped: needs root (debootstrap, chroot, mounts)"; exit 77; }
command -v debootstrap >/dev/null || { echo "skipped: needs debootstrap (apt-get install debootstrap)"; exit 77; }

fail() { echo "FAIL: $*"; exit 1; }
cache=${EW_ROOT_CACHE:-/var/tmp/edgeway-roots}
base=$cache/bookworm-systemd.tar
# The archive this machine's apt already uses (deb822 sources, or the classic list).
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
[ -n "$mirror" ] || mirror=$(awk '$1=="deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
[ -n "$mirror" ] || fail "cannot tell which Debian archive this machine uses"

root=
mounted=()
unmount_all() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
  mounted=()
}
cleanup() {
  unmount_all
  # --one-file-system: never into a bind mount that did not come off.
  if [ -n "$root" ]; then rm -rf --one-file-system "$root"; fi
}
trap cleanup EXIT
mount_into() {  # mount_into DIR: the host's proc, sys, dev, dev/pts under DIR
  for m in proc sys dev dev/pts; do mount --bind "/$m" "$1/$m"; mounted+=("$1/$m"); done
}
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 \
  DEBIAN_FRONTEND=noninteractive "$@"; }

# ---- the base root, once ----------------------------------------------------------------------
if [ ! -s "$base" ]; then
  mkdir -p "$cache"
  part=$(mktemp -d "$cache/build.XXXX")
  echo "== building the base root in $base (once; a few minutes)"
  debootstrap --variant=minbase bookworm "$part" "$mirror" >"$cache/debootstrap.log" 2>&1 \
    || { rm -rf "$part"; fail "debootstrap failed: see $cache/debootstrap.log"; }
  rm -f "$part/etc/apt/sources.list"
  cat >"$part/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  cp /etc/resolv.conf "$part/etc/resolv.conf"
  root=$part
  mount_into "$part"
  in_root apt-get update -qq >>"$cache/debootstrap.log" 2>&1
  in_root apt-get install -y -qq --no-install-recommends systemd man-db >>"$cache/debootstrap.log" 2>&1 \
    || fail "installing systemd and man-db in the base root failed: see $cache/debootstrap.log"
  in_root apt-get clean
  unmount_all
  tar -C "$part" -cf "$base.part" . && mv "$base.part" "$base"
  rm -rf --one-file-system "$part"
  root=
fi

# ---- the package ------------------------------------------------------------------------------
deb=${EW_DEB:-}
if [ -z "$deb" ]; then
  bash scripts/build-deb.sh >/tmp/edgeway-build-deb.$$.log 2>&1 || { tail -30 /tmp/edgeway-build-deb.$$.log; fail "build-deb.sh"; }
  rm -f /tmp/edgeway-build-deb.$$.log
  deb=$(ls build-deb/"$(dpkg --print-architecture)"/edgeway_*.deb)
fi
[ -f "$deb" ] || fail "no package at $deb"
echo "== package: $deb"

# ---- a fresh root -----------------------------------------------------------------------------
root=$(mktemp -d /var/tmp/edgeway-fresh.XXXX)
tar -C "$root" -xf "$base"
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount_into "$root"
cp "$deb" "$root/tmp/edgeway.deb"

echo "== apt-get install ./edgeway.deb"
in_root apt-get update -qq >"$root.apt.log" 2>&1 || true
in_root apt-get install -y -qq /tmp/edgeway.deb >>"$root.apt.log" 2>&1 || { tail -30 "$root.apt.log"; fail "apt-get install"; }
rm -f "$root.apt.log"

echo "== the installed files"
for f in /usr/bin/edgeway /etc/edgeway/edgeway.ini /lib/systemd/system/edgeway.service /usr/share/man/man8/edgeway.8.gz; do
  [ -f "$root$f" ] || fail "$f is not installed"
  echo "   $f"
done
in_root edgeway --version

echo "== edgeway --check-config /etc/edgeway/edgeway.ini"
set +e
out=$(in_root edgeway --check-config /etc/edgeway/edgeway.ini 2>&1)
rc=$?
set -e
printf '%s\n' "$out" | sed 's/^/   /'
[ "$rc" = 0 ] || fail "--check-config exited $rc"
echo "   exit 0"

echo "== the system user"
pw=$(in_root getent passwd edgeway) || fail "no user edgeway"
echo "   $pw"
uid=$(echo "$pw" | cut -d: -f3)
shell=$(echo "$pw" | cut -d: -f7)
[ "$uid" -lt 1000 ] || fail "edgeway is not a system user (uid $uid)"
case "$shell" in */nologin|/bin/false) ;; *) fail "edgeway has a login shell ($shell)";; esac

echo "== systemd-analyze verify /lib/systemd/system/edgeway.service"
set +e
out=$(in_root systemd-analyze verify /lib/systemd/system/edgeway.service 2>&1)
rc=$?
set -e
[ -z "$out" ] && [ "$rc" = 0 ] || fail "systemd-analyze verify (exit $rc): $out"
echo "   clean (exit 0, no output)"

echo "== systemd-analyze security"
sec=$(in_root systemd-analyze security --offline=true /lib/systemd/system/edgeway.service 2>&1 | tail -n 1)
echo "   $sec"
level=$(echo "$sec" | sed -n 's/.*exposure level for edgeway.service: \([0-9.]*\).*/\1/p')
[ -n "$level" ] || fail "no exposure level in: $sec"
awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }' || fail "exposure $level is above 2.0"

echo "== the INI is a conffile"
in_root dpkg-query -W -f='${Conffiles}\n' edgeway | grep -q '/etc/edgeway/edgeway.ini' || fail "not a conffile"
echo "; changed by the administrator" >>"$root/etc/edgeway/edgeway.ini"
in_root dpkg -i --force-confold /tmp/edgeway.deb >/dev/null 2>&1 || fail "reinstalling the package"
tail -n 1 "$root/etc/edgeway/edgeway.ini" | grep -q 'changed by the administrator' || fail "reinstalling overwrote the changed INI"
echo "   a changed INI survives reinstalling"
in_root apt-get purge -y -qq edgeway >/dev/null 2>&1 || fail "apt-get purge"
[ ! -e "$root/etc/edgeway/edgeway.ini" ] || fail "purge left /etc/edgeway/edgeway.ini"
echo "   purge removes it"
echo "PASS"
