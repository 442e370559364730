#!/usr/bin/env bash
# Benchmark: the no-op run on production-images (issue 3, item 9).
#
# The 125 images of ../shared/corpora/production-images/images, every one already published in a loopback
# registry, so nothing is built. Times `imgraph status`, `imgraph build` and `imgraph build --no-pull` against
# `docker-pkg build` and `docker-pkg build --no-pull` (docker-pkg 4.0.4, in a venv), in the same run, on the
# same registry content. Target: imgraph at least 20x faster than docker-pkg.
#
# Setup (all in a mktemp dir, stopped/removed on exit):
#   * a CA and a server certificate for localhost and 127.0.0.1;
#   * docker-registry with TLS on 127.0.0.1:443 (docker-pkg only speaks HTTPS on the default port);
#   * a copy of the corpus config with docker-registry.wikimedia.org replaced by `localhost` (`registry`,
#     `base_images`) and `ca_bundle` set; docker-pkg and imgraph read that same file;
#   * one tiny image (FROM scratch, one file) built in the private daemon, tagged and pushed under each of the
#     125 labels and the 3 base images (docker-pkg's build refreshes base_images even when it builds nothing).
#
# Usage: benches/noop.sh            (root; starts its own dockerd via scripts/with-test-env.sh)
# Environment: IMGRAPH_BENCH_RUNS (imgraph runs, default 20), IMGRAPH_BENCH_DPKG_RUNS (docker-pkg runs,
# default 5; 0 measures imgraph and the curl floor only), and those of benches/lib.sh.
set -euo pipefail
# shellcheck source=benches/lib.sh
source "$(dirname "$0")/lib.sh"
bench_enter "$0" "$@"

CORPUS=${IMGRAPH_BENCH_CORPUS:-$BENCH_REPO/../shared/corpora/production-images}
IMAGES="$CORPUS/images"
RUNS=${IMGRAPH_BENCH_RUNS:-20}
DPKG_RUNS=${IMGRAPH_BENCH_DPKG_RUNS:-5}
[[ -f $CORPUS/config.yaml && -d $IMAGES ]] || bdie "corpus not found: $CORPUS"
IMAGES=$(cd "$IMAGES" && pwd)

bench_init noop
W=$BENCH_TMP
cd "$W"
echo "== no-op: $IMAGES, every image published; imgraph $RUNS runs, docker-pkg $DPKG_RUNS runs, 1-2 warm-ups"

port_free 443 || bdie "127.0.0.1:443 is taken; this benchmark needs it"

# --- certificates ---------------------------------------------------------------------------------------------
san="DNS:localhost,IP:127.0.0.1"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=imgraph bench CA" \
    -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
    "$san" >server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext \
    -out server.pem 2>/dev/null

# --- the registry: TLS on :443 ------------------------------------------------------------------------------------
mkdir -p registry/storage
registry_config() { # registry_config ADDR [TLS]
    cat <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $W/registry/storage
http:
  addr: $1
EOF
    if [[ -n ${2:-} ]]; then
        printf '  tls:\n    certificate: %s\n    key: %s\n' "$W/server.pem" "$W/server.key"
    fi
}
registry_config 127.0.0.1:443 tls >registry/tls.yml
start_registry() { # start_registry NAME URL
    setsid docker-registry serve "registry/$1.yml" >"registry/$1.log" 2>&1 </dev/null &
    BENCH_PIDS+=($!)
    REGISTRY_PID[$1]=$!
    for ((i = 0; i < 100; i++)); do
        curl -sf --cacert ca.pem --noproxy '*' -o /dev/null "$2" && return 0
        sleep 0.1
    done
    bdie "registry $1 at $2 did not start"
}
declare -A REGISTRY_PID=()
start_registry tls https://localhost/v2/

# --- configs --------------------------------------------------------------------------------------------------
sed 's/docker-registry\.wikimedia\.org/localhost/g' "$CORPUS/config.yaml" >config.yaml
echo "ca_bundle: $W/ca.pem" >>config.yaml
echo "== config: $W/config.yaml = corpus config.yaml with registry/base_images on localhost, plus ca_bundle"

# --- publish: one tiny image under every label ------------------------------------------------------------------
mkdir tiny
echo "imgraph no-op benchmark" >tiny/file
printf 'FROM scratch\nCOPY file /file\n' >tiny/Dockerfile
docker build -q -t imgraph-bench/tiny:1 tiny >tiny.log 2>&1 || { cat tiny.log >&2; bdie "docker build failed"; }
"$IMGRAPH" -c config.yaml graph "$IMAGES" --format json >graph.json
python3 - "$W/graph.json" "$W/config.yaml" >refs.txt <<'EOF'
import json, re, sys
graph = json.load(open(sys.argv[1]))
for image in graph["images"]:
    print(image["label"])
