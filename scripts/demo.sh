#!/usr/bin/env bash
# The README's demo command: builds Fulcrum and brings up the seed-000 "scenario two"
# topology (an upstream OSPF router, two load-balancer nodes running fulcrumd in DPDK mode
# and announcing the VIP with ECMP, real servers, a client two hops away) in network
# namespaces on this machine, then shows its state. `scripts/demo.sh down` removes
# everything it made.
#
#   scripts/demo.sh [up|status|down] [SCENARIO] [BALANCER]
#   SCENARIO: two (default), one, nat, dr
#   BALANCER: fulcrum (default), nft, haproxy, haproxy-pp (the reference stand-ins)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "scripts/demo.sh: run as root (the lab uses network namespaces)" >&2
  exit 1
fi

action=${1:-up}
scenario=${2:-two}
balancer=${3:-fulcrum}

case "$action" in
  up|status|down) ;;
  *)
    echo "usage: scripts/demo.sh [up|status|down] [SCENARIO] [BALANCER]" >&2
    exit 2
    ;;
esac

bash scripts/setup.sh >/dev/null
# fulcrum-lab finds fulcrumd and fulcrum next to itself (target/release/).
cargo build --release --locked -q -p integration -p appliance --bins
lab=${CARGO_TARGET_DIR:-target}/release/fulcrum-lab

case "$action" in
  up)
    "$lab" up "$scenario" --lb "$balancer"
    "$lab" status "$scenario"
    echo
    echo "Remove it all with: scripts/demo.sh down $scenario"
    ;;
  status|down)
    "$lab" "$action" "$scenario"
    ;;
esac
