#!/usr/bin/env bash
# Benchmark: GET /api/releases with 10,000 releases stored (pages, filters, a user whose
# permissions filter the list), next to GET /api/environments. Usage: bash bench/list.sh
# (as root; like the tests it starts one sshd host; HIPPO_E2E_POSTGRES=postgres://… to measure
# on PostgreSQL). HIPPO_BENCH_DEBUG=1 uses the debug build.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    target="$CARGO_TARGET_DIR"
else
    target="$(cargo metadata --format-version 1 --no-deps \
        | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
    target="${target:-$PWD/target}"
fi
if [ -n "${HIPPO_BENCH_DEBUG:-}" ]; then
    cargo build -p hippo-api -p hippo-worker -p hippo-e2e --bins
    HIPPO_BIN="$target/debug/hippo-api" exec "$target/debug/list_bench" "$@"
fi
cargo build --release -p hippo-api -p hippo-worker -p hippo-e2e --bins
HIPPO_BIN="$target/release/hippo-api" exec "$target/release/list_bench" "$@"
