#!/usr/bin/env bash
# The long mutation-fuzzing campaign over production-images (tests/it/mutation.rs), with a release binary.
#
# The acceptance criterion: no panic, no hang over 20 s and no use of more than 500 MB in a few hundred mutated
# cases. CI runs a short campaign with a debug binary (`cargo test`); this runs IMGRAPH_FUZZ_CASES (default 400)
# cases with no time budget, then prints the summary: cases, failing runs by kind, max RSS, slowest run, and
# each distinct failure with its trigger and how to replay it. It exits 1 when anything failed.
#
# Usage: benches/fuzz.sh
# Environment: IMGRAPH_FUZZ_CASES (default 400), IMGRAPH_FUZZ_SEED (default: the day number),
# IMGRAPH_FUZZ_OUT (where failing cases are saved; default: a new temp dir), IMGRAPH_FUZZ_CORPUS (default
# ../shared/corpora/production-images beside the repository), IMGRAPH_FUZZ_BUDGET (seconds; default 0, none).
set -euo pipefail
cd "$(dirname "$0")/.."

corpus=${IMGRAPH_FUZZ_CORPUS:-$PWD/../shared/corpora/production-images}
[[ -f $corpus/config.yaml && -d $corpus/images ]] || {
    echo "fuzz.sh: corpus not found: $corpus (set IMGRAPH_FUZZ_CORPUS)" >&2
    exit 2
}
out=${IMGRAPH_FUZZ_OUT:-$(mktemp -d -t imgraph-fuzz-XXXXXX)}
log="$out/campaign.log"
mkdir -p "$out"

echo "== building the release binary and test"
cargo test --release --locked --test integration --no-run

echo "== fuzzing: ${IMGRAPH_FUZZ_CASES:-400} cases; log in $log"
status=0
IMGRAPH_FUZZ_CORPUS=$corpus IMGRAPH_FUZZ_OUT=$out IMGRAPH_FUZZ_CASES=${IMGRAPH_FUZZ_CASES:-400} \
    IMGRAPH_FUZZ_BUDGET=${IMGRAPH_FUZZ_BUDGET:-0} \
    cargo test --release --locked --test integration mutation:: -- --nocapture --test-threads 1 >"$log" 2>&1 ||
    status=$?

# The last summary block: the failure message's when the test failed (it lists each distinct failure).
echo
awk '/^fuzz summary: seed/ { block = ""; on = 1 } on && /^$/ { on = 0 } on { block = block $0 "\n" }
     END { printf "%s", block }' "$log"
grep -E '^test result:' "$log" || { tail -n 30 "$log"; }
exit "$status"
