# shellcheck shell=sh source-path=SCRIPTDIR
# Phase "credentials": memcached's SASL realm is gethostname(), so the users are keyed to this hostname at
# every start, into a sasldb under /run/memcached: the baked ones re-keyed from the image's sasldb, or
# (runtime credentials) the ones of a mounted users file or of MEMCACHED_USERNAME.

RUNTIME_SASLDB=$RUN_DIR/memcached-sasldb2
DEFAULT_USERS_SECRET=/run/secrets/memcached_users

# Adds one valid user; the password reaches saslpasswd2 through a pipe, never argv, and is never echoed.
add_user() {
  printf '%s' "$2" | saslpasswd2 -p -c -a memcached -u "$realm" -f "$RUNTIME_SASLDB" "$1" \
    || fail "saslpasswd2 could not add user '$1'"
}

# Sets realm, credentials (baked or runtime) and users (how many the sasldb holds for the realm).
credentials_load() {
  realm=$(hostname)
  case "$realm" in
    '' | *[!A-Za-z0-9.-]*) fail "hostname '$realm' cannot serve as the SASL realm (letters, digits, dots, dashes)" ;;
  esac
  umask 077
  mkdir -p "$RUN_DIR" || fail "cannot create $RUN_DIR (with --read-only, mount a tmpfs there)"
  rm -f "$RUNTIME_SASLDB"

  # The users-file rules, the CLI's own (src/credentials.ts).
  # shellcheck source=credential-rules.sh
  . "$LIB/credential-rules.sh"

  if [ -e "$BAKED_SASLDB" ]; then
    credentials=baked
    [ -r "$BAKED_SASLDB" ] || fail "no readable sasldb at $BAKED_SASLDB"
    db5.3_dump -p "$BAKED_SASLDB" | sed "s/\\\\00$BUILD_REALM\\\\00/\\\\00$realm\\\\00/g" \
      | db5.3_load "$RUNTIME_SASLDB" || fail "could not write the sasldb for realm '$realm' to $RUNTIME_SASLDB"
  else
    credentials=runtime
    users_file=${MEMCACHED_USERS_FILE:-}
    [ -n "$users_file" ] || [ ! -e "$DEFAULT_USERS_SECRET" ] || users_file=$DEFAULT_USERS_SECRET
    if [ -n "$users_file" ]; then
      [ -r "$users_file" ] || fail "users file $users_file is missing or not readable by uid $(id -u)"
      # Every line is checked before the first user is added: a bad file adds nobody.
      problem=$(users_file_problem "$users_file")
      [ -z "$problem" ] || fail "users file $users_file$problem"
      users_file_each "$users_file" add_user
    elif [ -n "${MEMCACHED_USERNAME:-}" ]; then
      if [ -n "${MEMCACHED_PASSWORD_FILE:-}" ]; then
        [ -r "$MEMCACHED_PASSWORD_FILE" ] \
          || fail "MEMCACHED_PASSWORD_FILE $MEMCACHED_PASSWORD_FILE is missing or not readable"
        password=$(cat "$MEMCACHED_PASSWORD_FILE")
      else
        password=${MEMCACHED_PASSWORD:-}
      fi
      [ -n "$password" ] || fail "MEMCACHED_USERNAME needs MEMCACHED_PASSWORD_FILE (or MEMCACHED_PASSWORD)"
      problem=$(credential_problem "$MEMCACHED_USERNAME" "$password")
      [ -z "$problem" ] || fail "MEMCACHED_USERNAME: $problem"
      add_user "$MEMCACHED_USERNAME" "$password"
      unset password
    else
      fail "no credentials: mount a users file at $DEFAULT_USERS_SECRET (or set MEMCACHED_USERS_FILE), or set" \
        "MEMCACHED_USERNAME with MEMCACHED_PASSWORD_FILE"
    fi
  fi
  users=$(db5.3_dump -p "$RUNTIME_SASLDB" 2>/dev/null | grep -c "\\\\00$realm\\\\00userPassword\$" || true)
  [ "$users" -gt 0 ] || fail "the sasldb holds no users for realm '$realm'"
}

# For the start-up line.
credentials_summary() { echo "SASL realm '$realm' with $users $credentials user(s)"; }
