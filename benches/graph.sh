#!/usr/bin/env bash
# Benchmark: `imgraph graph` on a synthetic tree of N images (default 10,000), release build.
# Prints wall time and peak RSS of each of 5 runs (GNU time), after one warm-up run.
# Usage: benches/graph.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-10000}"
tree="$(mktemp -d)"
trap 'rm -rf "$tree"' EXIT
python3 benches/gen-tree.py "$count" "$tree"
# shellcheck source=benches/lib.sh
source benches/lib.sh
bin=$(bench_build)
"$bin" graph "$tree" --format json >/dev/null
for run in 1 2 3 4 5; do
    /usr/bin/time -f "run $run: %e s wall, %U s user, %S s sys, %M KB peak RSS" "$bin" graph "$tree" --format json >/dev/null
done
