# shellcheck shell=sh
# Phase "options": memcached's options from the environment (-m, -c, -t, -v, -o idle_timeout) on top of
# /etc/memcached.conf, and the per-client connection cap the preloaded guard enforces.

numeric_option() { # flag, variable name, its value, the least value allowed
  [ -n "$3" ] || return 0
  if ! { is_uint "$3" && [ "$3" -ge "$4" ]; }; then fail "$2 must be a whole number >= $4 (got '$3')"; fi
  extra_options="$extra_options $1 $3"
}

# Sets extra_options (plain words, added to the file's options), max_connections, per_client, verbosity.
options_from_environment() { # the -c of /etc/memcached.conf
  extra_options=
  numeric_option -m MEMCACHED_MEMORY_MB "${MEMCACHED_MEMORY_MB:-}" 1
  numeric_option -c MEMCACHED_MAX_CONNECTIONS "${MEMCACHED_MAX_CONNECTIONS:-}" 10
  numeric_option -t MEMCACHED_THREADS "${MEMCACHED_THREADS:-}" 1
  max_connections=${MEMCACHED_MAX_CONNECTIONS:-$1}
  # One client address must not fill -c: SASL starts only after a connection is accepted, so idle
  # unauthenticated connections would lock everyone out. The preloaded guard enforces this cap.
  per_client=$((max_connections / PER_CLIENT_SHARE))
  [ "$per_client" -ge 1 ] || per_client=1
  per_client=${MEMCACHED_MAX_CONNECTIONS_PER_CLIENT:-$per_client}
  if ! { is_uint "$per_client" && [ "$per_client" -ge 1 ] && [ "$per_client" -le "$max_connections" ]; }; then
    fail "MEMCACHED_MAX_CONNECTIONS_PER_CLIENT must be a whole number from 1 to -c ($max_connections)" \
      "(got '$per_client')"
  fi
  [ -e "$MEMCACHED_GUARD" ] \
    || fail "$MEMCACHED_GUARD is missing, so the per-client connection cap cannot be enforced"
  idle_summary=
  if [ -n "${MEMCACHED_IDLE_TIMEOUT:-}" ]; then
    [ "$CAN_IDLE_TIMEOUT" = yes ] || fail "MEMCACHED_IDLE_TIMEOUT: this image's memcached (profile $PROFILE)" \
      "has no idle timeout (-o idle_timeout); unset it"
    if ! { is_uint "$MEMCACHED_IDLE_TIMEOUT" && [ "$MEMCACHED_IDLE_TIMEOUT" -ge 1 ]; }; then
      fail "MEMCACHED_IDLE_TIMEOUT must be a whole number of seconds >= 1 (got '$MEMCACHED_IDLE_TIMEOUT')"
    fi
    extra_options="$extra_options -o idle_timeout=$MEMCACHED_IDLE_TIMEOUT"
    idle_summary=", idle timeout ${MEMCACHED_IDLE_TIMEOUT} s"
  fi
  verbosity=${MEMCACHED_VERBOSITY:-1}
  case "$verbosity" in 0) ;; 1) extra_options="$extra_options -v" ;; 2) extra_options="$extra_options -vv" ;;
    *) fail "MEMCACHED_VERBOSITY must be 0, 1 or 2 (got '$verbosity'; 2 logs every command)" ;; esac
}

# For the start-up line.
options_summary() {
  echo "at most $per_client connection(s) per client address of -c $max_connections$idle_summary"
}