# base_images (docker-pkg refreshes them on every build): the "  - name:tag" lines under base_images.
in_base = False
for line in open(sys.argv[2]):
    if re.match(r"^base_images:", line):
        in_base = True
    elif in_base and re.match(r"^\s+-\s+\S", line):
        print(line.split("-", 1)[1].strip())
    elif in_base and line.strip() and not line.startswith((" ", "#")):
        in_base = False
EOF
COUNT=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["images"]))' graph.json)
blog "pushing $(wc -l <refs.txt) references ($COUNT images + base images)"
# shellcheck disable=SC2016
xargs -P 8 -I{} sh -c 'docker tag imgraph-bench/tiny:1 "$1" && docker push -q "$1" >/dev/null' sh {} <refs.txt ||
    bdie "pushing failed"

# --- sanity: everything published for both tools, nothing to build ---------------------------------------------
check_published() { # check_published CONFIG
    local published
    "$IMGRAPH" -c "$1" status "$IMAGES" --json >status.json 2>status.err ||
        { tail -n 5 status.err status.json >&2; bdie "imgraph status failed ($1)"; }
    published=$(grep -c '"state":"published"' status.json || true)
    ((published == COUNT)) || { head -5 status.json >&2; bdie "imgraph: $published of $COUNT published ($1)"; }
}
check_published config.yaml
"$IMGRAPH" -c config.yaml build "$IMAGES" --json --log-dir "$W/logs" >build.json ||
    bdie "imgraph build failed"
grep -q '"event":"started"' build.json && bdie "imgraph build started work on a published tree"
"$DOCKER_PKG" -c config.yaml build "$IMAGES" >dpkg.out 2>&1 || { cat dpkg.out >&2; bdie "docker-pkg build failed"; }
if grep -q '^\* ' dpkg.out || ! grep -q 'Will build the following images' dpkg.out; then
    cat dpkg.out >&2
    bdie "docker-pkg wants to build something"
fi
echo "== checked: imgraph status shows $COUNT/$COUNT published, imgraph build and docker-pkg build build nothing"

# --- timings --------------------------------------------------------------------------------------------------
echo
echo "== wall time (cwd $W)"
I="$IMGRAPH -c $W/config.yaml"
D="$DOCKER_PKG -c $W/config.yaml"
LOGS="--log-dir $W/logs"
bench_time "imgraph status" "$RUNS" 2 "$I status $IMAGES >/dev/null"
t_status=$BENCH_MEAN
bench_time "imgraph build" "$RUNS" 2 "$I build $IMAGES $LOGS >/dev/null 2>&1"
t_build=$BENCH_MEAN
bench_time "imgraph build --no-pull" "$RUNS" 2 "$I build --no-pull $IMAGES $LOGS >/dev/null 2>&1"
t_build_np=$BENCH_MEAN
if ((DPKG_RUNS > 0)); then
    bench_time "docker-pkg build" "$DPKG_RUNS" 1 "cd $W && $D build $IMAGES >/dev/null 2>&1"
    t_dpkg=$BENCH_MEAN
    bench_time "docker-pkg build --no-pull" "$DPKG_RUNS" 1 "cd $W && $D build --no-pull $IMAGES >/dev/null 2>&1"
    t_dpkg_np=$BENCH_MEAN
fi

# --- the floor: the same HEADs sent by curl, here and behind a relay adding 20 ms of round trip -----------------
# curl sends the 125 manifest HEADs imgraph status sends, over HTTP/2, 16 at a time (imgraph's lookup
# concurrency), with the same Accept header: what any client must at least pay. A remote registry is modelled by
# benches/latency-relay.py (this kernel has no netem): 10 ms each way, and one round trip for the TCP handshake.
ACCEPT="Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"
curl_config() { # curl_config ORIGIN: one url line per image label, for curl --config
    python3 - "$W/graph.json" "$1" <<'PY'
import json, sys
for image in json.load(open(sys.argv[1]))["images"]:
    repository, tag = image["label"].split("/", 1)[1].rsplit(":", 1)
    print(f'url = "{sys.argv[2]}/v2/{repository}/manifests/{tag}"')
    print('output = "/dev/null"')
PY
}
CURL="curl -sS --fail --noproxy '*' --parallel --parallel-max 16 --http2 -I --cacert $W/ca.pem -H '$ACCEPT'"
curl_config https://localhost >curl-loopback.txt
python3 "$BENCH_REPO/benches/latency-relay.py" 127.0.0.1:0 127.0.0.1:443 --delay-ms 10 --connect-rtt \
    >relay.out 2>relay.log &
BENCH_PIDS+=($!)
for ((i = 0; i < 50; i++)); do
    [[ -s relay.out ]] && break
    sleep 0.1
