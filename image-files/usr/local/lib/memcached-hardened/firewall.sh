# shellcheck shell=sh
# Phase "firewall": the tutorial's "ufw allow from IP to any port 11211", inside this network namespace.
# Rules go only into a namespace whose filter table holds nothing but this image's own chain (a fresh
# container namespace, or this container's restart): memcached is exec'd, so nothing would remove them,
# and a shared namespace (--network host, --network container:...) is not this container's to change.

CHAIN=MEMCACHED-ALLOW

firewall_apply() { # tool, its family's CIDRs
  "$1" -w -N "$CHAIN" 2>/dev/null || "$1" -w -F "$CHAIN" || return
  for proto in tcp udp; do
    "$1" -w -C INPUT -p "$proto" --dport "$PORT" -j "$CHAIN" 2>/dev/null \
      || "$1" -w -I INPUT -p "$proto" --dport "$PORT" -j "$CHAIN" || return
  done
  "$1" -w -A "$CHAIN" -i lo -j ACCEPT || return
  for cidr in $2; do "$1" -w -A "$CHAIN" -s "$cidr" -j ACCEPT || return; done
  "$1" -w -A "$CHAIN" -j DROP
}
firewall_remove() { # everything firewall_apply adds (the namespace held nothing else)
  for proto in tcp udp; do "$1" -w -D INPUT -p "$proto" --dport "$PORT" -j "$CHAIN" 2>/dev/null || true; done
  "$1" -w -F "$CHAIN" 2>/dev/null || true
  "$1" -w -X "$CHAIN" 2>/dev/null || true
}
# A hardware network interface means the host's namespace (--network host), whatever its firewall shows.
hardware_interface() {
  [ -d /sys/class/net ] || { echo "(cannot tell: no /sys/class/net)"; return; }
  for link in /sys/class/net/*; do
    case "$(readlink -f "$link")" in /sys/devices/virtual/*) ;; *) echo "${link##*/}"; return ;; esac
  done
}

# With MEMCACHED_ALLOW_FROM, only its clients reach the port; sets allow_summary.
firewall_allow() { # the listen addresses
  allow_summary=none
  [ -n "${MEMCACHED_ALLOW_FROM+set}" ] || return 0
  [ -n "$MEMCACHED_ALLOW_FROM" ] || fail "MEMCACHED_ALLOW_FROM is set but empty; name at least one client CIDR"
  cidrs4=
  cidrs6=
  for cidr in $(echo "$MEMCACHED_ALLOW_FROM" | tr ',' ' '); do
    if is_cidr "$cidr"; then cidrs4="$cidrs4 $cidr"
    elif is_ipv6_cidr "$cidr"; then cidrs6="$cidrs6 $cidr"
    else fail "MEMCACHED_ALLOW_FROM: '$cidr' is not an IPv4 or IPv6 address or CIDR"; fi
  done
  # IPv4 is always filtered; IPv6 too when memcached listens on it or IPv6 clients are named.
  tools=iptables
  case "$1$cidrs6" in *:*) tools="iptables ip6tables" ;; esac
  for tool in $tools; do
    rules=$("$tool" -w -S 2>&1) || fail "MEMCACHED_ALLOW_FROM needs $ALLOWLIST_CAP_ADD (without" \
      "no-new-privileges); refusing to start unprotected: $(printf '%s\n' "$rules" | tail -n 1)"
    foreign=$(printf '%s\n' "$rules" \
      | grep -v -x -E -e '-P (INPUT|FORWARD|OUTPUT) ACCEPT' -e "-N $CHAIN" -e "-A $CHAIN .*" \
        -e "-A INPUT -p (tcp|udp) -m (tcp|udp) --dport $PORT -j $CHAIN" | head -n 1)
    [ -z "$foreign" ] || fail "MEMCACHED_ALLOW_FROM: this network namespace has firewall rules this image did" \
      "not write ($tool: '$foreign'), so it is shared (--network host or container:); refusing to add rules" \
      "nothing would remove: give the container its own network, or filter clients outside it"
  done
  hardware=$(hardware_interface)
  [ -z "$hardware" ] || fail "MEMCACHED_ALLOW_FROM: this network namespace has the hardware interface" \
    "$hardware, so it is the host's (--network host); refusing to add rules nothing would remove: give the" \
    "container its own network, or filter clients outside it"
  firewall_error=$(
    for tool in $tools; do
      if [ "$tool" = iptables ]; then
        firewall_apply "$tool" "$cidrs4" || exit
      else
        firewall_apply "$tool" "$cidrs6" || exit
      fi
    done 2>&1 >/dev/null
  ) || {
    reason=$(printf '%s\n' "$firewall_error" | tail -n 1)
    left=
    for tool in $tools; do
      firewall_remove "$tool"
      if "$tool" -w -S 2>/dev/null | grep -q -e "$CHAIN"; then left="${left:+$left }$tool"; fi
    done
    [ -z "$left" ] || fail "MEMCACHED_ALLOW_FROM: the firewall refused a rule, and this image's rules could" \
      "not be taken out again ($left); refusing to start: $reason"
    fail "MEMCACHED_ALLOW_FROM: the firewall refused a rule, so none is left in place; refusing to start" \
      "unprotected: $reason"
  }
  # shellcheck disable=SC2086 # the lists joined into one, on purpose
  allow_summary=$(echo $cidrs4 $cidrs6 | tr ' ' ',')
}

# For the start-up line.
firewall_summary() { echo "allowlist: $allow_summary"; }
