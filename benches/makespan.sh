#!/usr/bin/env bash
# Benchmark: makespan of a layered DAG (issue 3, item 9).
#
# A generated tree of 5 layers x 4 images. Every image runs `RUN sleep 2`. Layer 1 is built FROM the busybox
# test base image; image i of layer k > 1 is built FROM image i of layer k-1 and copies a file
# (`COPY --from=`) out of image i+1 (mod 4) of layer k-1. Both parents are also listed in its `control` file
# (`Depends:`), which is all docker-pkg orders by (imgraph reads the Dockerfile and the control file).
#
# Measured in one run, on one private daemon, every image removed before each timed build:
#   * imgraph build --jobs 4 --no-pull            (the whole DAG)
#   * one such image alone: imgraph build --no-pull --select l3-a, its parents already built; the critical-path
#     bound is 5 x that time (also shown: the same image built by `docker build --no-cache`);
#   * docker-pkg build --no-pull                  (the whole DAG; docker-pkg builds one image at a time).
# Target: imgraph within 1.10x of the bound.
#
# Usage: benches/makespan.sh        (root; starts its own dockerd via scripts/with-test-env.sh)
# Environment: IMGRAPH_BENCH_RUNS (imgraph DAG runs, default 3), IMGRAPH_BENCH_SINGLE_RUNS (single-image
# runs, default 5), IMGRAPH_BENCH_DPKG_RUNS (docker-pkg DAG runs, default 2), IMGRAPH_BENCH_SLEEP (seconds
# per RUN, default 2), and those of benches/lib.sh.
set -euo pipefail
# shellcheck source=benches/lib.sh
source "$(dirname "$0")/lib.sh"
bench_enter "$0" "$@"

RUNS=${IMGRAPH_BENCH_RUNS:-3}
SINGLE_RUNS=${IMGRAPH_BENCH_SINGLE_RUNS:-5}
DPKG_RUNS=${IMGRAPH_BENCH_DPKG_RUNS:-2}
SLEEP=${IMGRAPH_BENCH_SLEEP:-2}
LAYERS=5
WIDTH=4
JOBS=4
BASE=${IMGRAPH_TEST_BASE_IMAGE:-imgraph-test/busybox:1}
NAMESPACE=imgraph-bench

bench_init makespan
W=$BENCH_TMP
cd "$W"
echo "== makespan: $LAYERS layers x $WIDTH images, RUN sleep $SLEEP, FROM $BASE; imgraph --jobs $JOBS --no-pull"

# --- the tree -------------------------------------------------------------------------------------------------
letters=(a b c d e f g h)
TREE="$W/tree"
REFS=() # build order
for ((k = 1; k <= LAYERS; k++)); do
    for ((i = 0; i < WIDTH; i++)); do
        name="l$k-${letters[i]}"
        dir="$TREE/$name"
        mkdir -p "$dir"
        write_changelog "$dir" "$name" 1.0
        {
            if ((k == 1)); then
                echo "FROM $BASE"
            else
                p1="l$((k - 1))-${letters[i]}"
                p2="l$((k - 1))-${letters[(i + 1) % WIDTH]}"
                printf 'FROM {{ "%s" | image_tag }}\n' "$p1"
                printf 'COPY --from={{ "%s" | image_tag }} /stamp-%s /stamp-%s\n' "$p2" "$p2" "$p2"
                printf 'Package: %s\nDepends: %s, %s\n' "$name" "$p1" "$p2" >"$dir/control"
            fi
            printf 'RUN sleep %s && echo %s > /stamp-%s' "$SLEEP" "$name" "$name"
        } >"$dir/Dockerfile.template"
        REFS+=("$NAMESPACE/$name:1.0")
    done
done
printf 'namespace: %s\n' "$NAMESPACE" >config.yaml
"$IMGRAPH" -c config.yaml check "$TREE" >check.out || { cat check.out >&2; bdie "imgraph check failed"; }
"$IMGRAPH" -c config.yaml graph "$TREE" --format text >graph.txt
echo "== tree: $TREE ($(wc -l <graph.txt) images); e.g. $(grep '^l3-a' graph.txt)"
echo "== l3-a's Dockerfile.template:"
sed 's/^/     /' "$TREE/l3-a/Dockerfile.template"
echo

