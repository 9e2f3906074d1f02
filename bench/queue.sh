#!/usr/bin/env bash
# Benchmark: POST /run -> first event of the run, p50/p99 over 100 releases, cluster (3 workers)
# next to standalone. Usage: bash bench/queue.sh [--releases N] [--workers N]  (as root; needs
# PostgreSQL and Redis on loopback; see bench/README.md)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    target="$CARGO_TARGET_DIR"
else
    target="$(cargo metadata --format-version 1 --no-deps \
        | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
    target="${target:-$PWD/target}"
fi

cargo build --release -p hippo-api -p hippo-worker -p hippo-e2e --bins
HIPPO_BIN="$target/release/hippo-api" exec "$target/release/queue_bench" "$@"
