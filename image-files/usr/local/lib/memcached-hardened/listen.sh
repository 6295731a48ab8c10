# shellcheck shell=sh
# Phase "listen": private addresses by default, one chosen address otherwise, never every interface.

# shellcheck disable=SC2086 # split on the dots, on purpose
ipv4_number() { old_ifs=$IFS; IFS=.; set -- $1; IFS=$old_ifs; echo $((($1 << 24) + ($2 << 16) + ($3 << 8) + $4)); }
is_private_ipv4() {
  for range in $PRIVATE_IPV4_RANGES; do
    [ $((($(ipv4_number "$1") ^ $(ipv4_number "${range%/*}")) >> (32 - ${range#*/}))) -ne 0 ] || return 0
  done
  return 1
}
# "address interface" lines: the global IPv4 addresses of one interface, or of all.
global_ipv4() {
  ip -4 -o addr show scope global ${1:+dev "$1"} 2>/dev/null | awk '{ sub(/\/.*/, "", $4); print $4, $2 }'
}
private_ipv4() {
  global_ipv4 "$@" | while read -r address _; do if is_private_ipv4 "$address"; then echo "$address"; fi; done
}
# For refusals: "203.0.113.5 on eth0, ..." (family 4 or 6, optionally one scope).
found_addresses() {
  ip -"$1" -o addr show ${2:+scope "$2"} 2>/dev/null \
    | awk 'BEGIN { s = "none" } { sub(/\/.*/, "", $4); s = (NR == 1 ? "" : s ", ") $4 " on " $2 } END { print s }'
}

# Sets listen_addresses (comma-separated, bare, as the health check and the log take them), listen (the
# same for memcached's -l, which takes an IPv6 address in brackets) and listen_note.
listen_choose() {
  listen=${MEMCACHED_LISTEN:-}
  listen_note=
  case "$listen" in
    '') # Per interface, only its private addresses: a public one (host networking, macvlan/ipvlan, a cloud
        # CNI) is never chosen for the operator.
        listen=$(private_ipv4 | paste -sd, -)
        [ -n "$listen" ] || fail "no private IPv4 address ($PRIVATE_IPV4_RANGES) on any interface," \
          "found: $(found_addresses 4 global); to listen on one of those anyway, set MEMCACHED_LISTEN to it" \
          "(or to its interface)" ;;
    0.0.0.0 | '*' | '::' | '[::]')
      fail "MEMCACHED_LISTEN=$listen would listen on every interface; name one address or interface" ;;
    *:*)
      [ "$CAN_LISTEN_IPV6" = yes ] || fail "MEMCACHED_LISTEN: this image's memcached (profile $PROFILE) cannot" \
        "listen on one IPv6 address; name an IPv4 address or interface"
      listen=${listen#[}; listen=${listen%]}
      case "$listen" in */*) fail "MEMCACHED_LISTEN '$listen' is a prefix; name one IPv6 address" ;; esac
      is_ipv6_cidr "$listen" || fail "MEMCACHED_LISTEN '$listen' is not an IPv6 address"
      scope=$(ip -6 -o addr show to "$listen/128" \
        | awk '{ for (i = 1; i < NF; i++) if ($i == "scope") { print $(i + 1); exit } }')
      case "$scope" in
        '') fail "MEMCACHED_LISTEN $listen is not an address of this container (found: $(found_addresses 6))" ;;
        link) fail "MEMCACHED_LISTEN $listen is link-local (needs an interface scope); name a global or" \
          "unique-local (fc00::/7) address" ;;
        host) ;;
        *) case "$listen" in
             [fF][cCdD][0-9A-Fa-f][0-9A-Fa-f]:*) ;;
             *) listen_note=', a public address chosen by MEMCACHED_LISTEN' ;;
           esac ;;
      esac ;;
    *[!0-9.]*)
      case "$listen" in
        *[!A-Za-z0-9_.-]*) fail "MEMCACHED_LISTEN '$listen' is neither an IP address nor an interface name" ;;
      esac
      interface=$listen
      listen=$(private_ipv4 "$interface" | head -n 1)
      if [ -z "$listen" ]; then
        listen=$(global_ipv4 "$interface" | awk '{ print $1; exit }')
        [ -n "$listen" ] || fail "MEMCACHED_LISTEN: interface '$interface' has no IPv4 address"
        listen_note=", a public address chosen by MEMCACHED_LISTEN=$interface"
      fi ;;
    *)
      is_ipv4 "$listen" || fail "MEMCACHED_LISTEN '$listen' is not a valid IPv4 address"
      case "$listen" in
        127.*) ;;
        *) [ -n "$(ip -4 -o addr show to "$listen/32")" ] || fail "MEMCACHED_LISTEN $listen is not an address" \
             "of this container (found: $(found_addresses 4 global))"
           is_private_ipv4 "$listen" || listen_note=', a public address chosen by MEMCACHED_LISTEN' ;;
      esac ;;
  esac
  listen_addresses=$listen
  case "$listen" in *:*) listen="[$listen]" ;; esac
}

# For the start-up line.
listen_summary() { echo "$listen_addresses port $PORT (TCP only$listen_note)"; }
