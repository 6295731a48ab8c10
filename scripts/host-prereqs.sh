#!/usr/bin/env bash
# Installs what building and testing the image need on a Debian/Ubuntu host: debootstrap, the Ubuntu
# archive keyring (so debootstrap can verify xenial's Release signature), and the tools some tests drive
# (docker-compose for the compose example, docker-registry for releases to a loopback registry, skopeo and
# gnupg for the release tests' GPG simple signing and the consumer policy they check, shellcheck for the lint).
# Idempotent: installs only what is missing.
# The keyring comes from Debian's next release through the apt sources this host already has
# configured: no new archive host is named anywhere.
set -euo pipefail
if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0; fi

KEYRING_DIR="${MEMCACHED_HARDENED_CACHE:-$HOME/.cache/memcached-hardened}/keyrings"
KEYRING_SUITE="${UBUNTU_KEYRING_SUITE:-trixie}"

log() { printf '[host-prereqs] %s\n' "$*" >&2; }
need_root() { [ "$(id -u)" = 0 ] || { log "must run as root to install $1"; exit 1; }; }

apt_updated=0
apt_install() {
  need_root "$*"
  if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

command -v debootstrap >/dev/null || { log "installing debootstrap"; apt_install debootstrap; }
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || {
  log "installing debian-archive-keyring"
  apt_install debian-archive-keyring
}
command -v docker-compose >/dev/null || { log "installing docker-compose"; apt_install docker-compose; }
[ -x /usr/bin/docker-registry ] || { log "installing docker-registry"; apt_install docker-registry; }
command -v skopeo >/dev/null || { log "installing skopeo"; apt_install skopeo; }
command -v gpg >/dev/null || { log "installing gnupg"; apt_install gnupg; }
command -v shellcheck >/dev/null || { log "installing shellcheck"; apt_install shellcheck; }
[ -e "/usr/lib/$(gcc -dumpmachine 2>/dev/null)/libc.a" ] || {
  log "installing gcc and libc6-dev (the seccomp probe is a static binary)"
  apt_install gcc libc6-dev
}

# Prints the URIs of the host's Debian main archive, read from its own apt configuration.
debian_archive_uris() {
  {
    grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{ for (i = 2; i <= NF; i++) print $i }' || true
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
      awk '{ for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }'
  } | grep -v -- "-security" | grep -E "/debian/?$" | head -n 1 || true
}

ubuntu_keyring=/usr/share/keyrings/ubuntu-archive-keyring.gpg
if [ ! -s "$ubuntu_keyring" ] && [ ! -s "$KEYRING_DIR/ubuntu-archive-keyring.gpg" ]; then
  uri=$(debian_archive_uris)
  [ -n "$uri" ] || { log "no Debian archive found in this host's apt sources: install ubuntu-keyring by hand"; exit 1; }
  log "fetching ubuntu-keyring from Debian $KEYRING_SUITE (signature-checked by apt)"
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$KEYRING_DIR"
  cat > "$work/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $KEYRING_SUITE main
SRC
  apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=-"
            -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o "APT::Sandbox::User=root")
  apt-get "${apt_opts[@]}" update -qq
  (cd "$work" && apt-get "${apt_opts[@]}" download -qq ubuntu-keyring)
  dpkg-deb -x "$work"/ubuntu-keyring_*.deb "$work/pkg"
  install -m 0644 "$work/pkg/usr/share/keyrings/ubuntu-archive-keyring.gpg" "$KEYRING_DIR/ubuntu-archive-keyring.gpg"
  log "ubuntu archive keyring at $KEYRING_DIR/ubuntu-archive-keyring.gpg"
fi
