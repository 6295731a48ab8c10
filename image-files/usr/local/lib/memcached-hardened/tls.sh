# shellcheck shell=sh
# Phase "TLS" (images built with --tls): certificate and key from a mounted secret, never from the image.
# The listen address then speaks only TLS 1.2 or newer (memcached's own, or the front's); memcached's
# plaintext listener is on 127.0.0.1 only (for the front and the health check); SASL is required on both.
# Everything is checked before anything listens or any firewall rule is added.

# The TLS 1.2 suites of the front and of memcached's own TLS: forward secrecy (ECDHE) and AEAD only, RSA or
# ECDSA keys (TLS 1.3's suites all have both). The TLS policy scan holds the port to this.
TLS12_CIPHERS='ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL'

# Sets tls (on or off) and, when on, tls_cert, tls_key and tls_ca (empty: no client certificates).
tls_check() { # the listen addresses
  tls=off
  tls_cert='' tls_key='' tls_ca=''
  [ -e "$TLS_MARKER" ] || return 0
  tls=on
  case "$1" in
    127.* | ::1) fail "MEMCACHED_LISTEN=$1: with TLS, loopback carries memcached's own plaintext listener;" \
      "name another address or interface" ;;
  esac
  tls_cert=${MEMCACHED_TLS_CERT_FILE:-$TLS_DEFAULT_CERT}
  tls_key=${MEMCACHED_TLS_KEY_FILE:-$TLS_DEFAULT_KEY}
  # A CA file turns on mutual TLS: clients must present a certificate it signed.
  tls_ca=${MEMCACHED_TLS_CA_FILE:-}
  [ -n "$tls_ca" ] || [ ! -e "$TLS_DEFAULT_CA" ] || tls_ca=$TLS_DEFAULT_CA
  for file in "$tls_cert" "$tls_key" ${tls_ca:+"$tls_ca"}; do
    # The paths go into memcached's -o list and the front's configuration.
    case "$file" in *[!A-Za-z0-9._/-]*) fail "TLS: the path '$file' may hold only letters, digits and . _ - /" ;; esac
    if ! { [ -f "$file" ] && [ -r "$file" ]; }; then
      fail "TLS: $file is missing or not readable by uid $(id -u); mount the certificate secret" \
        "(${TLS_DEFAULT_CERT##*/}, ${TLS_DEFAULT_KEY##*/}, optional ${TLS_DEFAULT_CA##*/}) at $TLS_SECRET," \
        "or name the files with MEMCACHED_TLS_CERT_FILE, MEMCACHED_TLS_KEY_FILE, MEMCACHED_TLS_CA_FILE"
    fi
  done
  # openssl reads the key from its file (never argv, never the log); only public keys are compared.
  certificate_public=$(openssl x509 -in "$tls_cert" -noout -pubkey 2>/dev/null) \
    || fail "TLS: $tls_cert is not a PEM certificate"
  openssl x509 -in "$tls_cert" -noout -checkend 0 >/dev/null 2>&1 || fail "TLS: the certificate $tls_cert has expired"
  key_public=$(openssl pkey -in "$tls_key" -passin pass: -pubout 2>/dev/null </dev/null) \
    || fail "TLS: $tls_key is not an unencrypted PEM private key"
  [ "$certificate_public" = "$key_public" ] || fail "TLS: the key $tls_key does not belong to the certificate $tls_cert"
  [ -z "$tls_ca" ] || openssl x509 -in "$tls_ca" -noout >/dev/null 2>&1 || fail "TLS: $tls_ca is not a PEM certificate"
}

# For the start-up line (nothing without TLS).
tls_summary() {
  [ "$tls" = on ] || return 0
  echo ", TLS 1.2+ only${tls_ca:+ with client certificates signed by $tls_ca}"
}

# memcached's own TLS (-Z): its -o list.
tls_memcached_options() {
  printf '%s' "ssl_chain_cert=$tls_cert,ssl_key=$tls_key,ssl_min_version=2,ssl_ciphers=$TLS12_CIPHERS"
  echo "${tls_ca:+,ssl_ca_cert=$tls_ca,ssl_verify_mode=2}"
}

