#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 120) on stable Rust (no sanitizer), seeded
# from fuzz/seeds/. Needs `cargo install cargo-fuzz`.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-120}
for t in policy_parse:policy policy_match:match config_parse:config; do
  target=${t%%:*}; seeds=${t##*:}
  mkdir -p "corpus/$target"
  cargo fuzz run -s none "$target" "corpus/$target" "seeds/$seeds" -- -max_total_time="$seconds" -max_len=4096 2>&1 | tail -n 3
done
