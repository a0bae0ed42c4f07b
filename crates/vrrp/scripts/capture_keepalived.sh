#!/bin/bash
# Captures keepalived's VRRP adverts in a throw-away network namespace and prints them as
# `tcpdump -xx` hex (Ethernet frame included). This is how the byte arrays in
# src/wire.rs were obtained (keepalived 2.2.7, Debian 12).
#
# usage: capture_keepalived.sh 2|3     (2: VRRPv2 with auth_type PASS; 3: VRRPv3, 1.5 s)
# Needs root, iproute2, tcpdump, keepalived. Removes its namespace, processes and files on
# exit, also on failure.
set -u
V=${1:?version 2 or 3}
NS=flab-vrrp-$$
D=$(mktemp -d /tmp/flab-vrrp-cap.XXXXXX)
TD=
cleanup() {
  for f in "$D/ka.pid" "$D/vrrp.pid"; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  [ -n "$TD" ] && kill "$TD" 2>/dev/null
  sleep 0.3
  for f in "$D/ka.pid" "$D/vrrp.pid"; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
  ip netns del "$NS" 2>/dev/null
  rm -rf "$D"
}
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link add va type veth peer name vb
ip -n "$NS" addr add 10.99.0.1/24 dev va
ip -n "$NS" link set va up; ip -n "$NS" link set vb up; ip -n "$NS" link set lo up
if [ "$V" = 2 ]; then
  AUTH='authentication {
        auth_type PASS
        auth_pass s3cr3t
    }'
  ADV="advert_int 1"
else
  AUTH=""
  ADV="advert_int 1.5"
fi
cat > "$D/k.conf" <<C
global_defs {
  router_id flab
  vrrp_version $V
}
vrrp_instance VI_1 {
    state MASTER
    interface va
    virtual_router_id 51
    priority 150
    $ADV
    $AUTH
    virtual_ipaddress {
        10.99.0.100
        10.99.0.101
    }
}
C
# keepalived starts in BACKUP, becomes MASTER after Master_Down_Interval, and sends
# priority 0 when timeout stops it.
ip netns exec "$NS" timeout 10 tcpdump -n -xx -i va proto 112 > "$D/out.txt" 2>/dev/null &
TD=$!
sleep 0.5
ip netns exec "$NS" timeout 8 keepalived -n -l -D -f "$D/k.conf" -p "$D/ka.pid" \
  -r "$D/vrrp.pid" -c "$D/chk.pid" --vrrp > "$D/ka.log" 2>&1 &
wait "$TD"
TD=
cat "$D/out.txt"
