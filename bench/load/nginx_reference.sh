#!/usr/bin/env bash
# The reference for bench/load/run: Debian's nginx serving 1 KiB over TLS 1.3
# (P-256 certificate and key exchange), one new connection per request,
# driven by wrk. Prints key=value lines:
#   nginx_conn_per_s      completed requests (= new TLS connections) per second
#   nginx_cpu_ms_per_conn nginx's own CPU (all its processes, from /proc) per connection
# Usage: nginx_reference.sh WORK_DIR [SECONDS] [CONNECTIONS]
set -euo pipefail
work=$1
seconds=${2:-10}
conns=${3:-32}
mkdir -p "$work/nginx"
cd "$work/nginx"
openssl ecparam -name prime256v1 -genkey -noout -out key.pem 2>/dev/null
openssl req -new -x509 -key key.pem -out cert.pem -days 2 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
head -c 1024 /dev/urandom | base64 -w0 | head -c 1024 > index.html
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > nginx.conf <<CONF
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
daemon on;
events { worker_connections 4096; }
http {
  access_log off;
  server {
    listen 127.0.0.1:$port ssl;
    ssl_certificate $work/nginx/cert.pem;
    ssl_certificate_key $work/nginx/key.pem;
    ssl_protocols TLSv1.3;
    ssl_ecdh_curve prime256v1;
    ssl_session_tickets off;
    ssl_session_cache off;
    keepalive_timeout 0;
    root $work/nginx;
  }
}
CONF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" -e "$work/nginx/error.log"
trap 'kill "$(cat "$work/nginx/nginx.pid")" 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s nginx.pid ] && break; sleep 0.1; done
sleep 0.3
cpu_ticks() {  # utime+stime of nginx's master and workers
  local total=0 pid
  local master; master=$(cat nginx.pid)
  for pid in "$master" $(pgrep -P "$master" || true); do
    [ -r "/proc/$pid/stat" ] || continue
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}
before=$(cpu_ticks)
out=$(wrk -t2 -c"$conns" -d"${seconds}s" -H "Connection: close" "https://127.0.0.1:$port/index.html" 2>&1)
after=$(cpu_ticks)
requests=$(echo "$out" | awk '/requests in/ {print $1}')
hz=$(getconf CLK_TCK)
python3 - "$requests" "$seconds" "$before" "$after" "$hz" <<'PY'
import sys
req, secs, before, after, hz = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
cpu_ms = (after - before) * 1000.0 / hz
print(f"nginx_conn_per_s={req / secs:.1f}")
print(f"nginx_cpu_ms_per_conn={cpu_ms / max(req, 1):.3f}")
PY
