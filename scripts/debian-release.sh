# Which Debian release this is, and the package names that differ between the releases
# edgeway supports (sourced by the scripts in scripts/, not run).
#   EW_RELEASE       bookworm | trixie (/etc/os-release VERSION_CODENAME)
#   EW_LLHTTP_PKG    node-llhttp (bookworm: ships llhttp's C sources) | libllhttp-dev (trixie)
#   EW_CLANG         the clang version the release has (14 | 19)
EW_RELEASE=$( . /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
case "$EW_RELEASE" in
  bookworm) EW_LLHTTP_PKG=node-llhttp EW_CLANG=14 ;;
  trixie) EW_LLHTTP_PKG=libllhttp-dev EW_CLANG=19 ;;
  *)
    echo "unsupported release '${EW_RELEASE:-unknown}' (/etc/os-release): edgeway supports Debian 12 (bookworm) and 13 (trixie)" >&2
    exit 2
    ;;
esac

# ew_apt_install PKG...: installs the packages that are missing (root).
ew_apt_install() {
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "== installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || echo "warning: apt-get update reported errors; installing anyway"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# The Debian archive this machine's apt uses (deb822 sources, or the classic list).
ew_apt_mirror() {
  local m
  m=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
  [ -n "$m" ] || m=$(awk '$1=="deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  [ -n "$m" ] || m=http://deb.debian.org/debian
  echo "$m"
}
