#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs every system package the build and
# the tests need, then runs every check CI runs. Needs root: the lab tests build network
# namespaces and start FRR, BIRD, nginx and DPDK inside them.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "scripts/test.sh: run as root (the lab tests use network namespaces)" >&2
  exit 1
fi

bash scripts/setup.sh

export CARGO_TERM_COLOR=never
step() { printf '\n== %s ==\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked --features dataplane/dpdk -- -D warnings
# the forwarding core must also build on its own, without DPDK
cargo clippy -p dataplane --all-targets --locked -- -D warnings

step "rustdoc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --features dataplane/dpdk

step "fuzz targets build"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo +nightly install cargo-fuzz --locked
fi
(cd fuzz && cargo +nightly fuzz build)

step "cargo test"
# The lab tests clean up after themselves; a sweep of leftovers of an earlier crashed run
# happens inside the harness. Lab tests build FRR/BIRD/nginx topologies in parallel, so the
# thread count stays at the machine's size.
cargo test --workspace --locked --features dataplane/dpdk --no-fail-fast
