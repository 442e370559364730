#!/usr/bin/env bash
# with-test-env.sh CMD [ARGS...] — run CMD inside a private, throw-away
# Docker test environment for imgraph's real-Docker tests.
#
# In a fresh temp dir (mktemp -d) this starts, as root:
#   * a private containerd (own socket, root, state dir) and a private dockerd
#     using it (own socket, data-root, exec-root, pidfile, config file,
#     cgroup parent, bridge; no iptables, no ip_forward change; cgroupfs
#     cgroup driver). The bridge, imgraph-XXXXXX (named after the temp dir),
#     is created here with an address in a random free private /24 and
#     deleted on exit; the host's docker0 is never touched.
#     Storage driver: overlay2 if an overlay mount works on
#     the temp dir's filesystem, else vfs
#     (override with IMGRAPH_TEST_STORAGE_DRIVER). The same dockerd also
#     listens on tcp://127.0.0.1:<free port> with --tlsverify: a throw-away
#     CA (openssl, in the temp dir) signs its server certificate (for
#     127.0.0.1 and localhost) and a client certificate (clientAuth);
# builds the base image imgraph-test/busybox:1 (FROM scratch + static busybox,
# network none) in that daemon, runs CMD with these variables exported:
#   DOCKER_HOST=unix://<tmp>/docker.sock   DOCKER_CONFIG=<tmp>/docker-config
#   IMGRAPH_TEST_ENV=1
#   IMGRAPH_TEST_BUSYBOX=<path of the static busybox>
#   IMGRAPH_TEST_BASE_IMAGE=imgraph-test/busybox:1
#   IMGRAPH_TEST_DOCKERD_LOG=<tmp>/dockerd.log
#   IMGRAPH_TEST_TLS_HOST=tcp://127.0.0.1:PORT (the same daemon, TLS only)
#   IMGRAPH_TEST_CERT_PATH=<tmp>/tls/client, with ca.pem cert.pem key.pem (a
#     client's DOCKER_CERT_PATH for it; DOCKER_TLS_VERIFY itself stays unset;
#     the daemon's own files are in the sibling <tmp>/tls/server)
# and on exit (normal, INT or TERM) stops everything it started by PID
# (dockerd, containerd; then, if dockerd died or hung, container
# processes found by our cgroup and shims found by our socket path), deletes
# the bridge, unmounts whatever is left mounted under the temp dir, removes it
# and our cgroups, and exits with CMD's exit code. Nothing else on the host
# (interfaces, addresses, routes, sysctls, iptables) is changed; the
# integration test tests/it/host.rs checks that.
#
# Only what has to run as root from a shell is here: the private containerd
# and dockerd, their bridge and cgroups, and the daemon's TLS certificates
# (dockerd reads them at startup). The registries the tests push to
# (docker-registry on free loopback ports, one behind htpasswd) are started
# by the tests themselves, in Rust, once per test binary: see
# tests/it/fixtures.rs.
#
# Optional: IMGRAPH_TEST_LOG_DIR=DIR copies the daemon logs there before the
# temp dir is removed (the test fixtures copy their registries' logs there too).
# Dependencies: scripts/install-test-deps.sh.

# Some functions are only called from traps or by name: the unreachable-code
# warning (SC2329; SC2317 in ShellCheck before 0.10) is noise here.
# shellcheck disable=SC2317,SC2329
set -euo pipefail

log() { printf 'with-test-env: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if (($# == 0)); then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi
((EUID == 0)) || die "must run as root (it starts dockerd)"
for c in dockerd containerd containerd-shim-runc-v2 runc docker curl openssl \
    setsid mount umount ip; do
    command -v "$c" >/dev/null 2>&1 ||
        die "'$c' not found; run scripts/install-test-deps.sh"
done

START_SECONDS=$SECONDS
READY_TIMEOUT=${IMGRAPH_TEST_READY_TIMEOUT:-60} # seconds, per service

# --- state used by the cleanup trap -----------------------------------------
TMP_ROOT=""
DOCKERD_PID=""
CONTAINERD_PID=""
CGROUP_PARENT=""
BRIDGE="" # set once we have created it (never delete someone else's)
CLEANED_UP=""

# ---------------------------------------------------------------------------
# Process helpers. Everything is tracked by PID; nothing is killed by name.

# alive PID: true while PID exists and is not a zombie.
alive() {
    local stat
    # (not $(<file): with set -e, bash exits if that file cannot be opened)
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

# stop_pid PID NAME TIMEOUT: TERM, wait up to TIMEOUT s, then KILL.
stop_pid() {
    local pid=$1 name=$2 timeout=$3 i
    [[ -n $pid ]] || return 0
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < timeout * 10; i++)); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            log "$name (pid $pid) still running after ${timeout}s; sending KILL"
            kill -KILL "$pid" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do
                alive "$pid" || break
                sleep 0.1
            done
        fi
    fi
    wait "$pid" 2>/dev/null || true # reap if it is our child
}