# remove_all: every image of the tree, children first, and the parents left dangling by a single rebuild.
reverse_refs=()
for ((n = ${#REFS[@]} - 1; n >= 0; n--)); do reverse_refs+=("${REFS[n]}"); done
remove_all() {
    docker rmi "${reverse_refs[@]}" >/dev/null 2>&1 || true
    docker image prune -f >/dev/null 2>&1 || true
    if docker image inspect "${REFS[0]}" >/dev/null 2>&1; then bdie "could not remove the tree's images"; fi
}
printf -v REMOVE 'docker rmi %s >/dev/null 2>&1; docker image prune -f >/dev/null 2>&1; true' "${reverse_refs[*]}"

# --- check runs (untimed; they also warm the daemon up) --------------------------------------------------------
remove_all
"$IMGRAPH" -c config.yaml build "$TREE" --jobs "$JOBS" --no-pull --json --log-dir "$W/logs" >imgraph-build.json ||
    { tail -5 imgraph-build.json >&2; bdie "imgraph build failed"; }
grep -q '"event":"summary".*"succeeded":20' imgraph-build.json ||
    { tail -3 imgraph-build.json >&2; bdie "imgraph did not build the 20 images"; }
remove_all
"$DOCKER_PKG" -c config.yaml build --no-pull "$TREE" >dpkg.out 2>&1 || { cat dpkg.out >&2; bdie "docker-pkg failed"; }
built=$(grep -c '^\* Built image' dpkg.out || true)
((built == 20)) || { cat dpkg.out >&2; bdie "docker-pkg built $built of 20 images"; }
echo "== checked: both tools build all 20 images (imgraph: succeeded 20; docker-pkg: 20 'Built image' lines)"
# the order docker-pkg chose (it only follows control files)
grep '^\* Built image' dpkg.out | sed 's/.*Built image //' | tr '\n' ' ' >dpkg-order.txt

# --- timings --------------------------------------------------------------------------------------------------
echo
echo "== wall time (every image removed before each run)"
I="$IMGRAPH -c $W/config.yaml"
D="cd $W && $DOCKER_PKG -c $W/config.yaml"
time_prepared() { # time_prepared NAME RUNS PREPARE CMD
    if command -v hyperfine >/dev/null; then
        local json="$BENCH_TMP/time-$RANDOM.json" stats
        hyperfine --shell bash --style none --runs "$2" --prepare "$3" --command-name "$1" \
            --export-json "$json" "$4" >/dev/null
        stats=$(python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(r["mean"], r["min"], r["max"], r["stddev"] or 0.0)' "$json")
        read -r BENCH_MEAN BENCH_MIN BENCH_MAX BENCH_SD <<<"$stats"
        printf '%-44s %8.3f s ± %6.3f  (min %.3f, max %.3f, %d runs)\n' \
            "$1" "$BENCH_MEAN" "$BENCH_SD" "$BENCH_MIN" "$BENCH_MAX" "$2"
    else
        # bench_time has no prepare step: fold it into the command, timing it too, then subtract it.
        bench_time "$1 (incl. prepare)" "$2" 0 "$3; $4"
        local with=$BENCH_MEAN
        bench_time "$1 (prepare only)" "$2" 0 "$3"
        BENCH_MEAN=$(python3 -c 'import sys; print(float(sys.argv[1]) - float(sys.argv[2]))' "$with" "$BENCH_MEAN")
        printf '%-44s %8.3f s (mean, prepare subtracted)\n' "$1" "$BENCH_MEAN"
    fi
}

time_prepared "imgraph build --jobs $JOBS (20 images)" "$RUNS" "$REMOVE" \
    "$I build $TREE --jobs $JOBS --no-pull --log-dir $W/logs >/dev/null 2>&1"
t_dag=$BENCH_MEAN

# One image alone (l3-a: FROM l2-a, COPY --from l2-b, RUN sleep), its parents present in the daemon.
remove_all
$I build "$TREE" --jobs "$JOBS" --no-pull --log-dir "$W/logs" >/dev/null 2>&1 || bdie "imgraph build failed"
SINGLE="$NAMESPACE/l3-a:1.0"
time_prepared "imgraph build --select l3-a (1 image)" "$SINGLE_RUNS" \
    "docker rmi $SINGLE >/dev/null 2>&1; true" \
    "$I build $TREE --select l3-a --no-pull --log-dir $W/logs >/dev/null 2>&1"
t_single=$BENCH_MEAN
mkdir single-context
"$IMGRAPH" -c config.yaml render "$TREE" l3-a >single-context/Dockerfile
time_prepared "docker build --no-cache (l3-a, 1 image)" "$SINGLE_RUNS" \
    "docker rmi $SINGLE >/dev/null 2>&1; true" \
    "docker build -q --no-cache -t $SINGLE $W/single-context >/dev/null 2>&1"
t_single_docker=$BENCH_MEAN
time_prepared "docker-pkg build --select l3-a (1 image)" "$SINGLE_RUNS" \
    "docker rmi $SINGLE >/dev/null 2>&1; true" \
    "$D build --no-pull --select '*/l3-a:*' $TREE >/dev/null 2>&1"
t_single_dpkg=$BENCH_MEAN

# The same DAG built by the docker CLI, layer by layer, the 4 images of a layer at once (the rendered Dockerfiles,
# without imgraph's labels): what the daemon itself needs for 4 concurrent builds on this machine.
mkdir rendered
# shellcheck disable=SC2016 # the generated script expands these
{
    echo 'set -e'
    for ((k = 1; k <= LAYERS; k++)); do
        echo 'pids=()'
        for ((i = 0; i < WIDTH; i++)); do
            name="l$k-${letters[i]}"
            "$IMGRAPH" -c config.yaml render "$TREE" "$name" >"rendered/$name"
            echo "docker build -q --no-cache -f $W/rendered/$name -t $NAMESPACE/$name:1.0 $TREE/$name >/dev/null &"
            echo 'pids+=($!)'
        done
        echo 'for p in "${pids[@]}"; do wait "$p"; done'
    done
} >layered.sh
time_prepared "docker build, 4 at once per layer (20 images)" "$RUNS" "$REMOVE" "bash $W/layered.sh"
t_layered=$BENCH_MEAN

time_prepared "docker-pkg build (20 images, sequential)" "$DPKG_RUNS" "$REMOVE" \
    "$D build --no-pull $TREE >/dev/null 2>&1"
t_dpkg=$BENCH_MEAN
remove_all

# One more DAG build, its --json events timestamped as they arrive (benches/timeline.py): how long each image
# took inside the DAG, and how long each waited after its last parent finished.
echo
remove_all
$I build "$TREE" --jobs "$JOBS" --no-pull --json --log-dir "$W/logs" 2>/dev/null |
    python3 "$BENCH_REPO/benches/timeline.py" graph.txt
remove_all

bound=$(python3 -c 'import sys; print(5 * float(sys.argv[1]))' "$t_single")
bound_docker=$(python3 -c 'import sys; print(5 * float(sys.argv[1]))' "$t_single_docker")
echo
echo "== critical path: $LAYERS images; bound = $LAYERS x one image's build time"
printf 'bound (5 x imgraph single image):        %8.3f s\n' "$bound"
printf 'bound (5 x docker build single image):   %8.3f s\n' "$bound_docker"
printf 'sequential lower bound (20 x sleep):     %8.3f s\n' "$((20 * SLEEP))"
echo "imgraph DAG / bound (imgraph single):     $(ratio "$t_dag" "$bound")x   (target <= 1.10)"
echo "imgraph DAG / bound (docker build single): $(ratio "$t_dag" "$bound_docker")x"
echo "docker CLI layered / bound (docker build single): $(ratio "$t_layered" "$bound_docker")x"
echo "imgraph DAG / docker CLI layered:         $(ratio "$t_dag" "$t_layered")x"
echo "docker-pkg DAG / imgraph DAG:             $(ratio "$t_dpkg" "$t_dag")x"
echo "docker-pkg DAG / (20 x docker-pkg single): $(ratio "$t_dpkg" "$(python3 -c 'import sys; print(20 * float(sys.argv[1]))' "$t_single_dpkg")")x"
echo "docker-pkg build order: $(cat dpkg-order.txt)"
