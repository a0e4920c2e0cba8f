#!/usr/bin/env bash
# The Debian package on a new machine: builds the .deb (scripts/build-deb.sh), installs it with
# apt in a fresh root of this machine's Debian release (debootstrap), and checks there:
#   - edgeway --check-config /etc/edgeway/edgeway.ini exits 0, and --version runs;
#   - the system user "edgeway" exists (no login shell, a system uid);
#   - /etc/edgeway/edgeway.ini is a conffile: a changed one survives reinstalling the package,
#     and purging removes it;
#   - systemd-analyze verify of the installed unit prints nothing and exits 0 (with man-db in the
#     root, so Documentation=man:edgeway(8) is checked too);
#   - systemd-analyze security rates the unit at or below 2.0 (the figure is printed).
#   - booted with systemd-nspawn (-b --register=no --keep-unit) where this machine can: the
#     enabled unit starts and becomes active (READY=1), sends WATCHDOG=1, reloads (RELOADING=1
#     ... READY=1), journalctl -p warning holds no info lines, and systemctl stop exits 0.
#     Where it cannot boot, the test says why and skips only that part.
#
#   bash tests/package/deb_fresh_root.sh        (root; ctest: package.deb_fresh_root)
#
# The base root (debootstrap --variant=minbase of this machine's release, bookworm or trixie, plus
# systemd and man-db, which a Debian machine has) is built once and kept as a tarball outside the clone, in
# ${EW_ROOT_CACHE:-/var/tmp/edgeway-roots}; each run unpacks a pristine copy (a few seconds).
# EW_DEB=path skips building the package. Exits 77 (skipped) without root or debootstrap.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "skipped: needs root (debootstrap, chroot, mounts)"; exit 77; }
command -v debootstrap >/dev/null || { echo "skipped: needs debootstrap (apt-get install debootstrap)"; exit 77; }

fail() { echo "FAIL: $*"; exit 1; }
cache=${EW_ROOT_CACHE:-/var/tmp/edgeway-roots}
# The package is built against this machine's libraries: it is installed on the same release.
release=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
case "$release" in bookworm|trixie) ;; *) fail "unsupported release '$release' (bookworm, trixie)" ;; esac
base=$cache/$release-systemd.tar
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
  debootstrap --variant=minbase "$release" "$part" "$mirror" >"$cache/debootstrap.log" 2>&1 \
    || { rm -rf "$part"; fail "debootstrap failed: see $cache/debootstrap.log"; }
  rm -f "$part/etc/apt/sources.list"
  cat >"$part/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $mirror
Suites: $release $release-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: $release-security
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
  chmod 755 "$part"
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
chmod 755 "$root"  # mktemp made it 0700: the service user could not reach /
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

