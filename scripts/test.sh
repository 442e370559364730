#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the real-Docker tests need (only what is missing), then
# runs `cargo test` with a private, throw-away Docker daemon (scripts/with-test-env.sh; the tests start their
# registries themselves), with the real-Docker tests (ignored by a plain `cargo test`) included. Extra arguments go to `cargo test`; those
# after a `--` go to the test binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
# Build first, outside the environment, so the daemon is up only while tests run.
cargo test --locked --no-run
cargo_args=() test_args=(--include-ignored)
for ((i = 1; i <= $#; i++)); do
    if [[ ${!i} == -- ]]; then
        test_args+=("${@:i+1}")
        break
    fi
    cargo_args+=("${!i}")
done
exec bash scripts/with-test-env.sh cargo test --locked "${cargo_args[@]}" -- "${test_args[@]}"
