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
#   * a second private dockerd, standing in for a remote (native arm64)
#     builder: same containerd (namespaces moby2 and plugins.moby2), its own
#     socket, data-root, exec-root, pidfile, config file, bridge
#     (imgraph2-XXXXXX) and cgroup parent (nested in the first one's);
#   * QEMU user emulation of arm64 (qemu-aarch64 in binfmt_misc: mounted if it
#     is not, the format enabled if it is not; shared with the other test
#     environments running at the same time, and put back as it was found by
#     the last of them to exit: see "QEMU" below);
# builds the base images, FROM scratch + a static busybox, network none, in
# the first daemon: imgraph-test/busybox:1 for the host's platform (amd64)
# and imgraph-test/busybox-arm64:1 for linux/arm64, whose RUN step runs the
# arm64 busybox under emulation (so emulation is known to work, or the script
# fails saying it does not); loads both into the second daemon (docker save |
# docker load), and runs CMD with these variables exported:
#   DOCKER_HOST=unix://<tmp>/docker.sock   DOCKER_CONFIG=<tmp>/docker-config
#   IMGRAPH_TEST_ENV=1
#   IMGRAPH_TEST_BUSYBOX=<path of the static busybox>
#   IMGRAPH_TEST_BUSYBOX_ARM64=<path of the static arm64 busybox>
#   IMGRAPH_TEST_BASE_IMAGE=imgraph-test/busybox:1
#   IMGRAPH_TEST_ARM64_BASE_IMAGE=imgraph-test/busybox-arm64:1
#   IMGRAPH_TEST_DOCKERD_LOG=<tmp>/dockerd.log
#   IMGRAPH_TEST_TLS_HOST=tcp://127.0.0.1:PORT (the same daemon, TLS only)
#   IMGRAPH_TEST_CERT_PATH=<tmp>/tls/client, with ca.pem cert.pem key.pem (a
#     client's DOCKER_CERT_PATH for it; DOCKER_TLS_VERIFY itself stays unset;
#     the daemon's own files are in the sibling <tmp>/tls/server)
#   IMGRAPH_TEST_DOCKER_HOST_2=unix://<tmp>/docker2.sock (the second daemon)
#   IMGRAPH_TEST_SSH_HOST=ssh://root@127.0.0.1:PORT (the second daemon again,
#     through a private sshd: see "sshd" below)
#   IMGRAPH_TEST_SSH_PATH=<tmp>/ssh/bin (its `ssh` client, to put first on PATH)
# and on exit (normal, INT or TERM) stops everything it started by PID
# (both dockerds, containerd, sshd; then, if a dockerd died or hung, container
# processes found by our cgroup and shims found by our socket path), deletes
# the bridges, puts binfmt_misc back as it was (if it is the last environment
# using it), unmounts whatever is left mounted under the temp dir, removes it
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
# IMGRAPH_TEST_BUSYBOX and IMGRAPH_TEST_BUSYBOX_ARM64 choose the busybox
# binaries (default: busybox on PATH, and the one install-test-deps.sh caches
# in ${IMGRAPH_TEST_CACHE:-~/.cache/imgraph-test}/busybox-arm64/busybox).
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
    setsid mount umount ip update-binfmts flock; do
    command -v "$c" >/dev/null 2>&1 ||
        die "'$c' not found; run scripts/install-test-deps.sh"
done