done
RELAY_PORT=$(awk '/^listening/ {print $3}' relay.out)
[[ -n $RELAY_PORT ]] || bdie "the latency relay did not start: $(cat relay.log)"
sed "s/docker-registry\.wikimedia\.org/localhost:$RELAY_PORT/g" "$CORPUS/config.yaml" >config-relay.yaml
echo "ca_bundle: $W/ca.pem" >>config-relay.yaml
curl_config "https://localhost:$RELAY_PORT" >curl-relay.txt
check_published config-relay.yaml
echo
echo "== remote registry: loopback, and behind a relay adding 20 ms of round trip (localhost:$RELAY_PORT)"
bench_time "curl, 125 HEADs, HTTP/2, 16 at a time" "$RUNS" 2 "$CURL --config $W/curl-loopback.txt"
t_curl=$BENCH_MEAN
bench_time "imgraph status" "$RUNS" 2 "$I status $IMAGES >/dev/null"
t_status_loop=$BENCH_MEAN
bench_time "curl via the relay" "$RUNS" 2 "$CURL --config $W/curl-relay.txt"
t_curl_relay=$BENCH_MEAN
bench_time "imgraph status via the relay" "$RUNS" 2 "$IMGRAPH -c $W/config-relay.yaml status $IMAGES >/dev/null"
t_status_relay=$BENCH_MEAN
echo "imgraph status / curl floor (target <= 1.25): loopback $(ratio "$t_status_loop" "$t_curl")x, relay $(ratio "$t_status_relay" "$t_curl_relay")x"

# --- where the time goes: CPU seconds per run of the client, dockerd and the registries ---------------------
DOCKERD_PID=$(cat "$(dirname "${DOCKER_HOST#unix://}")/docker/dockerd.pid" 2>/dev/null || true)
HZ=$(getconf CLK_TCK)
ticks() { # ticks PID: user+system clock ticks used so far (0 if unknown)
    local stat rest
    if [[ -z $1 ]] || ! { read -r stat <"/proc/$1/stat"; } 2>/dev/null; then
        echo 0
        return
    fi
    read -r -a rest <<<"${stat##*) }"
    echo $((rest[11] + rest[12]))
}
cpu_breakdown() { # cpu_breakdown NAME RUNS CMD
    local d0 r0 d1 r1 wall=0 own=0 e u s i
    d0=$(ticks "$DOCKERD_PID")
    r0=$(ticks "${REGISTRY_PID[tls]}")
    for ((i = 0; i < $2; i++)); do
        /usr/bin/time -o cpu.txt -f '%e %U %S' bash -c "$3" || bdie "$1 failed"
        read -r e u s <cpu.txt
        wall=$(python3 -c 'import sys; print(sum(map(float, sys.argv[1:])))' "$wall" "$e")
        own=$(python3 -c 'import sys; print(sum(map(float, sys.argv[1:])))' "$own" "$u" "$s")
    done
    d1=$(ticks "$DOCKERD_PID")
    r1=$(ticks "${REGISTRY_PID[tls]}")
    python3 -c 'import sys
name, n, hz, wall, own, d, r = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *map(float, sys.argv[4:])
print(f"{name:44} wall {wall / n:6.3f} s | CPU s: client {own / n:5.3f}, dockerd {d / hz / n:5.3f}, registry {r / hz / n:5.3f}")' \
        "$1" "$2" "$HZ" "$wall" "$own" "$((d1 - d0))" "$((r1 - r0))"
}
echo
echo "== CPU per run (mean of 5; client = the command and its children; dockerd${DOCKERD_PID:+ pid $DOCKERD_PID})"
cpu_breakdown "imgraph status" 5 "$I status $IMAGES >/dev/null"
cpu_breakdown "imgraph build" 5 "$I build $IMAGES $LOGS >/dev/null 2>&1"
cpu_breakdown "imgraph graph (no Docker, no registry)" 5 "$I graph $IMAGES >/dev/null"
if ((DPKG_RUNS > 0)); then
    cpu_breakdown "docker-pkg build" 5 "cd $W && $D build $IMAGES >/dev/null 2>&1"
    cpu_breakdown "docker-pkg build --no-pull" 5 "cd $W && $D build --no-pull $IMAGES >/dev/null 2>&1"
    cpu_breakdown "docker-pkg --help (Python start-up)" 5 "$D --help >/dev/null 2>&1"
fi

((DPKG_RUNS > 0)) || exit 0
echo
echo "== speed-up (docker-pkg mean / imgraph mean; target >= 20)"
echo "docker-pkg build / imgraph status:                     $(ratio "$t_dpkg" "$t_status")x"
echo "docker-pkg build / imgraph build:                      $(ratio "$t_dpkg" "$t_build")x"
echo "docker-pkg build --no-pull / imgraph build --no-pull:  $(ratio "$t_dpkg_np" "$t_build_np")x"

