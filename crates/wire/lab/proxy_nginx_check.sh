#!/usr/bin/env bash
# Checks PROXY v1 and v2 headers emitted by wire against nginx (the real-server peer):
# nginx in a namespace listens with `proxy_protocol` and answers with the client address
# it read from the header. Usage: proxy_nginx_check.sh PROXY_HEADER_BINARY
# (build it with `cargo build -p wire --example proxy_header`). Needs root; cleans up.
set -euo pipefail
BIN=$(realpath "${1:?path to the proxy_header example}")
N=flab-wire-ng-$$
D=$(mktemp -d)
cleanup() {
  [ -f "$D/nginx.pid" ] && kill "$(cat "$D/nginx.pid")" 2>/dev/null || true
  sleep 0.2
  ip netns del "$N" 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT
ip netns add "$N"
ip -n "$N" link set lo up
cat > "$D/web.conf" <<CFG
daemon on;
pid $D/nginx.pid;
error_log $D/error.log;
events {}
http {
  access_log off;
  client_body_temp_path $D/body; proxy_temp_path $D/proxy; fastcgi_temp_path $D/fcgi;
  uwsgi_temp_path $D/uwsgi; scgi_temp_path $D/scgi;
  server {
    listen [::1]:8080 proxy_protocol;
    listen 127.0.0.1:8080 proxy_protocol;
    location / { return 200 "client=\$proxy_protocol_addr:\$proxy_protocol_port\n"; }
  }
}
CFG
ip netns exec "$N" nginx -p "$D" -c "$D/web.conf" -e "$D/error.log"
sleep 0.3
fail=0
check() { # version src sport dst dport connect-host
  local got
  got=$(ip netns exec "$N" python3 - "$BIN" "$@" <<'PY'
import socket, subprocess, sys
binary, ver, s, sp, d, dp, host = sys.argv[1:]
hdr = subprocess.run([binary, ver, s, sp, d, dp], check=True, capture_output=True).stdout
c = socket.create_connection((host, 8080), timeout=2)
c.sendall(hdr + b"GET / HTTP/1.0\r\n\r\n")
data = b""
while True:
    chunk = c.recv(4096)
    if not chunk: break
    data += chunk
print(data.split(b"\r\n\r\n", 1)[-1].decode().strip())
PY
)
  if [ "$got" = "client=$2:$3" ]; then echo "ok   $1 $2:$3 -> $got"; else echo "FAIL $1 $2:$3 -> $got"; fail=1; fi
}
check v1 203.0.113.7 40000 100.96.122.210 80 127.0.0.1
check v2 203.0.113.7 40001 100.96.122.210 80 127.0.0.1
check v1 2001:db8::7 40002 2001:db8::1 80 ::1
check v2 2001:db8::7 40003 2001:db8::1 80 ::1
exit $fail
