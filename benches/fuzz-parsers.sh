#!/usr/bin/env bash
# Fuzzing campaign for every parser imgraph wrote: the property tests of `src/fuzz.rs` and each parser's
# `fuzz` test module (changelog, control, template escapes and rendering, Dockerfile references, Docker
# references, Debian versions, config loading, .dockerignore), run on many cases in a release build.
# `cargo test` runs the same properties on 256 cases each.
# Usage: benches/fuzz-parsers.sh [CASES_PER_PROPERTY]   (default 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
cases="${1:-20000}"
start=$SECONDS
PROPTEST_CASES="$cases" cargo test --release --locked --lib fuzz -- --test-threads 2
echo "fuzz-parsers: $cases cases per property, $((SECONDS - start)) s (build included)"
