#!/usr/bin/env bash
# Captures real frames for wire's unit tests: ARP, ICMP echo / port-unreachable /
# time-exceeded / fragmentation-needed, UDP, TCP (with options), PROXY v1.
# Topology: A --veth-- R --veth-- B (R--B has MTU 1000).
# Usage: capture.sh OUTDIR   (needs root; removes everything it made, also on failure)
set -euo pipefail
OUT=${1:?outdir}
mkdir -p "$OUT"
P=flab-wire-$$
A=$P-a; R=$P-r; B=$P-b
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  sleep 0.2
  for n in $A $R $B; do ip netns del "$n" 2>/dev/null || true; done
}
trap cleanup EXIT
for n in $A $R $B; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip link add wa netns $A type veth peer name ra netns $R
ip link add rb netns $R type veth peer name wb netns $B
ip -n $A link set wa address 02:00:00:00:00:0a
ip -n $R link set ra address 02:00:00:00:00:01
ip -n $A addr add 10.99.1.1/24 dev wa; ip -n $R addr add 10.99.1.254/24 dev ra
ip -n $R addr add 10.99.2.254/24 dev rb; ip -n $B addr add 10.99.2.2/24 dev wb
ip -n $R link set rb mtu 1000; ip -n $B link set wb mtu 1000
for d in "$A wa" "$R ra" "$R rb" "$B wb"; do set -- $d; ip -n $1 link set $2 up; done
# veth offloads leave TCP/UDP checksums partial in captures: compute them in software
for d in "$A wa" "$R ra" "$R rb" "$B wb"; do set -- $d; ip netns exec $1 python3 "$(dirname "$0")/txoff.py" $2; done
ip -n $A route add default via 10.99.1.254
ip -n $B route add default via 10.99.2.254
ip netns exec $R sysctl -qw net.ipv4.ip_forward=1
# (no 8021q module in this kernel: 802.1Q test frames are hand-built and checked with tshark)
sleep 1
ip netns exec $A tcpdump -i wa -U -s 0 -w "$OUT/a.pcap" 2>/dev/null & PIDS+=($!)
ip netns exec $B python3 -m http.server 8000 --bind 10.99.2.2 >/dev/null 2>&1 & PIDS+=($!)
sleep 1.5
ip netns exec $A ping -c1 -W1 -s 24 -p 41424344 10.99.2.2 >/dev/null
ip netns exec $A ping -c1 -W1 -t 1 10.99.2.2 >/dev/null || true
ip netns exec $A ping -c1 -W1 -M do -s 1400 10.99.2.2 >/dev/null 2>&1 || true
ip netns exec $A python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("10.99.1.1",40000));s.sendto(b"hello fulcrum\n",("10.99.2.2",9999))'
ip netns exec $A curl -s -o /dev/null http://10.99.2.2:8000/ || true
ip netns exec $A curl -s -o /dev/null --haproxy-protocol http://10.99.2.2:8000/ || true
sleep 1
