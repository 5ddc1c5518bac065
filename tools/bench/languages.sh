#!/usr/bin/env bash
# Rust vs TypeScript Kandji on the same run (docs/benchmarks.md, "Connectors in
# TypeScript"): component size, the first and the cached start of a process (`corral
# plugin inspect`: load, compile or read back, instantiate, the manifest), and a whole
# `corral run` of each against one simulator (CPU, peak RSS, wall).
#
#   cargo build --release --bin corral
#   (cd plugins/kandji-ts && npm ci) && target/release/corral plugin build plugins/kandji-ts
#   tools/bench/languages.sh [DEVICES]     # default 1000
set -euo pipefail
cd "$(dirname "$0")/../.."
devices="${1:-1000}"
corral="$PWD/target/release/corral"
ts="$PWD/plugins/kandji-ts/dist/kandji-ts.wasm"
work="$(mktemp -d)"
trap 'kill "$sim" 2>/dev/null || true; rm -rf "$work"' EXIT
port=47291

# The Rust component, as the host embeds it, written out for inspect.
mkdir -p "$work/plugins" "$work/inspect"
cp "$ts" "$work/plugins/"
cp "$ts" "$work/inspect/"
rust_wasm="$(ls target/plugins/wasm32-wasip2/release/corral_kandji.wasm 2>/dev/null || true)"
[ -n "$rust_wasm" ] && cp "$rust_wasm" "$work/inspect/kandji.wasm"

measure() { # label, command...: wall s, user+sys s, peak RSS MiB
    local label="$1"; shift
    /usr/bin/time -f "%e %U %S %M" -o "$work/t" "$@" > "$work/out" 2>&1 || { cat "$work/out"; exit 1; }
    read -r wall user sys rss < "$work/t"
    printf '%-34s wall %6.2f s  CPU %6.2f s  RSS %5d MiB\n' "$label" "$wall" "$(echo "$user + $sys" | bc)" "$((rss / 1024))"
}

echo "components: kandji-ts $(stat -c %s "$ts") bytes${rust_wasm:+, kandji $(stat -c %s "$rust_wasm") bytes}"
for wasm in "$work"/inspect/*.wasm; do
    name="$(basename "$wasm" .wasm)"
    export CORRAL_CACHE_DIR="$work/cache-$name"
    measure "$name: first start (compiles)" "$corral" plugin inspect "$wasm"
    measure "$name: cached start" "$corral" plugin inspect "$wasm"
done

"$corral" simulate kandji --port "$port" --devices "$devices" > "$work/sim.log" 2>&1 &
sim=$!
sleep 1
export KANDJI_TOKEN=sim-token CORRAL_CACHE_DIR="$work/cache-run"
for plugin in kandji kandji-ts; do
    # Only kandji-ts comes from plugin_dir (kandji is built in): neither run compiles the other.
    dir_line=""
    [ "$plugin" = kandji-ts ] && dir_line="plugin_dir = \"$work/plugins\""
    cat > "$work/$plugin.toml" <<TOML
$dir_line
data_dir = "$work/state-$plugin"
[[instance]]
id = "bench-$plugin"
name = "bench"
plugin = "$plugin"
[instance.config]
apiUrl = "http://127.0.0.1:$port/api/v1/"
accessToken = { env = "KANDJI_TOKEN" }
TOML
    "$corral" plugin inspect "$plugin" --config "$work/$plugin.toml" > /dev/null  # compiled before the run
    measure "$plugin: corral run, $devices devices" "$corral" run --config "$work/$plugin.toml" --out "$work/out-$plugin"
    grep -E "^bench-" "$work/out" | tail -1
done
