#!/usr/bin/env bash
# Build the images the kubelet and the tests use, locally: no registry is reachable, so every
# image is FROM scratch or FROM another image built here (docs/docker.md).
#   kubeling/pause:3.10 registry.k8s.io/pause:3.10           pause.c, gcc -static
#   busybox:1.35 busybox:latest docker.io/library/busybox:latest   Debian's busybox-static
#   nginx:1.25 nginx:latest kubeling/http-echo:latest          Debian's nginx on busybox
# and then the docker compose cluster's images (deploy/build-cluster-images.sh, sourced at the end):
#   kubeling/debian:bookworm, kubeling/python:bookworm, kubeling/control-plane:{deps,dev},
#   kubeling/node:{deps,dev}, kubeling/registry:2
# Idempotent and fast when nothing changed: each image carries io.kubeling.image=1 and
# io.kubeling.hash, a digest of its inputs (this script, deploy/images/NAME, the Debian
# packages and host files it is made of); an image is rebuilt only when the digest differs.
# Debian packages are fetched with `apt-get download` into a cache and unpacked, never
# installed on the host (nginx's service, busybox's conflicts), except gcc and libc6-dev.
set -euo pipefail

DEPLOY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAGES=$DEPLOY/images
SELF=$DEPLOY/build-images.sh
export DOCKER_BUILDKIT=0   # the classic builder: BuildKit is not in the 20.10 client path here and would pull its frontend

fail() { echo "build-images: $*" >&2; exit 1; }

docker info >/dev/null 2>&1 || fail "no Docker engine answers: run deploy/install-docker.sh (make deps)"

SUDO=""
if [ "$(id -u)" -eq 0 ]; then
    CACHE=${KUBELING_CACHE:-/var/cache/kubeling}
else
    CACHE=${KUBELING_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubeling}
    SUDO="sudo"
fi
DEBS=$CACHE/debs
mkdir -p "$DEBS"
WORK=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

apt_updated=0
apt_update() {
    [ $apt_updated -eq 1 ] && return 0
    $SUDO apt-get update -qq >"$WORK/apt.log" 2>&1 || fail "apt-get update failed: $(tail -n 1 "$WORK/apt.log")"
    apt_updated=1
}

apt_install() {  # apt_install PKG...: install Debian packages on the host
    apt_update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >"$WORK/apt.log" 2>&1 \
        || fail "apt-get install $* failed: $(tail -n 1 "$WORK/apt.log")"
}

deb() {  # deb PKG: the cached .deb of Debian's PKG (downloaded once, not installed)
    local f
    f=$(ls "$DEBS/$1"_*.deb 2>/dev/null | head -n 1)
    if [ -z "$f" ]; then
        if ! (cd "$DEBS" && apt-get download -qq "$1" >/dev/null 2>&1); then
            apt_update
            (cd "$DEBS" && apt-get download -qq "$1" >/dev/null 2>&1) || fail "apt-get download $1 failed"
        fi
        f=$(ls "$DEBS/$1"_*.deb 2>/dev/null | head -n 1)
        [ -n "$f" ] || fail "apt-get download $1 left no .deb in $DEBS"
    fi
    echo "$f"
}

digest() {  # digest FILE...: a short hash of the files' names (relative) and contents, plus stdin
    {
        cat
        local f
        for f in "$@"; do
            printf '== %s\n' "${f#"$DEPLOY"/}"
            if [ -L "$f" ]; then readlink "$f"; else cat "$f"; fi
        done
    } | sha256sum | cut -c1-20
}

image_files() { find "$IMAGES/$1" \( -type f -o -type l \) | LC_ALL=C sort; }

current() {  # current TAG...: prints the hash label if every tag names an image with one hash
    local out
    out=$(docker image inspect -f '{{index .Config.Labels "io.kubeling.hash"}}' "$@" 2>/dev/null) || return 1
    out=$(printf '%s\n' "$out" | sort -u)
    [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] && [ -n "$out" ] && [ "$out" != "<no value>" ] || return 1
    printf '%s\n' "$out"
}

build() {  # build NAME HASH CONTEXT TAG...
    local name=$1 hash=$2 ctx=$3 old log args=()
    shift 3
    for t in "$@"; do args+=(-t "$t"); done
    old=$(docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true)
    log=$CACHE/build-$name.log
    if ! docker build --label io.kubeling.image=1 --label "io.kubeling.hash=$hash" \
            --label "io.kubeling.name=$name" "${args[@]}" "$ctx" >"$log" 2>&1; then
        fail "docker build of $name failed: $(grep -vE '^( ---|Step |DEPRECATED|\s*$)' "$log" | tail -n 1) (log $log)"
    fi
    # The replaced image, now untagged: remove it unless a container still uses it.
    if [ -n "$old" ] && [ "$(docker image inspect -f '{{len .RepoTags}}' "$old" 2>/dev/null)" = "0" ]; then
        docker image rm "$old" >/dev/null 2>&1 || true
    fi
    echo "built $name ($*)"
}

