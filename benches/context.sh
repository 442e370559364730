#!/usr/bin/env bash
# Benchmark: build-context streaming (issue 3, item 9).
#
# Peak memory (GNU time's maximum RSS) of `imgraph build` on one image whose context holds 1 GiB: four files of
# 256 MiB from /dev/urandom (incompressible). The Dockerfile copies them into the image and checks their
# sha256 sums, so a run that passes proves that the whole context reached the daemon intact:
#     FROM imgraph-test/busybox:1
#     COPY data /data
#     RUN cd /data && sha256sum -c SHA256SUMS
# For scale: the same image with a tiny context (one 4 KiB file); docker-pkg 4.0.4 building the 1 GiB one (same
# daemon, same tree); and the docker CLI (`docker build --no-cache`, the Dockerfile from `imgraph render`, so
# without imgraph's labels). The image is removed before each run; both tools run with --no-pull.
# Target: imgraph's peak RSS <= 64 MiB.
#
# Usage: benches/context.sh         (root; starts its own dockerd via scripts/with-test-env.sh)
# Environment: IMGRAPH_BENCH_RUNS (runs per tool, default 3), IMGRAPH_BENCH_CONTEXT_MIB (default 1024), and
# those of benches/lib.sh.
set -euo pipefail
# shellcheck source=benches/lib.sh
source "$(dirname "$0")/lib.sh"
bench_enter "$0" "$@"

RUNS=${IMGRAPH_BENCH_RUNS:-3}
MIB=${IMGRAPH_BENCH_CONTEXT_MIB:-1024}
FILES=4
BASE=${IMGRAPH_TEST_BASE_IMAGE:-imgraph-test/busybox:1}
NAMESPACE=imgraph-bench

bench_init context
W=$BENCH_TMP
cd "$W"
echo "== context: one image, $FILES random files, $MIB MiB in all; $RUNS runs per tool; --no-pull"

# --- the trees: big (1 GiB of data) and small (4 KiB) ---------------------------------------------
make_image() { # make_image DIR NAME
    mkdir -p "$1/data"
    write_changelog "$1" "$2" 1.0
    printf 'FROM %s\nCOPY data /data\nRUN cd /data && sha256sum -c SHA256SUMS' "$BASE" >"$1/Dockerfile.template"
}
make_image tree/big context-big
make_image small/small context-small
blog "writing $MIB MiB of random data"
for ((i = 1; i <= FILES; i++)); do
    head -c "$((MIB * 1024 * 1024 / FILES))" /dev/urandom >"tree/big/data/blob$i"
done
(cd tree/big/data && sha256sum blob* >SHA256SUMS)
head -c 4096 /dev/urandom >small/small/data/blob1
(cd small/small/data && sha256sum blob1 >SHA256SUMS)
printf 'namespace: %s\n' "$NAMESPACE" >config.yaml
echo "== context size: $(du -sb tree/big | cut -f1) bytes (tree/big), $(du -sb small/small | cut -f1) bytes (small)"

# measure NAME REF CMD...: RUNS runs of CMD under GNU time, REF removed before each; prints every run and
# sets PEAK_KB (the highest maximum RSS) and WALL (mean seconds).
measure() {
    local name=$1 ref=$2 run out kb wall peak=0 total=0
    shift 2
    for ((run = 1; run <= RUNS; run++)); do
        docker rmi "$ref" >/dev/null 2>&1 || true
        out="$W/time-$run.txt"
        if ! /usr/bin/time -o "$out" -f '%M %e' "$@" >"$W/run.log" 2>&1; then
            tail -20 "$W/run.log" >&2
            bdie "$name failed"
        fi
        docker image inspect "$ref" >/dev/null 2>&1 || { tail -20 "$W/run.log" >&2; bdie "$name built nothing"; }
        read -r kb wall < <(tail -1 "$out")
        printf '  %-40s run %d: %7.1f MiB peak RSS, %6.2f s\n' "$name" "$run" \
            "$(python3 -c 'import sys; print(int(sys.argv[1]) / 1024)' "$kb")" "$wall"
        ((kb > peak)) && peak=$kb
        total=$(python3 -c 'import sys; print(float(sys.argv[1]) + float(sys.argv[2]))' "$total" "$wall")
    done
    docker rmi "$ref" >/dev/null 2>&1 || true
    PEAK_KB=$peak
    WALL=$(python3 -c 'import sys; print(float(sys.argv[1]) / int(sys.argv[2]))' "$total" "$RUNS")
}
mib() { python3 -c 'import sys; print(f"{int(sys.argv[1]) / 1024:.1f}")' "$1"; }

echo
echo "== peak RSS (GNU time %M) and wall time"
measure "imgraph build (1 GiB context)" "$NAMESPACE/context-big:1.0" \
    "$IMGRAPH" -c config.yaml build tree --no-pull --log-dir "$W/logs"
grep -q 'blob4: OK' "$W/logs/context-big.log" || bdie "the image did not check its data (see $W/logs)"
i_big=$PEAK_KB i_big_wall=$WALL
measure "imgraph build (tiny context)" "$NAMESPACE/context-small:1.0" \
    "$IMGRAPH" -c config.yaml build small --no-pull --log-dir "$W/logs"
i_small=$PEAK_KB i_small_wall=$WALL
mkdir -p dpkg-tmp
measure "docker-pkg build (1 GiB context)" "$NAMESPACE/context-big:1.0" \
    env TMPDIR="$W/dpkg-tmp" "$DOCKER_PKG" -c config.yaml build --no-pull tree
grep -q 'Built image' "$W/run.log" || { cat "$W/run.log" >&2; bdie "docker-pkg did not build the image"; }
d_big=$PEAK_KB d_big_wall=$WALL
"$IMGRAPH" -c config.yaml render tree context-big >Dockerfile.big
measure "docker build (CLI, 1 GiB context)" "$NAMESPACE/context-big:1.0" \
    docker build -q --no-cache -f "$W/Dockerfile.big" -t "$NAMESPACE/context-big:1.0" tree/big
c_big=$PEAK_KB c_big_wall=$WALL

echo
echo "== summary (highest peak of $RUNS runs, mean wall time)"
printf '%-36s %8s MiB  %7.2f s\n' "imgraph, 1 GiB context" "$(mib "$i_big")" "$i_big_wall"
printf '%-36s %8s MiB  %7.2f s\n' "imgraph, tiny context" "$(mib "$i_small")" "$i_small_wall"
printf '%-36s %8s MiB  %7.2f s\n' "docker-pkg, 1 GiB context" "$(mib "$d_big")" "$d_big_wall"
printf '%-36s %8s MiB  %7.2f s\n' "docker build (CLI), 1 GiB context" "$(mib "$c_big")" "$c_big_wall"
echo "imgraph peak / target (64 MiB): $(ratio "$i_big" $((64 * 1024)))"
