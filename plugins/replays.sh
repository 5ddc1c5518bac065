#!/usr/bin/env bash
# Records each first-party connector's replay test again from its simulator and rewrites
# its snapshot: run it after a change meant to alter a connector's requests or graph,
# then review the diff of plugins/*/tests/replay/ before committing it.
#   plugins/replays.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --bin corral
corral=target/debug/corral
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
simulate() { # provider port size
    "$corral" simulate "$1" --port "$2" --devices "$3" --token sim-token > /dev/null &
    pids+=($!)
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$2") 2> /dev/null && return
        sleep 0.1
    done
    echo "the $1 simulator did not start on port $2" >&2
    exit 1
}
simulate kandji 47101 10
simulate sentinelone 47102 20
simulate runzero 47103 12
simulate circleci 47104 3
export KANDJI_TOKEN=sim-token SENTINELONE_TOKEN=sim-token RUNZERO_TOKEN=sim-token CIRCLECI_TOKEN=sim-token
for p in kandji sentinelone runzero circleci; do
    dir=plugins/$p/tests/replay
    rm -rf "$dir/recordings" "target/replay-state/$p"
    "$corral" run --config "$dir/corral-test.toml" --record "$dir/recordings" \
        --out "target/replay-state/$p/out" > /dev/null
    "$corral" plugin test "$dir" --update
done
