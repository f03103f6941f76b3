#!/usr/bin/env bash
# Starts/stops a private docker-registry (Debian's docker-registry) on 127.0.0.1 for tests and benchmarks.
#   image-registry.sh start DIR [HTPASSWD]   → prints the port; PID in DIR/pid, storage in DIR/data
#   image-registry.sh stop DIR               → kills the PID it started (never by name)
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?DIR}
case "$cmd" in
start)
  mkdir -p "$dir/data"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  {
    echo "version: 0.1"
    echo "log: {level: error, accesslog: {disabled: true}}"
    echo "storage: {filesystem: {rootdirectory: $dir/data}, delete: {enabled: true}}"
    echo "http: {addr: 127.0.0.1:$port}"
    if [ -n "${3:-}" ]; then echo "auth: {htpasswd: {realm: berth-test, path: $3}}"; fi
  } > "$dir/config.yml"
  docker-registry serve "$dir/config.yml" > "$dir/log" 2>&1 &
  echo $! > "$dir/pid"
  for _ in $(seq 100); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null; then echo "$port"; exit 0; fi
    sleep 0.05
  done
  echo "registry did not start: $(cat "$dir/log")" >&2; exit 1 ;;
stop)
  if [ -f "$dir/pid" ]; then kill "$(cat "$dir/pid")" 2>/dev/null || true; rm -f "$dir/pid"; fi ;;
esac
