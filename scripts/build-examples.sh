#!/usr/bin/env bash
# Quick start: `imgraph build examples/`. Uses the Docker engine you have (DOCKER_HOST or the default socket);
# when none answers, installs one if needed and runs the build in a private, throw-away daemon.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
# `cargo run` finds the binary wherever the target dir is (CARGO_TARGET_DIR, build.target-dir, a --target triple);
# it is built already, so it only runs it (cargo execs it: signals and the exit code are imgraph's own).
imgraph=(cargo run --release --locked --quiet --)
if command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; then
    exec "${imgraph[@]}" build examples/ "$@"
fi
echo "build-examples: no Docker engine reachable; starting a private one for this build" >&2
bash scripts/install-test-deps.sh
exec bash scripts/with-test-env.sh "${imgraph[@]}" build examples/ "$@"
