# shellcheck shell=sh
# What every phase of the entrypoint uses: its one-line refusal, its log line, and the address checks.

fail() { echo "memcached-hardened: $*" >&2; exit 78; }
say() { echo "memcached-hardened: $*" >&2; }

is_uint() { case "$1" in '' | *[!0-9]*) return 1 ;; esac; [ "${#1}" -le 9 ]; }
# shellcheck disable=SC2086 # split on the dots, on purpose
is_ipv4() {
  case "$1" in '' | *[!0-9.]* | .* | *. | *..*) return 1 ;; esac
  old_ifs=$IFS; IFS=.; set -- $1; IFS=$old_ifs
  [ "$#" -eq 4 ] || return 1
  for octet in "$@"; do is_uint "$octet" && [ "$octet" -le 255 ] && [ "${#octet}" -le 3 ] || return 1; done
}
is_cidr() {
  case "$1" in
    */*) is_ipv4 "${1%/*}" && is_uint "${1#*/}" && [ "${1#*/}" -le 32 ] ;;
    *) is_ipv4 "$1" ;;
  esac
}
# iproute2 parses IPv6 for us: it refuses anything that is not an IPv6 address or prefix.
is_ipv6_cidr() {
  case "$1" in *:*) ;; *) return 1 ;; esac
  case "$1" in *[!0-9A-Fa-f:/]*) return 1 ;; esac
  ip -6 -o addr show to "$1" >/dev/null 2>&1
}
