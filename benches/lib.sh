# shellcheck shell=bash
# Helpers shared by benches/noop.sh, benches/makespan.sh and benches/context.sh (sourced, not run); benches/graph.sh
# uses only bench_build.
#
# Each benchmark script:
#   1. outside the test environment: installs the test dependencies (scripts/install-test-deps.sh), builds
#      imgraph (cargo build --release --locked) and re-runs itself inside scripts/with-test-env.sh (private
#      dockerd, DOCKER_HOST exported, base image imgraph-test/busybox:1; a benchmark that needs a registry
#      starts its own, as benches/noop.sh does);
#   2. inside it: copies the binary to a temp dir (other people may rebuild the target dir meanwhile), makes the
#      docker-pkg 4.0.4 venv, and measures both tools in the same run.
#
# Environment:
#   IMGRAPH_BENCH_BIN=PATH     use this imgraph binary instead of building one (cargo build --release)
#   IMGRAPH_BENCH_VENV=DIR     docker-pkg venv to (re)use; created when missing
#                              (default: ~/.cache/imgraph-bench/docker-pkg-4.0.4)
#   IMGRAPH_BENCH_KEEP=1       keep the temp dir (its path is printed)
# Some functions are only called from traps (SC2329 is noise here).
# shellcheck disable=SC2329

BENCH_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DOCKER_PKG_VERSION=4.0.4

blog() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
bdie() { blog "error: $*"; exit 1; }

# bench_build: builds imgraph (release) and prints the binary's path, as cargo reports it: the target dir is not
# always ./target (CARGO_TARGET_DIR, build.target-dir in a cargo config, a build target triple).
bench_build() {
    (cd "$BENCH_REPO" && cargo build --release --locked --quiet --bin imgraph \
        --message-format=json-render-diagnostics) | python3 -c '
import json, sys
paths = [m["executable"] for m in map(json.loads, sys.stdin)
         if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "imgraph"
         and "bin" in m["target"]["kind"] and m.get("executable")]
if not paths:
    sys.exit("bench_build: cargo reported no imgraph binary")
print(paths[-1])'
}

# bench_enter SCRIPT ARGS...: phase 1 (see above). Returns only when already inside the test environment.
bench_enter() {
    local script
    script="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
    shift
    if [[ ${IMGRAPH_TEST_ENV:-} == 1 && -n ${DOCKER_HOST:-} ]]; then
        return 0
    fi
    ((EUID == 0)) || bdie "must run as root (it starts a private dockerd)"
    cd "$BENCH_REPO" || exit 1
    bash scripts/install-test-deps.sh
    command -v openssl >/dev/null || bdie "openssl not found"
    if [[ -z ${IMGRAPH_BENCH_BIN:-} ]]; then
        blog "cargo build --release --locked"
        # Passed on to phase 2 (which would otherwise build again to learn the path).
        IMGRAPH_BENCH_BUILT=$(bench_build)
        export IMGRAPH_BENCH_BUILT
    fi
    # The wrapper runs from a copy in memory: bash reads a script file as it goes, so an edit of the file while a
    # benchmark runs (a shared work tree) would otherwise break the wrapper's last lines.
    local wrapper
    wrapper=$(<scripts/with-test-env.sh)
    exec bash -c "$wrapper" scripts/with-test-env.sh bash "$script" "$@"
}

# bench_init NAME: temp dir ($BENCH_TMP), cleanup trap, binary ($IMGRAPH), venv ($DOCKER_PKG), machine info.
BENCH_PIDS=()
BENCH_TMP=""
BENCH_CLEANUP_HOOKS=()
bench_cleanup() {
    local rc=$? pid hook i
    set +e
    trap '' INT TERM
    echo "== load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    for hook in "${BENCH_CLEANUP_HOOKS[@]}"; do
        "$hook"
    done
    for pid in "${BENCH_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || continue
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [[ -n $BENCH_TMP ]]; then
        if [[ ${IMGRAPH_BENCH_KEEP:-} == 1 ]]; then
            blog "kept $BENCH_TMP"
        else
            rm -rf "$BENCH_TMP"
        fi
    fi
    exit "$rc"
}