# ---- boot the root with systemd-nspawn, if this machine can --------------------------------
# --register=no --keep-unit: no machined and no transient scope, so no system bus is needed (its
# absence is what made a plain `systemd-nspawn -b` fail here, "Failed to open system bus").
# The package enabled the unit, so booting starts edgeway; a drop-in shortens WatchdogSec so a
# ping is seen within seconds.
nspawn_check() {
  local pid=$1 leader state i
  for i in $(seq 1 60); do  # the container's init: nspawn's child, once it has forked
    leader=$(ps --ppid "$pid" -o pid=,comm= | awk '$2 == "systemd" {print $1; exit}')
    [ -n "$leader" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  [ -n "$leader" ] || { echo "   no container init process appeared"; return 3; }
  for i in $(seq 1 120); do
    state=$(nsenter -t "$leader" -a systemctl is-system-running 2>/dev/null || true)
    case "$state" in running|degraded) break ;; esac
    sleep 0.5
  done
  case "$state" in running|degraded) ;; *) echo "   the container's systemd did not finish booting (state: ${state:-none})"; return 3 ;; esac
  echo "   booted: systemctl is-system-running = $state"
  sctl() { nsenter -t "$leader" -a systemctl "$@"; }
  prop() { sctl show -p "$1" --value edgeway; }
  for i in $(seq 1 60); do [ "$(prop ActiveState)" = active ] && break; sleep 0.5; done
  [ "$(prop ActiveState)" = active ] || { nsenter -t "$leader" -a journalctl -u edgeway --no-pager | tail -20; fail "edgeway.service is $(prop ActiveState), not active"; }
  # Type=notify: "active" only after READY=1; the status line is edgeway's STATUS=.
  echo "   edgeway.service active (READY=1 received), status \"$(prop StatusText)\", user $(prop User)"
  [ "$(prop StatusText)" = listening ] || fail "status is \"$(prop StatusText)\""
  # systemd stamps the watchdog when the service turns active; each WATCHDOG=1 stamps it anew.
  local start ping
  start=$(prop WatchdogTimestampMonotonic)
  for i in $(seq 1 40); do
    ping=$(prop WatchdogTimestampMonotonic)
    [ "$ping" -gt "$start" ] 2>/dev/null && break
    sleep 0.25
  done
  [ "$ping" -gt "$start" ] 2>/dev/null || fail "no WATCHDOG=1 within 10 s (WatchdogSec=2s)"
  echo "   WATCHDOG=1 received $(( (ping - start) / 1000 )) ms after the service turned active"
  sctl reload edgeway || fail "systemctl reload"
  [ "$(prop StatusText)" = "listening; configuration reloaded" ] || fail "after reload: \"$(prop StatusText)\""
  echo "   systemctl reload: RELOADING=1 ... READY=1, status \"$(prop StatusText)\""
  local warn
  warn=$(nsenter -t "$leader" -a journalctl -u edgeway -p warning -o cat --no-pager | grep -c ' \(warn\|error\) ' || true)
  local info
  info=$(nsenter -t "$leader" -a journalctl -u edgeway -p warning -o cat --no-pager | grep -c ' info ' || true)
  [ "$info" = 0 ] || fail "journalctl -p warning shows info lines"
  echo "   journalctl -u edgeway -p warning: $warn warning/error lines, no info lines"
  sctl stop edgeway
  [ "$(prop Result)" = success ] && [ "$(prop ExecMainStatus)" = 0 ] || fail "stop: $(prop Result), exit $(prop ExecMainStatus)"
  echo "   systemctl stop: exit 0"
  return 0
}
echo "== boot the root with systemd-nspawn"
if ! command -v systemd-nspawn >/dev/null; then
  echo "   not run: systemd-nspawn is not installed (apt-get install systemd-container)"
else
  mkdir -p "$root/etc/systemd/system/edgeway.service.d"
  printf '[Service]\nWatchdogSec=2s\n' >"$root/etc/systemd/system/edgeway.service.d/test.conf"
  unmount_all  # nspawn sets up its own /proc, /sys and /dev
  systemd-nspawn -D "$root" -b --console=pipe --register=no --keep-unit -M "edgeway-test-$$" \
    </dev/null >"$root.nspawn.log" 2>&1 &
  nspawn_pid=$!
  set +e
  (nspawn_check "$nspawn_pid")
  ok=$?
  set -e
  kill "$nspawn_pid" 2>/dev/null || true
  for i in $(seq 1 60); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$nspawn_pid" 2>/dev/null || true
  wait "$nspawn_pid" 2>/dev/null || true
  if [ "$ok" != 0 ]; then
    echo "   nspawn's output:"; sed 's/^/   | /' "$root.nspawn.log" | tail -20
  fi
  rm -f "$root.nspawn.log"
  rm -rf "$root/etc/systemd/system/edgeway.service.d"
  mount_into "$root"
  if [ "$ok" = 3 ]; then
    echo "   not run: systemd-nspawn could not boot this root here (see above)"
  elif [ "$ok" != 0 ]; then
    fail "edgeway under systemd-nspawn (see above)"
  fi
fi

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
