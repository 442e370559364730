#!/usr/bin/env bash
# Quick start: `imgraph build examples/`. Uses the Docker engine you have (DOCKER_HOST or the default socket);
# when none answers, installs one if needed and runs the build in a private, throw-away daemon.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
if command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; then
    exec target/release/imgraph build examples/ "$@"
fi
echo "build-examples: no Docker engine reachable; starting a private one for this build" >&2
bash scripts/install-test-deps.sh
exec bash scripts/with-test-env.sh target/release/imgraph build examples/ "$@"