# container_pids: processes in containers of our dockerd, found by their
# cgroup (dockerd runs with a private --cgroup-parent named after TMP_ROOT).
# shim_pids: other processes whose command line names a path under TMP_ROOT
# (containerd shims: "-address <tmp>/containerd/containerd.sock").
# Both print PIDs. Neither looks at process names.
container_pids() {
    local p pid cg
    [[ -n $CGROUP_PARENT ]] || return 0
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
        cg=""
        read -r -d '' cg 2>/dev/null <"$p/cgroup" || true
        [[ $cg == *":/$CGROUP_PARENT/"* ]] && echo "$pid"
    done
    return 0
}
shim_pids() {
    local p pid args
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
        args=()
        mapfile -d '' args 2>/dev/null <"$p/cmdline" || continue
        [[ " ${args[*]} " == *"$TMP_ROOT/"* ]] && echo "$pid"
    done
    return 0
}

# kill_leftovers LISTER SIGNALS...: for each signal in turn, signal what
# LISTER prints and wait up to 5 s for it to go away.
kill_leftovers() {
    local lister=$1 sig pids i
    shift
    for sig in "$@"; do
        mapfile -t pids < <("$lister")
        ((${#pids[@]})) || return 0
        log "sending $sig to leftover processes ($lister): ${pids[*]}"
        kill "-$sig" "${pids[@]}" 2>/dev/null
        for ((i = 0; i < 50; i++)); do
            mapfile -t pids < <("$lister")
            ((${#pids[@]})) || return 0
            sleep 0.1
        done
    done
}

# remove_cgroups: the (empty by now) cgroup dirs dockerd made for us.
remove_cgroups() {
    local d
    [[ -n $CGROUP_PARENT ]] || return 0
    while read -r d; do
        find "$d" -depth -type d -exec rmdir {} + 2>/dev/null ||
            log "warning: could not remove cgroup $d"
    done < <(find /sys/fs/cgroup -maxdepth 2 -type d -name "$CGROUP_PARENT" 2>/dev/null)
}

# our_mounts: mount points under TMP_ROOT, deepest first.
our_mounts() {
    local _dev mnt _rest
    while read -r _dev mnt _rest; do
        mnt=${mnt//\\040/ }
        [[ $mnt == "$TMP_ROOT" || $mnt == "$TMP_ROOT"/* ]] && echo "$mnt"
    done </proc/self/mounts | sort -r
}

cleanup() {
    local rc=$? mnt ids
    [[ -n $CLEANED_UP ]] && return
    CLEANED_UP=1
    set +e
    trap '' INT TERM
    [[ -n $TMP_ROOT ]] || exit "$rc"

    # Kill containers still running (dockerd's own shutdown would give each
    # one a 10 s stop timeout first), then stop dockerd.
    if [[ -n $DOCKERD_PID ]] && alive "$DOCKERD_PID"; then
        mapfile -t ids < <(timeout 10 docker -H "unix://$DOCKER_SOCK" ps -q 2>/dev/null)
        if ((${#ids[@]})); then
            timeout 10 docker -H "unix://$DOCKER_SOCK" kill "${ids[@]}" >/dev/null 2>&1
        fi
    fi
    stop_pid "$DOCKERD_PID" dockerd 15
    stop_pid "$CONTAINERD_PID" containerd 10
    # Only if dockerd/containerd died or hung: container processes (a
    # container's PID 1 ignores TERM, so KILL) and then their shims.
    kill_leftovers container_pids KILL
    kill_leftovers shim_pids TERM KILL
    remove_cgroups
    # After dockerd: it would otherwise notice its bridge going away.
    if [[ -n $BRIDGE ]]; then
        ip link delete "$BRIDGE" type bridge ||
            log "warning: could not delete bridge $BRIDGE"
    fi

    if [[ -n ${IMGRAPH_TEST_LOG_DIR:-} ]]; then
        mkdir -p "$IMGRAPH_TEST_LOG_DIR" &&
            cp "$TMP_ROOT"/*.log "$IMGRAPH_TEST_LOG_DIR"/ 2>/dev/null
    fi

    while read -r mnt; do
        [[ -n $mnt ]] || continue
        umount "$mnt" 2>/dev/null || umount -l "$mnt" ||
            log "warning: could not unmount $mnt"
    done < <(our_mounts)

    if ! rm -rf "$TMP_ROOT" 2>/dev/null; then
        # vfs layers can carry immutable/append-only attributes.
        command -v chattr >/dev/null && chattr -R -ia "$TMP_ROOT" 2>/dev/null
        rm -rf "$TMP_ROOT" || log "warning: could not remove $TMP_ROOT"
    fi
    exit "$rc"
}
# INT/TERM: pass the signal on to CMD (if running), let it finish, clean up.
CMD_PID=""
on_signal() { # on_signal SIGNAL EXIT_CODE
    if [[ -n $CMD_PID ]] && alive "$CMD_PID"; then
        kill "-$1" "$CMD_PID" 2>/dev/null || true
        wait "$CMD_PID" 2>/dev/null || true
    fi
    exit "$2"
}
trap cleanup EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM

# ---------------------------------------------------------------------------
# Always under /tmp (not $TMPDIR): unix socket paths are limited to 108 bytes.
TMP_ROOT=$(mktemp -d /tmp/imgraph-test.XXXXXX)
((${#TMP_ROOT} < 40)) || die "temp dir path too long: $TMP_ROOT"
chmod 0711 "$TMP_ROOT"
# Containers of our dockerd live under this cgroup (unique per run).
CGROUP_PARENT=${TMP_ROOT##*/}

# wait_until TIMEOUT WATCH_PID WHAT CMD...: poll CMD every 0.2 s until it
# succeeds; fail early if WATCH_PID dies.
wait_until() {
    local timeout=$1 pid=$2 what=$3 i
    shift 3
    for ((i = 0; i < timeout * 5; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        alive "$pid" || { log "$what exited during startup"; return 1; }
        sleep 0.2
    done
    log "$what not ready after ${timeout}s"
    return 1
}

show_log() { # show_log NAME FILE
    log "---- last lines of $1 log ($2) ----"
    tail -n 40 "$2" >&2 || true
    log "----"
}

# --- storage driver ---------------------------------------------------------
# overlay2 if the kernel can mount an overlay whose upper dir lives on the
# temp dir's filesystem (fails e.g. on overlayfs-on-overlayfs), else vfs.
detect_storage_driver() {
    local probe="$TMP_ROOT/overlay-probe" driver=vfs
    mkdir -p "$probe"/{lower,upper,work,merged}
    echo probe >"$probe/lower/file"
    if mount -t overlay overlay \
        -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
        "$probe/merged" 2>/dev/null; then
        local content=""
        read -r content <"$probe/merged/file" || true
        if [[ $content == probe ]] &&
            echo written >"$probe/merged/new" 2>/dev/null &&
            [[ -e $probe/upper/new ]]; then
            driver=overlay2
        fi
        umount "$probe/merged" 2>/dev/null || umount -l "$probe/merged"
    fi
    rm -rf "$probe"
    echo "$driver"
}

# --- containerd (private; never the system one) -----------------------------
# dockerd without --containerd would reuse /run/containerd/containerd.sock
# when a system containerd runs there, sharing the "moby" namespace with any
# other dockerd on it. Run our own and point dockerd at it.
CTRD_DIR="$TMP_ROOT/containerd"
CTRD_SOCK="$CTRD_DIR/containerd.sock"
start_containerd() {
    mkdir -p "$CTRD_DIR"/{root,state,opt}
    cat >"$CTRD_DIR/config.toml" <<EOF
version = 2
root = "$CTRD_DIR/root"
state = "$CTRD_DIR/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD_DIR/opt"
EOF
    setsid containerd --config "$CTRD_DIR/config.toml" \
        >"$TMP_ROOT/containerd.log" 2>&1 </dev/null &
    CONTAINERD_PID=$!
    if ! wait_until "$READY_TIMEOUT" "$CONTAINERD_PID" containerd \
        test -S "$CTRD_SOCK"; then
        show_log containerd "$TMP_ROOT/containerd.log"
        die "containerd did not start"
    fi
}

# --- TLS certificates --------------------------------------------------------
# A throw-away CA, a server certificate for 127.0.0.1/localhost and a client
# certificate (clientAuth), all EC P-256, valid for 2 days. Each side's files
# are laid out as DOCKER_CERT_PATH expects them (ca.pem, cert.pem, key.pem).
TLS_DIR="$TMP_ROOT/tls"
TLS_SERVER="$TLS_DIR/server"
TLS_CLIENT="$TLS_DIR/client"
make_tls_certs() {
    local cnf="$TLS_DIR/openssl.cnf" role serial
    local key=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
    mkdir -p "$TLS_SERVER" "$TLS_CLIENT"
    chmod 0700 "$TLS_DIR"
    cat >"$cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = imgraph test
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
EOF
    openssl req -x509 -config "$cnf" -extensions ca "${key[@]}" \
        -subj "/CN=imgraph test CA" -days 2 \
        -keyout "$TLS_DIR/ca-key.pem" -out "$TLS_DIR/ca.pem" || return 1
    for role in server client; do
        serial=0x$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
        openssl req -new -config "$cnf" "${key[@]}" \
            -subj "/CN=imgraph test $role" \
            -keyout "$TLS_DIR/$role/key.pem" -out "$TLS_DIR/$role.csr" ||
            return 1
        openssl x509 -req -in "$TLS_DIR/$role.csr" -days 2 \
            -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca-key.pem" \
            -set_serial "$serial" -extfile "$cnf" -extensions "$role" \
            -out "$TLS_DIR/$role/cert.pem" || return 1
        cp "$TLS_DIR/ca.pem" "$TLS_DIR/$role/ca.pem"
    done
}

# --- bridge -------------------------------------------------------------------
# The private dockerd needs a bridge of its own. With --bridge=none, dockerd
# 20.10 deletes the interface docker0 at startup (the host daemon's bridge, if
# there is one), and without --bridge it would take docker0 over. dockerd only
# ever creates docker0 itself: a bridge named by --bridge must already exist,
# and --bip cannot be combined with --bridge ("mutually exclusive"), so the
# bridge's IPv4 address is set here. dockerd needs one: it becomes the
# default network's subnet and gateway, and without it dockerd would assign
# the first free pool of its defaults, 172.17.0.0/16, the host daemon's usual
# range. Unique per run: named after the temp dir (at most 15 characters).
BRIDGE_NAME="imgraph-${TMP_ROOT##*.}"

ip4_to_int() { # ip4_to_int A.B.C.D
    local a b c d
    IFS=. read -r a b c d <<<"$1"
    echo $(((a << 24) | (b << 16) | (c << 8) | d))
}

# route_overlaps FIRST LAST: true if an IPv4 route of any table (default
# routes aside) covers an address in [FIRST, LAST] (integers). Every address
# on an interface has a route in table local, so this sees addresses too,
# including the other test environments' bridges.
route_overlaps() {
    local first=$1 last=$2 words dst len lo hi
    while read -r -a words; do
        ((${#words[@]})) || continue
        dst=${words[0]}
        case $dst in
        unicast | local | broadcast | multicast | anycast | unreachable | \
            blackhole | prohibit | throw | nat) dst=${words[1]:-} ;;
        esac
        [[ $dst =~ ^([0-9]+\.){3}[0-9]+(/[0-9]+)?$ ]] || continue # default, nexthop lines
        len=32
        [[ $dst == */* ]] && len=${dst#*/}
        lo=$(($(ip4_to_int "${dst%/*}") & ~((1 << (32 - len)) - 1) & 0xFFFFFFFF))
        hi=$((lo | ((1 << (32 - len)) - 1)))
        ((lo <= last && hi >= first)) && return 0
    done < <(ip -4 route show table all)
    return 1
}

# pick_bridge_net: A.B.C of a random /24 that no route touches: in 10.0.0.0/8,
# else (a VPN may route all of it) in 172.16.0.0/16, which is in none of
# dockerd's default pools.
pick_bridge_net() {
    local i net first
    for ((i = 0; i < 128; i++)); do
        if ((i < 64)); then
            net="10.$((RANDOM % 256)).$((RANDOM % 256))"
        else
            net="172.16.$((RANDOM % 256))"
        fi
        first=$(ip4_to_int "$net.0")
        route_overlaps "$first" "$((first + 255))" || { echo "$net"; return 0; }
    done
    die "no free /24 found for the bridge in 10.0.0.0/8 or 172.16.0.0/16"
}

create_bridge() {
    local net
    net=$(pick_bridge_net)
    ip link add "$BRIDGE_NAME" type bridge ||
        die "could not create bridge $BRIDGE_NAME (left over from a killed run? then delete it: ip link delete $BRIDGE_NAME)"
    BRIDGE=$BRIDGE_NAME
    # No IPv6 on it (the daemon runs without --ipv6): no link-local address
    # and routes for it. A sysctl of this interface only.
    if [[ -e /proc/sys/net/ipv6/conf/$BRIDGE/disable_ipv6 ]]; then
        echo 1 >"/proc/sys/net/ipv6/conf/$BRIDGE/disable_ipv6"
    fi
    # noprefixroute: no route for the /24 enters the host's main table, so
    # should that subnet be in use beyond the default route, only traffic to
    # this one address changes while we run. Containers on the default
    # network (a RUN step of a build that does not ask for network none)
    # get an address here but reach nothing: no forwarding, no masquerade,
    # and no route back from the host.
    ip address add "$net.1/24" dev "$BRIDGE" noprefixroute ||
        die "could not add $net.1/24 to bridge $BRIDGE"
    BRIDGE_ADDR="$net.1/24"
}

# --- dockerd ----------------------------------------------------------------
# A TCP port that nothing on this machine has a socket on (checked in
# /proc/net/tcp{,6}), from a range below the usual ephemeral ports.
pick_port() {
    local port hex used
    for _ in {1..100}; do
        port=$((20000 + RANDOM % 12000))
        printf -v hex ':%04X ' "$port"
        used=$(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
            awk '{print $2" "}' | grep -c -- "$hex" || true)
        ((used == 0)) && { echo "$port"; return 0; }
    done
    die "no free TCP port found"
}

DOCKER_SOCK="$TMP_ROOT/docker.sock"
DOCKERD_LOG="$TMP_ROOT/dockerd.log"
TLS_PORT=""
docker_ping() {
    [[ $(curl -sS --noproxy '*' --max-time 2 --unix-socket "$DOCKER_SOCK" \
        http://localhost/_ping) == OK ]]
}
tls_ping() { # the TCP listener, as a TLS client with the client certificate
    [[ $(curl -sS --noproxy '*' --max-time 2 --cacert "$TLS_CLIENT/ca.pem" \
        --cert "$TLS_CLIENT/cert.pem" --key "$TLS_CLIENT/key.pem" \
        "https://127.0.0.1:$TLS_PORT/_ping") == OK ]]
}
dockerd_ready() { docker_ping && tls_ping; }
# start_dockerd DRIVER; returns 1 if it does not come up. Retries with another
# port when the TLS port was taken between picking and binding.
start_dockerd() {
    local driver=$1 attempt
    for attempt in 1 2 3; do
        TLS_PORT=$(pick_port)
        launch_dockerd "$driver" && return 0
        grep -q "127.0.0.1:$TLS_PORT: bind: address already in use" \
            "$DOCKERD_LOG" || return 1
        log "dockerd could not bind 127.0.0.1:$TLS_PORT (attempt $attempt)"
    done
    return 1
}
launch_dockerd() { # launch_dockerd DRIVER
    local driver=$1
    rm -rf "$TMP_ROOT/docker"
    mkdir -p "$TMP_ROOT/docker"/{data,exec}
    echo '{}' >"$TMP_ROOT/docker/daemon.json" # ignore /etc/docker/daemon.json
    setsid dockerd \
        --config-file "$TMP_ROOT/docker/daemon.json" \
        --data-root "$TMP_ROOT/docker/data" \
        --exec-root "$TMP_ROOT/docker/exec" \
        --pidfile "$TMP_ROOT/docker/dockerd.pid" \
        --host "unix://$DOCKER_SOCK" \
        --host "tcp://127.0.0.1:$TLS_PORT" \
        --tlsverify --tlscacert "$TLS_SERVER/ca.pem" \
        --tlscert "$TLS_SERVER/cert.pem" --tlskey "$TLS_SERVER/key.pem" \
        --containerd "$CTRD_SOCK" \
        --storage-driver "$driver" \
        --exec-opt native.cgroupdriver=cgroupfs \
        --cgroup-parent "/$CGROUP_PARENT" \
        --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
        --bridge "$BRIDGE" \
        --shutdown-timeout 5 \
        >>"$DOCKERD_LOG" 2>&1 </dev/null &
    DOCKERD_PID=$!
    if ! wait_until "$READY_TIMEOUT" "$DOCKERD_PID" dockerd dockerd_ready; then
        show_log dockerd "$DOCKERD_LOG"
        stop_pid "$DOCKERD_PID" dockerd 15
        DOCKERD_PID=""
        return 1
    fi
}

# --- static busybox -----------------------------------------------------------
find_busybox() {
    local bb=${IMGRAPH_TEST_BUSYBOX:-}
    [[ -n $bb ]] || bb=$(command -v busybox) ||
        die "busybox not found; run scripts/install-test-deps.sh"
    bb=$(readlink -f "$bb")
    # ldd fails ("not a dynamic executable") on static binaries.
    if ldd "$bb" >/dev/null 2>&1; then
        die "$bb is dynamically linked; install busybox-static"
    fi
    echo "$bb"
}

# ===========================================================================
BUSYBOX=$(find_busybox)

DRIVER=${IMGRAPH_TEST_STORAGE_DRIVER:-}
DRIVER_FORCED=${DRIVER:+1}
[[ -n $DRIVER ]] || DRIVER=$(detect_storage_driver)

if ! make_tls_certs >"$TMP_ROOT/tls.log" 2>&1; then
    show_log openssl "$TMP_ROOT/tls.log"
    die "could not make the TLS certificates"
fi
start_containerd
create_bridge
if ! start_dockerd "$DRIVER"; then
    if [[ $DRIVER == overlay2 && -z $DRIVER_FORCED ]]; then
        log "dockerd failed with overlay2; retrying with vfs"
        DRIVER=vfs
        start_dockerd "$DRIVER" || die "dockerd did not start (see log above)"
    else
        die "dockerd did not start (see log above)"
    fi
fi

# --- environment for CMD -----------------------------------------------------
unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_TLS
export DOCKER_HOST="unix://$DOCKER_SOCK"
export DOCKER_CONFIG="$TMP_ROOT/docker-config" # keep `docker login` private
mkdir -p "$DOCKER_CONFIG"
echo '{}' >"$DOCKER_CONFIG/config.json"
export IMGRAPH_TEST_ENV=1
export IMGRAPH_TEST_BUSYBOX="$BUSYBOX"
export IMGRAPH_TEST_BASE_IMAGE=imgraph-test/busybox:1
export IMGRAPH_TEST_DOCKERD_LOG="$DOCKERD_LOG"
export IMGRAPH_TEST_TLS_HOST="tcp://127.0.0.1:$TLS_PORT"
export IMGRAPH_TEST_CERT_PATH="$TLS_CLIENT"

# --- base image ---------------------------------------------------------------
ctx="$TMP_ROOT/base-image"
mkdir -p "$ctx"
cp "$BUSYBOX" "$ctx/busybox"
cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
EOF
if ! docker build --network none -q -t "$IMGRAPH_TEST_BASE_IMAGE" "$ctx" \
    >"$TMP_ROOT/base-image.log" 2>&1; then
    show_log "base image build" "$TMP_ROOT/base-image.log"
    show_log dockerd "$DOCKERD_LOG"
    die "could not build $IMGRAPH_TEST_BASE_IMAGE"
fi
rm -rf "$ctx"

log "ready in $((SECONDS - START_SECONDS))s: storage=$DRIVER" \
    "DOCKER_HOST=$DOCKER_HOST" \
    "tls-host=$IMGRAPH_TEST_TLS_HOST bridge=$BRIDGE ($BRIDGE_ADDR)"

# --- run CMD ----------------------------------------------------------------
# CMD runs in the background so that a TERM sent to this script reaches the
# trap at once (a foreground child would delay it until CMD exits). It keeps
# our stdin and process group (so it still owns the terminal), and
# `env --default-signal` undoes bash's ignoring of INT/QUIT in background
# children, so Ctrl-C still reaches it. Without that env option: foreground.
set +e
if env --default-signal=INT true 2>/dev/null; then
    env --default-signal=INT,QUIT "$@" <&0 &
    CMD_PID=$!
    wait "$CMD_PID"
    status=$?
else
    "$@"
    status=$?
fi
set -e
exit "$status"
