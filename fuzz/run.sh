#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 120) on stable Rust (no sanitizer), seeded
# from fuzz/seeds/. Needs `cargo install cargo-fuzz`. The targets depend on corral-core
# by path; `.ci/run` builds them as plain binaries so they keep compiling.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-120}
# target:seeds:max_len (manifests are larger, and their check must stay linear in size)
for t in policy_parse:policy:4096 policy_match:match:4096 url_match:url:4096 manifest_check:manifest:65536 config_parse:config:16384 emitted_object:object:16384; do
  IFS=: read -r target seeds max_len <<<"$t"
  mkdir -p "corpus/$target"
  echo "== $target"
  cargo fuzz run -s none "$target" "corpus/$target" "seeds/$seeds" -- \
    -max_total_time="$seconds" -max_len="$max_len" -timeout=10 2>&1 | tail -n 3
done