START_US=${EPOCHREALTIME//[!0-9]/} # microseconds
READY_TIMEOUT=${IMGRAPH_TEST_READY_TIMEOUT:-60} # seconds, per service

# --- state used by the cleanup trap -----------------------------------------
TMP_ROOT=""
DOCKERD_PID=""
DOCKERD2_PID=""
SSHD_PID=""
CONTAINERD_PID=""
CGROUP_PARENT=""
BRIDGES=() # those we have created (never delete someone else's)
JOBS=()    # background jobs of this script (the base image builds)
QEMU_USER="" # set while we are registered as a user of arm64 emulation
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

# --- QEMU ---------------------------------------------------------------------
# arm64 programs (RUN steps of linux/arm64 builds, arm64 containers) run
# through qemu-aarch64-static, registered in the kernel's binfmt_misc by
# update-binfmts (qemu-user-static's format, with the F flag: the kernel opens
# the interpreter at registration, so it works inside any container). That
# registration is host-wide, and so is the binfmt_misc mount: they are shared
# by every test environment running at once (nested ones too: tests/it/host.rs
# starts one inside the suite's). So, under an flock on QEMU_STATE/lock, each
# run registers itself in QEMU_STATE/users/ while it needs emulation; the
# first one records in QEMU_STATE/prior the state it found (binfmt_misc
# mounted or not, then qemu-aarch64 absent, enabled or disabled, and
# binfmt_misc's own status) before it changes anything, and the last one out
# puts that state back and removes QEMU_STATE. A run killed without its
# cleanup leaves its user file behind; the next run drops it (its PID is dead
# or its temp dir gone) and the prior state recorded then still stands.
# QEMU_STATE is on tmpfs, like the kernel state it describes. Only QEMU_FORMAT
# is ever enabled; install-test-deps.sh registers qemu's formats with
# binfmt-support without enabling any.
QEMU_STATE=/run/imgraph-test-qemu
BINFMT=/proc/sys/fs/binfmt_misc
QEMU_FORMAT=qemu-aarch64
QEMU_LOCK_FD=""

qemu_lock() {
    local i
    [[ -z $QEMU_LOCK_FD ]] || return 0 # already held (a signal during qemu_acquire)
    for ((i = 0; i < 20; i++)); do
        mkdir -p "$QEMU_STATE/users"
        { exec {QEMU_LOCK_FD}>>"$QEMU_STATE/lock"; } 2>/dev/null || continue
        if ! flock -w 60 "$QEMU_LOCK_FD"; then
            log "$QEMU_STATE/lock still held after 60s"
            break
        fi
        # The last run out removes QEMU_STATE: is ours still the file there?
        [[ $(stat -c %d:%i "$QEMU_STATE/lock" 2>/dev/null) == \
            "$(stat -L -c %d:%i "/proc/$BASHPID/fd/$QEMU_LOCK_FD")" ]] && return 0
        exec {QEMU_LOCK_FD}>&-
    done
    [[ -z $QEMU_LOCK_FD ]] || exec {QEMU_LOCK_FD}>&-
    QEMU_LOCK_FD=""
    return 1
}
qemu_unlock() {
    exec {QEMU_LOCK_FD}>&-
    QEMU_LOCK_FD=""
}

# qemu_prune_users: drop the user files of runs that are gone.
qemu_prune_users() {
    local f pid
    for f in "$QEMU_STATE"/users/*; do
        [[ -f $f ]] || continue
        pid=""
        read -r pid <"$f" || true
        if [[ -z $pid ]] || ! alive "$pid" || [[ ! -d /tmp/${f##*/} ]]; then
            rm -f "$f"
        fi
    done
}

mount_binfmt_misc() {
    mount -t binfmt_misc -o nodev,noexec,nosuid binfmt_misc "$BINFMT" ||
        die "could not mount binfmt_misc on $BINFMT"
}

qemu_acquire() {
    local mounted="" entry="" status=""
    qemu_lock || die "could not lock $QEMU_STATE/lock"
    qemu_prune_users
    # Registered first: from here on, the cleanup puts back what we change.
    QEMU_USER="$QEMU_STATE/users/${TMP_ROOT##*/}"
    echo "$$" >"$QEMU_USER"
    # The prior state, recorded in two steps (a run stopped between them has
    # changed the mount only); completed here if a killed run left it halfway.
    [[ -f $QEMU_STATE/prior ]] && read -r mounted entry status <"$QEMU_STATE/prior"
    if [[ -z $mounted ]]; then
        mounted=1
        [[ -e $BINFMT/register ]] || mounted=0
        echo "$mounted" >"$QEMU_STATE/prior"
        ((mounted)) || mount_binfmt_misc
    fi
    if [[ -z $entry ]]; then
        [[ -e $BINFMT/register ]] || mount_binfmt_misc
        entry=absent
        [[ -e $BINFMT/$QEMU_FORMAT ]] && read -r entry <"$BINFMT/$QEMU_FORMAT"
        read -r status <"$BINFMT/status"
        echo "$mounted $entry $status" >"$QEMU_STATE/prior"
        log "qemu: binfmt_misc found mounted=$mounted status=$status," \
            "$QEMU_FORMAT $entry: put back on exit"
    fi
    # Make emulation available (each step a no-op when an earlier run did it).
    [[ -e $BINFMT/register ]] || mount_binfmt_misc
    read -r status <"$BINFMT/status"
    [[ $status == enabled ]] || echo 1 >"$BINFMT/status"
    if [[ ! -e $BINFMT/$QEMU_FORMAT ]]; then
        update-binfmts --enable "$QEMU_FORMAT" ||
            die "could not enable $QEMU_FORMAT (update-binfmts); run scripts/install-test-deps.sh"
    else
        read -r entry <"$BINFMT/$QEMU_FORMAT"
        [[ $entry == enabled ]] || echo 1 >"$BINFMT/$QEMU_FORMAT"
    fi
    qemu_unlock
}