# --- pause -----------------------------------------------------------------------------
PAUSE_TAGS=(kubeling/pause:3.10 registry.k8s.io/pause:3.10)
command -v gcc >/dev/null 2>&1 || apt_install gcc libc6-dev
libc_a=$(gcc -print-file-name=libc.a)
[ -f "$libc_a" ] || { apt_install libc6-dev; libc_a=$(gcc -print-file-name=libc.a); }
[ -f "$libc_a" ] || fail "no static libc (libc.a) for gcc -static after installing libc6-dev"
pause_hash=$(gcc --version | head -n 1 | digest "$SELF" "$libc_a" $(image_files pause))
if [ "$(current "${PAUSE_TAGS[@]}" || true)" != "$pause_hash" ]; then
    ctx=$WORK/pause
    mkdir -p "$ctx"
    cp "$IMAGES/pause/Dockerfile" "$ctx/"
    gcc -static -Os -Wall -o "$ctx/pause" "$IMAGES/pause/pause.c" 2>"$WORK/gcc.log" \
        || fail "gcc -static pause.c failed: $(tail -n 1 "$WORK/gcc.log")"
    strip "$ctx/pause"
    build pause "$pause_hash" "$ctx" "${PAUSE_TAGS[@]}"
fi

# --- busybox ---------------------------------------------------------------------------
BUSYBOX_TAGS=(busybox:1.35 busybox:latest docker.io/library/busybox:latest)
busybox_deb=$(deb busybox-static)
busybox_hash=$(digest "$SELF" "$busybox_deb" $(image_files busybox) </dev/null)
if [ "$(current "${BUSYBOX_TAGS[@]}" || true)" != "$busybox_hash" ]; then
    ctx=$WORK/busybox
    root=$ctx/rootfs
    mkdir -p "$WORK/busybox-deb" "$root/bin" "$root/root" "$root/home" "$root/tmp" "$root/var/tmp"
    dpkg-deb -x "$busybox_deb" "$WORK/busybox-deb"
    cp "$WORK/busybox-deb/bin/busybox" "$root/bin/busybox"
    for applet in $("$root/bin/busybox" --list-full); do
        [ "$applet" = bin/busybox ] && continue
        mkdir -p "$root/$(dirname "$applet")"
        ln -sfn /bin/busybox "$root/$applet"
    done
    cp -a "$IMAGES/busybox/rootfs/." "$root/"
    chmod 1777 "$root/tmp" "$root/var/tmp"
    chmod 700 "$root/root"
    cp "$IMAGES/busybox/Dockerfile" "$ctx/"
    build busybox "$busybox_hash" "$ctx" "${BUSYBOX_TAGS[@]}"
fi

# --- nginx -----------------------------------------------------------------------------
NGINX_TAGS=(nginx:1.25 nginx:latest kubeling/http-echo:latest)
nginx_deb=$(deb nginx)
nginx_common_deb=$(deb nginx-common)
mkdir -p "$WORK/nginx-deb"
dpkg-deb -x "$nginx_deb" "$WORK/nginx-deb"
nginx_bin=$WORK/nginx-deb/usr/sbin/nginx
# The shared libraries come from the host (the same Debian release): install the missing ones.
if LC_ALL=C ldd "$nginx_bin" | grep -q 'not found'; then
    apt_install $(dpkg-deb -f "$nginx_deb" Depends | tr ',' '\n' | sed -E 's/^ *([^ ]+).*/\1/' | grep -E '^(lib|zlib)')
fi
libs=$(LC_ALL=C ldd "$nginx_bin" | sed -nE 's#.*=> (/[^ ]+) .*#\1#p; s#^\s*(/[^ ]+) \(0x.*#\1#p' | LC_ALL=C sort -u)
[ -n "$libs" ] && ! LC_ALL=C ldd "$nginx_bin" | grep -q 'not found' || fail "nginx's shared libraries are missing on the host: $(ldd "$nginx_bin" | grep 'not found' | head -n 1)"
lib_files=()
for l in $libs; do lib_files+=("$(readlink -f "$l")"); done
nginx_hash=$(printf '%s\n' "$busybox_hash" $libs | digest "$SELF" "$nginx_deb" "$nginx_common_deb" "${lib_files[@]}" $(image_files nginx))
if [ "$(current "${NGINX_TAGS[@]}" || true)" != "$nginx_hash" ]; then
    ctx=$WORK/nginx
    root=$ctx/rootfs
    mkdir -p "$root/usr/sbin" "$root/etc/nginx" "$root/var/log/nginx" "$root/var/lib/nginx" \
        "$root/var/cache/nginx" "$root/run"
    cp "$nginx_bin" "$root/usr/sbin/nginx"
    for l in $libs; do
        mkdir -p "$root$(dirname "$l")"
        cp -L "$l" "$root$l"
    done
    mkdir -p "$WORK/nginx-common-deb"
    dpkg-deb -x "$nginx_common_deb" "$WORK/nginx-common-deb"
    for f in mime.types fastcgi_params fastcgi.conf proxy_params scgi_params uwsgi_params koi-utf koi-win win-utf; do
        [ -f "$WORK/nginx-common-deb/etc/nginx/$f" ] && cp "$WORK/nginx-common-deb/etc/nginx/$f" "$root/etc/nginx/"
    done
    cp -a "$IMAGES/nginx/rootfs/." "$root/"
    ln -sfn /dev/stdout "$root/var/log/nginx/access.log"
    ln -sfn /dev/stderr "$root/var/log/nginx/error.log"
    cp "$IMAGES/nginx/Dockerfile" "$ctx/"
    build nginx "$nginx_hash" "$ctx" "${NGINX_TAGS[@]}"
fi

# --- the docker compose cluster's images -------------------------------------------------
# debian, python, control-plane, node, registry: a sibling script sharing the helpers above.
. "$DEPLOY/build-cluster-images.sh"
