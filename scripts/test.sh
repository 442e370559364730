#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the real-Docker tests need (only what is missing), then
# runs `cargo test` inside a private, throw-away Docker daemon and registries (scripts/with-test-env.sh).
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
# Build first, outside the environment, so the daemon is up only while tests run.
cargo test --locked --no-run
exec bash scripts/with-test-env.sh cargo test --locked "$@"