bench_init() {
    local name=$1 venv
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    BENCH_TMP=$(mktemp -d "/tmp/imgraph-bench-$name.XXXXXX")
    IMGRAPH="$BENCH_TMP/imgraph"
    local bin=${IMGRAPH_BENCH_BIN:-${IMGRAPH_BENCH_BUILT:-}}
    # Started inside an environment already: nothing built yet.
    [[ -n $bin ]] || bin=$(bench_build)
    cp "$bin" "$IMGRAPH"

    venv=${IMGRAPH_BENCH_VENV:-$HOME/.cache/imgraph-bench/docker-pkg-$DOCKER_PKG_VERSION}
    if ! "$venv/bin/python" -c 'import importlib.metadata as m, sys
sys.exit(m.version("docker-pkg") != sys.argv[1])' "$DOCKER_PKG_VERSION" 2>/dev/null; then
        blog "creating the docker-pkg $DOCKER_PKG_VERSION venv in $venv"
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q "docker-pkg==$DOCKER_PKG_VERSION"
    fi
    # shellcheck disable=SC2034 # used by the scripts that source this file
    DOCKER_PKG="$venv/bin/docker-pkg"

    local commit
    if [[ -n ${IMGRAPH_BENCH_BIN:-} ]]; then
        commit="binary $IMGRAPH_BENCH_BIN"
    else
        commit="work tree $(git -C "$BENCH_REPO" describe --always --dirty 2>/dev/null || echo unknown)"
    fi
    echo "== machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(free -g | awk '/^Mem:/{print $2}') GiB RAM, $(uname -sr)"
    echo "== date: $(date -u +%F), imgraph $commit ($("$IMGRAPH" --version 2>/dev/null || echo '?')), docker-pkg $DOCKER_PKG_VERSION ($("$venv/bin/python" --version)), docker $(docker version --format '{{.Server.Version}}' 2>/dev/null), storage $(docker info --format '{{.Driver}}' 2>/dev/null)"
    echo "== load average at the start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews timings)"
    if command -v hyperfine >/dev/null; then
        echo "== timing: $(hyperfine --version)"
    else
        echo "== timing: hyperfine not installed; repeated runs timed by the script"
    fi
}

# port_free PORT: nothing listens on 127.0.0.1/0.0.0.0/:: PORT.
port_free() {
    local hex
    printf -v hex ':%04X ' "$1"
    ! cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '$4 == "0A" {print $2" "}' | grep -q -- "$hex"
}

# bench_time NAME RUNS WARMUP CMD: times the shell command CMD (a string, run by bash -c) RUNS times after
# WARMUP untimed runs. Prints one line and sets BENCH_MEAN/BENCH_MIN/BENCH_MAX/BENCH_SD (seconds). CMD must
# succeed. With hyperfine: hyperfine --shell bash; otherwise the same loop by hand.
bench_time() {
    local name=$1 runs=$2 warmup=$3 cmd=$4 json="$BENCH_TMP/time-$RANDOM.json" stats
    if command -v hyperfine >/dev/null; then
        hyperfine --shell bash --style none --runs "$runs" --warmup "$warmup" \
            --command-name "$name" --export-json "$json" "$cmd" >/dev/null
        stats=$(python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(r["mean"], r["min"], r["max"], r["stddev"] or 0.0)' "$json")
    else
        local i t0 t1 times=()
        for ((i = 0; i < warmup; i++)); do bash -c "$cmd" >/dev/null 2>&1; done
        for ((i = 0; i < runs; i++)); do
            t0=$(date +%s.%N)
            bash -c "$cmd" >/dev/null 2>&1 || bdie "$name failed: $cmd"
            t1=$(date +%s.%N)
            times+=("$(python3 -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$t0" "$t1")")
        done
        stats=$(python3 -c 'import statistics as s, sys
t = [float(x) for x in sys.argv[1:]]
print(s.mean(t), min(t), max(t), s.stdev(t) if len(t) > 1 else 0.0)' "${times[@]}")
    fi
    read -r BENCH_MEAN BENCH_MIN BENCH_MAX BENCH_SD <<<"$stats"
    printf '%-44s %8.3f s ± %6.3f  (min %.3f, max %.3f, %d runs)\n' \
        "$name" "$BENCH_MEAN" "$BENCH_SD" "$BENCH_MIN" "$BENCH_MAX" "$runs"
}

# ratio A B: A / B with two decimals.
ratio() { python3 -c 'import sys; print(f"{float(sys.argv[1]) / float(sys.argv[2]):.2f}")' "$1" "$2"; }

# write_changelog DIR NAME VERSION: a one-entry Debian changelog.
write_changelog() {
    cat >"$1/changelog" <<EOF
$2 ($3) wikimedia; urgency=medium

  * Benchmark image.

 -- Bench <bench@example.org>  Mon, 23 Nov 2026 10:00:00 +0000
EOF
}
