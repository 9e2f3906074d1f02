#!/usr/bin/env bash
# Benchmark: Hippo vs plain OpenSSH releasing a 20 MB / 2,000-file tree to 20 hosts.
# Usage: bash bench/release.sh [--runs N] [--hosts N]   (as root; see bench/README.md)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    target="$CARGO_TARGET_DIR"
else
    target="$(cargo metadata --format-version 1 --no-deps \
        | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
    target="${target:-$PWD/target}"
fi

cargo build --release -p hippo-api -p hippo-e2e --bins
HIPPO_BIN="$target/release/hippo-api" exec "$target/release/bench" "$@"
