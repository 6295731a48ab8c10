#!/usr/bin/env bash
# Makes sure a Docker engine answers: installs Debian's docker.io if there is no engine binary, and starts
# dockerd in the background if nothing answers on DOCKER_HOST (or the default socket). Needs root for both.
set -euo pipefail
if [ "${1:-}" = --help ] || [ "${1:-}" = -h ]; then sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0; fi
log() { printf '[ensure-docker] %s\n' "$*" >&2; }

engine_answers() { timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if command -v docker >/dev/null && engine_answers; then
  log "engine answers ($(docker version --format '{{.Server.Version}}'))"
  exit 0
fi
[ "$(id -u)" = 0 ] || { log "no Docker engine answers and we are not root: start one (or set DOCKER_HOST)"; exit 1; }
if ! command -v dockerd >/dev/null; then
  log "installing docker.io"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    docker.io iptables ca-certificates >/dev/null
fi
log "starting dockerd (log: /var/log/dockerd-ci.log)"
nohup dockerd >/var/log/dockerd-ci.log 2>&1 &
for _ in $(seq 1 60); do
  if engine_answers; then log "engine answers ($(docker version --format '{{.Server.Version}}'))"; exit 0; fi
  sleep 1
done
log "dockerd did not answer within 60 s; last lines of its log:"
tail -n 20 /var/log/dockerd-ci.log >&2
exit 1