# qemu_release: unregister; the last run out puts back the recorded state.
# (Called by the cleanup only, with set +e.)
qemu_release() {
    local mounted="" entry="" status="" users
    [[ -n $QEMU_USER ]] || return 0
    if ! qemu_lock; then
        log "warning: binfmt_misc left as it is: could not lock $QEMU_STATE/lock"
        return 0
    fi
    rm -f "$QEMU_USER"
    QEMU_USER=""
    qemu_prune_users
    users=("$QEMU_STATE"/users/*)
    if [[ ! -e ${users[0]} ]]; then
        [[ -f $QEMU_STATE/prior ]] && read -r mounted entry status <"$QEMU_STATE/prior"
        if [[ -e $BINFMT/register ]]; then
            # (entry and status are empty if we were stopped before reading them:
            # then all we changed is the mount)
            case $entry in
            absent) update-binfmts --disable "$QEMU_FORMAT" ;;
            disabled) echo 0 >"$BINFMT/$QEMU_FORMAT" ;;
            esac
            [[ $status == disabled ]] && echo 0 >"$BINFMT/status"
            if [[ $mounted == 0 ]] && ! umount "$BINFMT"; then
                log "warning: could not unmount $BINFMT"
            fi
        fi
        rm -rf "$QEMU_STATE"
        [[ -z $entry ]] || log "qemu: binfmt_misc put back as found"
    fi
    qemu_unlock
}

# kill_containers PID SOCKET: kill the containers still running in the dockerd
# PID (its own shutdown would give each one a 10 s stop timeout first).
kill_containers() {
    local ids
    [[ -n $1 ]] && alive "$1" || return 0
    mapfile -t ids < <(timeout 10 docker -H "unix://$2" ps -q 2>/dev/null)
    if ((${#ids[@]})); then
        timeout 10 docker -H "unix://$2" kill "${ids[@]}" >/dev/null 2>&1
    fi
    return 0
}

cleanup() {
    local rc=$? mnt bridge pid
    [[ -n $CLEANED_UP ]] && return
    CLEANED_UP=1
    set +e
    trap '' INT TERM
    [[ -n $TMP_ROOT ]] || exit "$rc"

    # Our jobs first (their docker clients end with the daemons), then both
    # dockerds at the same time, then containerd.
    for pid in "${JOBS[@]}"; do
        stop_pid "$pid" job 5
    done
    stop_pid "$SSHD_PID" sshd 5
    kill_containers "$DOCKERD_PID" "$TMP_ROOT/docker.sock"
    kill_containers "$DOCKERD2_PID" "$TMP_ROOT/docker2.sock"
    for pid in "$DOCKERD_PID" "$DOCKERD2_PID"; do
        [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null
    done
    stop_pid "$DOCKERD_PID" dockerd 15
    stop_pid "$DOCKERD2_PID" dockerd2 15
    stop_pid "$CONTAINERD_PID" containerd 10
    # Only if dockerd/containerd died or hung: container processes (a
    # container's PID 1 ignores TERM, so KILL) and then their shims.
    kill_leftovers container_pids KILL
    kill_leftovers shim_pids TERM KILL
    remove_cgroups
    # After the dockerds: they would otherwise notice their bridges going away.
    for bridge in "${BRIDGES[@]}"; do
        ip link delete "$bridge" type bridge ||
            log "warning: could not delete bridge $bridge"
    done
    # After every container: none runs under emulation any more.
    qemu_release

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
# range. Unique per run: named after the temp dir (at most 15 characters);
# the second daemon's is imgraph2-XXXXXX.
BRIDGE="imgraph-${TMP_ROOT##*.}"
BRIDGE2="imgraph2-${TMP_ROOT##*.}"
BRIDGE_INFO=() # "NAME (ADDRESS)" of each, for the log

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

create_bridge() { # create_bridge NAME
    local bridge=$1 net
    net=$(pick_bridge_net)
    ip link add "$bridge" type bridge ||
        die "could not create bridge $bridge (left over from a killed run? then delete it: ip link delete $bridge)"
    BRIDGES+=("$bridge")
    # No IPv6 on it (the daemon runs without --ipv6): no link-local address
    # and routes for it. A sysctl of this interface only.
    if [[ -e /proc/sys/net/ipv6/conf/$bridge/disable_ipv6 ]]; then
        echo 1 >"/proc/sys/net/ipv6/conf/$bridge/disable_ipv6"
    fi
    # noprefixroute: no route for the /24 enters the host's main table, so
    # should that subnet be in use beyond the default route, only traffic to
    # this one address changes while we run. Containers on the default
    # network (a RUN step of a build that does not ask for network none)
    # get an address here but reach nothing: no forwarding, no masquerade,
    # and no route back from the host.
    ip address add "$net.1/24" dev "$bridge" noprefixroute ||
        die "could not add $net.1/24 to bridge $bridge"
    BRIDGE_INFO+=("$bridge ($net.1/24)")
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
DOCKER2_SOCK="$TMP_ROOT/docker2.sock"
DOCKERD2_LOG="$TMP_ROOT/dockerd2.log"
TLS_PORT=""
docker_ping() { # docker_ping SOCKET
    [[ $(curl -sS --noproxy '*' --max-time 2 --unix-socket "$1" \
        http://localhost/_ping) == OK ]]
}
tls_ping() { # the TCP listener, as a TLS client with the client certificate
    [[ $(curl -sS --noproxy '*' --max-time 2 --cacert "$TLS_CLIENT/ca.pem" \
        --cert "$TLS_CLIENT/cert.pem" --key "$TLS_CLIENT/key.pem" \
        "https://127.0.0.1:$TLS_PORT/_ping") == OK ]]
}
dockerd_ready() { docker_ping "$DOCKER_SOCK" && tls_ping; }
# start_dockerd: the first daemon, with storage driver $DRIVER; returns 1 if it
# does not come up. Retries with another port when the TLS port was taken
# between picking and binding.
start_dockerd() {
    local attempt
    for attempt in 1 2 3; do
        TLS_PORT=$(pick_port)
        launch_dockerd && return 0
        grep -q "127.0.0.1:$TLS_PORT: bind: address already in use" \
            "$DOCKERD_LOG" || return 1
        log "dockerd could not bind 127.0.0.1:$TLS_PORT (attempt $attempt)"
    done
    return 1
}
# run_dockerd DIR LOG ARGS...: a dockerd in the background (its PID in $!),
# with what both daemons have: a config file, data root, exec root and
# pidfile of its own under DIR, our containerd, storage driver $DRIVER,
# cgroupfs, no iptables, forwarding or masquerading; ARGS add the rest.
run_dockerd() {
    local dir=$1 log=$2
    shift 2
    rm -rf "$dir"
    mkdir -p "$dir"/{data,exec}
    echo '{}' >"$dir/daemon.json" # ignore /etc/docker/daemon.json
    setsid dockerd \
        --config-file "$dir/daemon.json" \
        --data-root "$dir/data" \
        --exec-root "$dir/exec" \
        --pidfile "$dir/dockerd.pid" \
        --containerd "$CTRD_SOCK" \
        --storage-driver "$DRIVER" \
        --exec-opt native.cgroupdriver=cgroupfs \
        --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
        --shutdown-timeout 5 \
        "$@" >>"$log" 2>&1 </dev/null &
}
launch_dockerd() {
    run_dockerd "$TMP_ROOT/docker" "$DOCKERD_LOG" \
        --host "unix://$DOCKER_SOCK" \
        --host "tcp://127.0.0.1:$TLS_PORT" \
        --tlsverify --tlscacert "$TLS_SERVER/ca.pem" \
        --tlscert "$TLS_SERVER/cert.pem" --tlskey "$TLS_SERVER/key.pem" \
        --cgroup-parent "/$CGROUP_PARENT" \
        --bridge "$BRIDGE"
    DOCKERD_PID=$!
    if ! wait_until "$READY_TIMEOUT" "$DOCKERD_PID" dockerd dockerd_ready; then
        show_log dockerd "$DOCKERD_LOG"
        stop_pid "$DOCKERD_PID" dockerd 15
        DOCKERD_PID=""
        return 1
    fi
}
# The second daemon, once the first one is up (and its storage driver known):
# not waited for here, it starts while the base images build. Its
# containers' cgroups are nested in the first one's parent, where the cleanup
# looks for leftovers.
launch_dockerd2() {
    run_dockerd "$TMP_ROOT/docker2" "$DOCKERD2_LOG" \
        --host "unix://$DOCKER2_SOCK" \
        --containerd-namespace moby2 \
        --containerd-plugins-namespace plugins.moby2 \
        --cgroup-parent "/$CGROUP_PARENT/docker2" \
        --bridge "$BRIDGE2"
    DOCKERD2_PID=$!
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
# The arm64 one: ldd cannot tell, but Debian's busybox-static is static.
find_arm64_busybox() {
    local bb=${IMGRAPH_TEST_BUSYBOX_ARM64:-${IMGRAPH_TEST_CACHE:-$HOME/.cache/imgraph-test}/busybox-arm64/busybox}
    [[ -f $bb && -x $bb ]] ||
        die "no arm64 busybox at $bb; run scripts/install-test-deps.sh"
    readlink -f "$bb"
}

# --- sshd: the second daemon over ssh:// --------------------------------------
# The OpenSSH server that install-test-deps.sh unpacked (never installed), in a
# mount namespace of its own where /etc/passwd also has its privilege-separation
# user and /run is a private tmpfs (for /run/sshd): nothing changes outside it.
# It listens on a free loopback port; root logs in with a key of ours only, and
# its authorized_keys entry forces `docker system dial-stdio` against the second
# daemon, as that machine's own Docker would answer. The client side is an
# `ssh` in $TMP_ROOT/ssh/bin (first on PATH for the tests that use it) that runs
# the real one with our own config: that key, and a known_hosts holding the
# server's key, so ~/.ssh is neither read nor written.
find_sshd() {
    local root=${IMGRAPH_TEST_SSHD_ROOT:-${IMGRAPH_TEST_CACHE:-$HOME/.cache/imgraph-test}/openssh-server}
    [[ -x $root/usr/sbin/sshd ]] ||
        die "no sshd under $root; run scripts/install-test-deps.sh"
    readlink -f "$root"
}
# Ready once it says it listens (a connection could reach someone else's port).
sshd_ready() { grep -q "Server listening on 127.0.0.1 port $SSH_PORT\." "$TMP_ROOT/sshd.log"; }
start_sshd() {
    local root dir="$TMP_ROOT/ssh" libs option
    root=$(find_sshd)
    mkdir -p "$dir/bin"
    ssh-keygen -q -t ed25519 -N '' -C imgraph-test-host -f "$dir/host_key"
    ssh-keygen -q -t ed25519 -N '' -C imgraph-test-client -f "$dir/client_key"
    option="command=\"DOCKER_HOST=unix://$DOCKER2_SOCK DOCKER_CONFIG=$DOCKER_CONFIG exec docker system dial-stdio\""
    echo "$option,no-pty,no-port-forwarding,no-agent-forwarding,no-X11-forwarding $(cat "$dir/client_key.pub")" \
        >"$dir/authorized_keys"
    SSH_PORT=$(pick_port)
    cat >"$dir/sshd_config" <<EOF
ListenAddress 127.0.0.1:$SSH_PORT
HostKey $dir/host_key
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
AllowUsers root
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
EOF
    # OpenSSH 9.8 and later run helpers of their own from their build path.
    [[ -x $root/usr/lib/openssh/sshd-session ]] &&
        echo "SshdSessionPath $root/usr/lib/openssh/sshd-session" >>"$dir/sshd_config"
    [[ -x $root/usr/lib/openssh/sshd-auth ]] &&
        echo "SshdAuthPath $root/usr/lib/openssh/sshd-auth" >>"$dir/sshd_config"
    { grep -v '^sshd:' /etc/passwd; echo 'sshd:x:65534:65534::/run/sshd:/usr/sbin/nologin'; } >"$dir/passwd"
    cat >"$dir/ssh_config" <<EOF
Host 127.0.0.1
    IdentityFile $dir/client_key
    IdentitiesOnly yes
    UserKnownHostsFile $dir/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
EOF
    echo "[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1-2 "$dir/host_key.pub")" >"$dir/known_hosts"
    printf '#!/bin/sh\nexec %s -F %s "$@"\n' "$(command -v ssh)" "$dir/ssh_config" >"$dir/bin/ssh"
    chmod 0755 "$dir/bin/ssh"
    libs="$root/usr/lib/$(uname -m)-linux-gnu:$root/lib/$(uname -m)-linux-gnu"
    # shellcheck disable=SC2016 # ($0, $1, $2 are that sh's)
    setsid unshare --mount --propagation private -- sh -c \
        'mount --bind "$0/passwd" /etc/passwd && mount -t tmpfs -o mode=0755 tmpfs /run &&
         mkdir -m 0755 /run/sshd && exec env LD_LIBRARY_PATH="$1" "$2" -D -e -f "$0/sshd_config"' \
        "$dir" "$libs" "$root/usr/sbin/sshd" >>"$TMP_ROOT/sshd.log" 2>&1 </dev/null &
    SSHD_PID=$!
    if ! wait_until "$READY_TIMEOUT" "$SSHD_PID" sshd sshd_ready; then
        show_log sshd "$TMP_ROOT/sshd.log"
        die "sshd did not start"
    fi
}

# --- base images ------------------------------------------------------------
# make_base TAG BUSYBOX LOG [BUILD_OPTIONS...]: builds TAG in the first daemon
# (FROM scratch, the static busybox BUSYBOX and its applet links, network
# none), then, once the second daemon is up, copies it there. Exit status: 1
# if the build failed, 2 if the second daemon did not come up, 3 if the copy
# failed; LOG says more.
make_base() {
    local tag=$1 bb=$2 log=$3 ctx
    shift 3
    ctx=$(mktemp -d "$TMP_ROOT/base-image.XXXXXX")
    cp "$bb" "$ctx/busybox"
    cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
EOF
    docker build --network none -q -t "$tag" "$@" "$ctx" >"$log" 2>&1 || return 1
    rm -rf "$ctx"
    wait_until "$READY_TIMEOUT" "$DOCKERD2_PID" dockerd2 \
        docker_ping "$DOCKER2_SOCK" 2>>"$log" || return 2
    { docker save "$tag" | docker -H "unix://$DOCKER2_SOCK" load -q; } >>"$log" 2>&1 || return 3
}

# base_failed TAG LOG STATUS: the error for make_base's STATUS.
base_failed() {
    local tag=$1 log=$2
    case $3 in
    1)
        show_log "$tag build" "$log"
        if grep -q "exec format error" "$log"; then
            die "arm64 emulation does not work: the kernel could not run the" \
                "arm64 busybox in the RUN step of $tag (exec format error)." \
                "$BINFMT/$QEMU_FORMAT: $(tr '\n' ' ' <"$BINFMT/$QEMU_FORMAT" 2>&1)"
        fi
        show_log dockerd "$DOCKERD_LOG"
        die "could not build $tag"
        ;;
    2)
        show_log dockerd2 "$DOCKERD2_LOG"
        die "the second dockerd did not start"
        ;;
    *)
        show_log "$tag copy" "$log"
        die "could not load $tag into the second dockerd"
        ;;
    esac
}

# ===========================================================================
BUSYBOX=$(find_busybox)
BUSYBOX_ARM64=$(find_arm64_busybox)

DRIVER=${IMGRAPH_TEST_STORAGE_DRIVER:-}
DRIVER_FORCED=${DRIVER:+1}
[[ -n $DRIVER ]] || DRIVER=$(detect_storage_driver)

qemu_acquire
if ! make_tls_certs >"$TMP_ROOT/tls.log" 2>&1; then
    show_log openssl "$TMP_ROOT/tls.log"
    die "could not make the TLS certificates"
fi
start_containerd
create_bridge "$BRIDGE"
create_bridge "$BRIDGE2"
if ! start_dockerd; then
    if [[ $DRIVER == overlay2 && -z $DRIVER_FORCED ]]; then
        log "dockerd failed with overlay2; retrying with vfs"
        DRIVER=vfs
        start_dockerd || die "dockerd did not start (see log above)"
    else
        die "dockerd did not start (see log above)"
    fi
fi
launch_dockerd2

# --- environment for CMD -----------------------------------------------------
unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_TLS
export DOCKER_HOST="unix://$DOCKER_SOCK"
export DOCKER_CONFIG="$TMP_ROOT/docker-config" # keep `docker login` private
mkdir -p "$DOCKER_CONFIG"
echo '{}' >"$DOCKER_CONFIG/config.json"
export IMGRAPH_TEST_ENV=1
export IMGRAPH_TEST_BUSYBOX="$BUSYBOX"
export IMGRAPH_TEST_BUSYBOX_ARM64="$BUSYBOX_ARM64"
export IMGRAPH_TEST_BASE_IMAGE=imgraph-test/busybox:1
export IMGRAPH_TEST_ARM64_BASE_IMAGE=imgraph-test/busybox-arm64:1
export IMGRAPH_TEST_DOCKERD_LOG="$DOCKERD_LOG"
export IMGRAPH_TEST_TLS_HOST="tcp://127.0.0.1:$TLS_PORT"
export IMGRAPH_TEST_CERT_PATH="$TLS_CLIENT"
export IMGRAPH_TEST_DOCKER_HOST_2="unix://$DOCKER2_SOCK"
start_sshd
export IMGRAPH_TEST_SSH_HOST="ssh://root@127.0.0.1:$SSH_PORT"
export IMGRAPH_TEST_SSH_PATH="$TMP_ROOT/ssh/bin"

# --- base images --------------------------------------------------------------
# Both at once: each build is mostly waiting for its RUN container, and each
# image is copied into the second daemon while the other may still build.
make_base "$IMGRAPH_TEST_BASE_IMAGE" "$BUSYBOX" "$TMP_ROOT/base-image.log" &
amd64_job=$!
JOBS+=("$amd64_job")
make_base "$IMGRAPH_TEST_ARM64_BASE_IMAGE" "$BUSYBOX_ARM64" \
    "$TMP_ROOT/base-image-arm64.log" --platform linux/arm64 &
arm64_job=$!
JOBS+=("$arm64_job")
amd64_status=0 arm64_status=0
wait "$amd64_job" || amd64_status=$?
wait "$arm64_job" || arm64_status=$?
((arm64_status == 0)) ||
    base_failed "$IMGRAPH_TEST_ARM64_BASE_IMAGE" "$TMP_ROOT/base-image-arm64.log" "$arm64_status"
((amd64_status == 0)) ||
    base_failed "$IMGRAPH_TEST_BASE_IMAGE" "$TMP_ROOT/base-image.log" "$amd64_status"

elapsed_ms=$(((${EPOCHREALTIME//[!0-9]/} - START_US) / 1000))
log "ready in $((elapsed_ms / 1000)).$((elapsed_ms % 1000 / 100))s:" \
    "storage=$DRIVER DOCKER_HOST=$DOCKER_HOST" \
    "tls-host=$IMGRAPH_TEST_TLS_HOST docker-host-2=$IMGRAPH_TEST_DOCKER_HOST_2" \
    "ssh-host=$IMGRAPH_TEST_SSH_HOST" \
    "bridges=${BRIDGE_INFO[*]}"

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
