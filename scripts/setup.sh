#!/usr/bin/env bash
# Installs every Debian package the build, the demo and the tests need.
# Idempotent: packages already present are skipped; `apt-get update` runs at most once
# per invocation and only when something is missing.
set -euo pipefail

PKGS=(
  # build
  build-essential pkg-config clang libclang-dev libdpdk-dev dpdk dpdk-dev libelf-dev
  libpcap-dev libnuma-dev
  # the lab
  iproute2 iputils-ping nftables tcpdump tshark curl procps psmisc openssl ethtool
  frr bird2 nginx-light keepalived haproxy wrk prometheus
  # measurement
  valgrind
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  # Packages' own services (frr, bird, nginx, keepalived, haproxy, prometheus) must not
  # start on the host: the lab starts its own instances inside namespaces.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

# Stop any host instance a package may have started anyway.
for s in frr bird nginx keepalived haproxy prometheus; do
  systemctl stop "$s" >/dev/null 2>&1 || true
done
pkill -x -f '^/usr/sbin/nginx.*' >/dev/null 2>&1 || true

echo "setup: all packages present"