# The TLS front (TLS on a profile whose memcached has none): stunnel on the listen address, memcached
# behind it on 127.0.0.1. The front carries the per-client cap (the guard is preloaded into it too);
# memcached's only clients are then local (the front, the health check), so it gets no cap of its own.
# This shell stays PID 1: it passes SIGTERM/SIGINT to both and, when either ends, stops the other and
# exits with memcached's status after a signal, else with the status of the one that ended (never 0).
tls_run_behind_front() { # verbosity, listen addresses, per-client cap, then memcached's options
  front_verbosity=$1 front_addresses=$2 front_cap=$3
  shift 3
  conf=$RUN_DIR/stunnel.conf
  # Quiet by default (start-up failures are printed at any level): to stunnel every aborted handshake (the
  # health check's probe, any scanner) and every refused connection is an error line of its own, where
  # the guard logs one line per episode. MEMCACHED_VERBOSITY=2 logs each connection and each failure.
  front_debug=2
  [ "$front_verbosity" != 2 ] || front_debug=5
  {
    printf '%s\n' 'foreground = yes' 'pid =' 'syslog = no' "debug = $front_debug"
    service=0
    for address in $(echo "$front_addresses" | tr ',' ' '); do
      service=$((service + 1))
      printf '%s\n' "[memcached-$service]" "debug = $front_debug" "accept = $address:$PORT" \
        "connect = 127.0.0.1:$PORT" "cert = $tls_cert" "key = $tls_key" 'sslVersion = TLSv1.2' \
        "ciphers = $TLS12_CIPHERS"
      if [ -n "$tls_ca" ]; then printf '%s\n' "CAfile = $tls_ca" 'verify = 2'; fi
    done
  } > "$conf"
  # Every start and end of a child is reported on one pipe, so no end can slip between two checks.
  rm -f "$RUN_DIR/children"
  mkfifo -m 0600 "$RUN_DIR/children"
  exec 3<>"$RUN_DIR/children"
  rm -f "$RUN_DIR/children"
  # The child reports its own pid, and is waited for in the foreground: dash's `wait` also returns when a
  # child is merely stopped (SIGSTOP).
  start_child() { # name command...
    ( name=$1; shift; status=0
      sh -c 'echo "started $0 $$" >&3; exec "$@" 3>&-' "$name" "$@" || status=$?
      echo "ended $name $status" >&3 ) &
  }
  pids=
  stopping=
  # shellcheck disable=SC2086 # one word per pid, on purpose
  stop_children() { [ -z "$pids" ] || kill -TERM $pids 2>/dev/null || true; }
  trap 'stopping=yes; stop_children' TERM INT
  start_child memcached env -u MEMCACHED_MAX_CONNECTIONS_PER_CLIENT LD_PRELOAD="$MEMCACHED_GUARD" \
    memcached "$@" -l 127.0.0.1
  start_child "$TLS_VIA" env LD_PRELOAD="$MEMCACHED_GUARD" MEMCACHED_MAX_CONNECTIONS_PER_CLIENT="$front_cap" \
    "$TLS_VIA" "$conf"
  running=2
  first=
  memcached_status=1
  while [ "$running" -gt 0 ]; do
    read -r event name value <&3 || continue # a signal interrupts read; its trap has run
    case "$event" in
      started) pids="$pids $value"; [ -z "$stopping" ] || stop_children ;;
      ended)
        running=$((running - 1))
        [ "$name" != memcached ] || memcached_status=$value
        if [ -z "$first" ]; then
          first=$value
          [ -n "$stopping" ] || say "$name exited with status $value; stopping the rest"
          stop_children
        fi ;;
    esac
  done
  [ -z "$stopping" ] || exit "$memcached_status"
  [ "$first" -ne 0 ] || first=1
  exit "$first"
}
