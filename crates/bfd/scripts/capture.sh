#!/usr/bin/env bash
# Capture real BFD control packets for the codec tests in crates/bfd.
#
# Two namespaces flab-bfd-<pid>-a / -b joined by a veth (eth0 on both sides):
#   1. FRR bfdd on both sides, static peer, no auth; the run ends with side a going
#      AdminDown (`shutdown`) so an AdminDown packet is captured too.
#   2. BIRD 2 on both sides with keyed SHA1 / meticulous keyed MD5 / simple password auth.
# Writes tcpdump -xx text to OUT (default /tmp/bfd-capture). Needs root, frr, bird2,
# tcpdump. Everything it creates is removed on exit, also on failure.
set -euo pipefail
OUT=${1:-/tmp/bfd-capture}
P=$$
A=flab-bfd-$P-a
B=flab-bfd-$P-b
W=$(mktemp -d /tmp/flab-bfd-$P.XXXX); chmod 755 "$W"
mkdir -p "$OUT"
PIDS=()
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for f in "$W"/*/run/*.pid "$W"/*/bird.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  sleep 0.3
  ip netns del "$A" 2>/dev/null
  ip netns del "$B" 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT INT TERM

ip netns add "$A"; ip netns add "$B"
ip link add eth0 netns "$A" type veth peer name eth0 netns "$B"
ip -n "$A" addr add 10.0.0.1/24 dev eth0; ip -n "$B" addr add 10.0.0.2/24 dev eth0
for n in "$A" "$B"; do ip -n "$n" link set lo up; ip -n "$n" link set eth0 up; done

frr_start() { # ns dir peer
  local ns=$1 d=$2 peer=$3
  mkdir -p "$d/run"
  printf 'hostname %s\n!\n' "$ns" > "$d/zebra.conf"
  printf 'bfd\n peer %s interface eth0\n  receive-interval 300\n  transmit-interval 300\n !\n!\n' "$peer" > "$d/bfdd.conf"
  chown -R frr:frr "$d"
  for x in zebra bfdd; do
    ip netns exec "$ns" /usr/lib/frr/$x -d -f "$d/$x.conf" -i "$d/run/$x.pid" \
      -z "$d/run/zserv.api" --vty_socket "$d/run" -P 0 \
      $([ $x = bfdd ] && echo --bfdctl "$d/run/bfdd.sock")
    sleep 0.3
  done
}

# --- 1. FRR <-> FRR --------------------------------------------------------------
ip netns exec "$A" tcpdump -n -xx -l -i eth0 udp port 3784 > "$OUT/frr.txt" 2>/dev/null &
PIDS+=($!)
sleep 0.5
frr_start "$A" "$W/fa" 10.0.0.2
frr_start "$B" "$W/fb" 10.0.0.1
sleep 4
vtysh --vty_socket "$W/fa/run" -c 'show bfd peers' > "$OUT/frr-show.txt" || true
vtysh --vty_socket "$W/fa/run" -c 'configure terminal' -c 'bfd' \
  -c 'peer 10.0.0.2 interface eth0' -c 'shutdown' >/dev/null || true
sleep 2
for f in "$W"/f?/run/*.pid; do kill "$(cat "$f")" 2>/dev/null || true; done
sleep 0.5
kill "${PIDS[0]}" 2>/dev/null || true

# --- 2. BIRD <-> BIRD with auth -----------------------------------------------------
bird_start() { # ns dir peer auth
  local ns=$1 d=$2 peer=$3 auth=$4
  mkdir -p "$d"
  cat > "$d/bird.conf" <<CONF
router id $( [ "$peer" = 10.0.0.2 ] && echo 10.0.0.1 || echo 10.0.0.2 );
protocol device {}
protocol bfd {
  interface "eth0" {
    interval 300 ms;
    multiplier 3;
    authentication $auth;
    password "fulcrum-bfd" { id 7; };
  };
  neighbor $peer dev "eth0";
}
CONF
  ip netns exec "$ns" bird -c "$d/bird.conf" -s "$d/bird.ctl" -P "$d/bird.pid"
}
for auth in "keyed sha1" "meticulous keyed md5" "simple"; do
  tag=${auth// /-}
  ip netns exec "$A" tcpdump -n -xx -l -i eth0 udp port 3784 > "$OUT/bird-$tag.txt" 2>/dev/null &
  tp=$!
  sleep 0.5
  bird_start "$A" "$W/ba" 10.0.0.2 "$auth"
  bird_start "$B" "$W/bb" 10.0.0.1 "$auth"
  sleep 3
  birdc -s "$W/ba/bird.ctl" show bfd sessions > "$OUT/bird-$tag-show.txt" || true
  kill "$(cat "$W/ba/bird.pid")" "$(cat "$W/bb/bird.pid")" 2>/dev/null || true
  sleep 0.5
  kill "$tp" 2>/dev/null || true
  wait "$tp" 2>/dev/null || true
  rm -rf "$W/ba" "$W/bb"
done
echo "captured into $OUT"
