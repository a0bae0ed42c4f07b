#!/usr/bin/env bash
# Captures a real PROXY v2 header (with TLVs) sent by HAProxy, inside a namespace:
# curl -> haproxy :9000 (send-proxy-v2, unique-id TLV) -> python listener :9001 that dumps
# the first bytes it receives, as hex, to OUTDIR/proxy_v2.hex.
# Usage: proxy_v2_capture.sh OUTDIR   (needs root; cleans up also on failure)
set -euo pipefail
OUT=$(realpath "${1:?outdir}")
N=flab-wire-pp-$$
D=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  [ -f "$D/haproxy.pid" ] && kill "$(cat "$D/haproxy.pid")" 2>/dev/null || true
  sleep 0.2
  ip netns del "$N" 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT
ip netns add "$N"
ip -n "$N" link set lo up
cat > "$D/h.cfg" <<CFG
global
  pidfile $D/haproxy.pid
defaults
  mode tcp
  timeout connect 2s
  timeout client 2s
  timeout server 2s
  unique-id-format fulcrum-%ci-%cp
frontend f
  bind 127.0.0.1:9000
  default_backend b
backend b
  server s1 127.0.0.2:9001 send-proxy-v2 proxy-v2-options unique-id,authority
CFG
ip netns exec "$N" python3 -c '
import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.2",9001)); s.listen(1); c,_=s.accept()
import time; time.sleep(0.3); d=c.recv(4096)
open(sys.argv[1],"w").write(d.hex()+"\n")
' "$OUT/proxy_v2.hex" & PIDS+=($!)
sleep 0.5
ip netns exec "$N" haproxy -D -f "$D/h.cfg"
sleep 0.5
ip netns exec "$N" curl -s -m 2 -o /dev/null http://127.0.0.1:9000/ || true
wait "${PIDS[0]}" || true
