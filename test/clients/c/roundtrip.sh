#!/bin/sh
# libmemcached's own tools (memccp, memccat), as an operator would script them. The verdict is the value
# memccat prints, not an exit status (1.0.18's tools exit 0 when authentication fails). They take the
# password only as an option: it reaches this script through the environment and is in their argv only
# inside this container.
set -u
address=$1 key=$2 value=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# memccp stores a file under its base name.
printf '%s' "$value" >"$dir/$key"
memccp --binary --servers="$address" --username="$MEMCACHED_USERNAME" --password="$MEMCACHED_PASSWORD" \
  "$dir/$key" 2>"$dir/errors"
got=$(memccat --binary --servers="$address" --username="$MEMCACHED_USERNAME" --password="$MEMCACHED_PASSWORD" \
  "$key" 2>>"$dir/errors")
if [ "$got" = "$value" ]; then
  echo "ROUNDTRIP ok $got"
else
  echo "ROUNDTRIP failed: read back '$got'; $(tr '\n' ' ' <"$dir/errors")"
  exit 1
fi
