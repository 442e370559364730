#!/usr/bin/env bash
# Benchmark: a 3-image chain for two platforms (issue 9), against building each platform alone, same run.
#
# a <- b <- c, each `RUN` doing IMGRAPH_BENCH_LOOP iterations of a busybox shell loop (CPU work, which QEMU
# emulates for arm64) and recording `uname -m`; c is verified on each platform by a script that runs it. Base: the
# test busybox for linux/amd64 and linux/arm64, pushed to a loopback registry under one index and listed in
# base_images. Every timed run builds a fresh namespace (nothing cached, nothing already built):
#   * imgraph build, platforms = [linux/amd64, linux/arm64]
#   * imgraph build, platforms = [linux/amd64]
#   * imgraph build, platforms = [linux/arm64]      (under QEMU on an amd64 machine)
# Both platforms proceed independently, so the pair should take about as long as the slower platform alone, not
# the sum of both.
#
# Usage: benches/platforms.sh        (root; starts its own dockerds via scripts/with-test-env.sh)
# Environment: IMGRAPH_BENCH_RUNS (runs per case, default 3), IMGRAPH_BENCH_LOOP (loop iterations per RUN,
# default 30000), and those of benches/lib.sh.
set -euo pipefail
# shellcheck source=benches/lib.sh
source "$(dirname "$0")/lib.sh"
bench_enter "$0" "$@"

RUNS=${IMGRAPH_BENCH_RUNS:-3}
LOOP=${IMGRAPH_BENCH_LOOP:-30000}
AMD64_BASE=${IMGRAPH_TEST_BASE_IMAGE:?not inside the test environment}
ARM64_BASE=${IMGRAPH_TEST_ARM64_BASE_IMAGE:?not inside the test environment}

bench_init platforms
W=$BENCH_TMP
cd "$W"
echo "== platforms: a <- b <- c, RUN a $LOOP-iteration shell loop, FROM an amd64+arm64 busybox index; $RUNS runs each"

# --- the registry and the base index ----------------------------------------------------------------------------
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
REGISTRY=127.0.0.1:$PORT
mkdir -p registry
printf 'version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
    "$W/registry/storage" "$REGISTRY" >registry/config.yml
setsid docker-registry serve registry/config.yml >registry/log 2>&1 </dev/null &
BENCH_PIDS+=($!)
for ((i = 0; i < 100; i++)); do
    curl -sf -o /dev/null "http://$REGISTRY/v2/" && break
    sleep 0.1
done
manifest() { # manifest TAG: "digest size" of REGISTRY/bench/busybox:TAG
    curl -sfI -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
        "http://$REGISTRY/v2/bench/busybox/manifests/$1" |
        awk 'tolower($1) == "docker-content-digest:" {d = $2} tolower($1) == "content-length:" {s = $2}
             END {gsub("\r", "", d); gsub("\r", "", s); print d, s}'
}
for pair in "amd64 $AMD64_BASE" "arm64 $ARM64_BASE"; do
    read -r arch image <<<"$pair"
    docker tag "$image" "$REGISTRY/bench/busybox:$arch"
    docker push -q "$REGISTRY/bench/busybox:$arch" >/dev/null
done
read -r amd64_digest amd64_size <<<"$(manifest amd64)"
read -r arm64_digest arm64_size <<<"$(manifest arm64)"
cat >index.json <<EOF
{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json", "manifests": [
 {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": "$amd64_digest", "size": $amd64_size,
  "platform": {"os": "linux", "architecture": "amd64"}},
 {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": "$arm64_digest", "size": $arm64_size,
  "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}]}
EOF
curl -sf -X PUT -H 'Content-Type: application/vnd.docker.distribution.manifest.list.v2+json' \
    --data-binary @index.json "http://$REGISTRY/v2/bench/busybox/manifests/1" >/dev/null || bdie "cannot put the base index"
BASE="$REGISTRY/bench/busybox:1"

# --- the tree ---------------------------------------------------------------------------------------------------
work="i=0; while [ \$i -lt $LOOP ]; do i=\$((i+1)); done"
for name in a b c; do
    mkdir -p "tree/$name"
    write_changelog "tree/$name" "$name" 1.0
done
printf 'FROM %s\nRUN %s; uname -m > /arch-a\n' "$BASE" "$work" >tree/a/Dockerfile.template
printf 'FROM {{ "a" | image_tag }}\nRUN %s; uname -m > /arch-b\n' "$work" >tree/b/Dockerfile.template
printf 'FROM {{ "b" | image_tag }}\nRUN %s; uname -m > /arch-c\n' "$work" >tree/c/Dockerfile.template
cat >tree/c/test.sh <<'EOF'
#!/bin/sh
set -e
docker run --rm --network none --platform "$IMGRAPH_PLATFORM" "$1" cat /arch-a /arch-b /arch-c
EOF
chmod +x tree/c/test.sh

# One timed build: a fresh namespace, so that nothing is built already.
cat >build.sh <<EOF
#!/bin/bash
set -euo pipefail
ns=run\$(date +%s%N)
printf 'registry = "$REGISTRY"\nnamespace = "%s"\nbase_images = ["$BASE"]\nplatforms = [%s]\n' "\$ns" "\$1" >"$W/tree/images.toml"
"$IMGRAPH" build "$W/tree" --log-dir "$W/logs/\$ns" >"$W/last.out" 2>&1 || { cat "$W/last.out" >&2; exit 1; }
EOF
chmod +x build.sh
./build.sh '"linux/amd64", "linux/arm64"' || bdie "the two-platform build failed"
grep -q aarch64 logs/*/c.linux-arm64.log || bdie "the arm64 image does not run as aarch64"
echo "== checked: both platforms build and verify (c reports x86_64 and aarch64)"

echo
echo "== wall time (fresh namespace each run)"
bench_time "imgraph build, linux/amd64 + linux/arm64" "$RUNS" 0 "$W/build.sh '\"linux/amd64\", \"linux/arm64\"'"
t_both=$BENCH_MEAN
bench_time "imgraph build, linux/amd64 alone" "$RUNS" 0 "$W/build.sh '\"linux/amd64\"'"
t_amd64=$BENCH_MEAN
bench_time "imgraph build, linux/arm64 alone (QEMU)" "$RUNS" 0 "$W/build.sh '\"linux/arm64\"'"
t_arm64=$BENCH_MEAN
echo
echo "both / slower alone: $(ratio "$t_both" "$(python3 -c 'import sys; print(max(map(float, sys.argv[1:])))' "$t_amd64" "$t_arm64")")x;" \
    "both / sum of each alone: $(ratio "$t_both" "$(python3 -c 'import sys; print(sum(map(float, sys.argv[1:])))' "$t_amd64" "$t_arm64")")x"
