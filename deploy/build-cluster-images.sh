#!/usr/bin/env bash
# The docker compose cluster's images (issue 12; docs/docker.md), built locally like the pod
# images: no registry is reachable, and no build step needs the network inside a container.
#   kubeling/debian:bookworm      debootstrap --variant=minbase on the host, `docker import`
#   kubeling/python:bookworm      + Debian's python3 (3.11)
#   kubeling/control-plane:deps   + the project's runtime dependencies (pyproject.toml, pip on the host)
#   kubeling/control-plane:dev    + the project's source in /opt/kubeling
#   kubeling/node:deps            control-plane:deps + docker.io, iptables, conntrack, iproute2, procps, ca-certificates
#   kubeling/node:dev             + the project's source in /opt/kubeling
#   kubeling/registry:2           Debian's docker-registry (the distribution registry) on busybox
# Sourced by deploy/build-images.sh after the pod images, so it uses that script's helpers (deb,
# digest, current, build, apt_install, fail) and its cache ($CACHE). Run alone, it runs that script.
# Each image's io.kubeling.hash covers only its own inputs (its recipe function below, its folder
# under deploy/images/, its packages, its parent's hash), so editing one image's recipe rebuilds
# that image and the ones on it, and a change to the project's source rebuilds only the two
# source layers. What is downloaded is kept under $CACHE keyed by the same hashes (the root
# filesystem tarball, the .deb sets, the wheels), so a rebuild after `docker rmi` downloads nothing.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    exec bash "$(dirname "$0")/build-images.sh" "$@"
fi

SUITE=bookworm
MIRROR=http://deb.debian.org/debian
PROJECT=$(cd "$DEPLOY/.." && pwd)
PACKAGES=(etcdnode apiserver scheduler controllers kubelet kubeproxy kubedns kubeling)
ROOTFS_DIR=$CACHE/rootfs
mkdir -p "$ROOTFS_DIR"
# Parallel runs (two `make test` at once) would share the cached folders: the second waits.
exec 9>"$CACHE/cluster-images.lock"
flock -w 1200 9 || fail "another build of the cluster images holds $CACHE/cluster-images.lock"

recipe() {  # recipe FUNCTION...: the functions' text as bash prints it, without comments (an input of the image they build)
    local f
    for f in "$@"; do declare -f "$f"; done
}

# The helpers of build-images.sh that build images are an input of every image here (the root
# filesystem tarball excepted); its pause/busybox/nginx sections and its comments are not.
HELPERS_HASH=$(recipe digest image_files current build | digest)

unmount_under() {  # unmount_under DIR: whatever a failed debootstrap left mounted under DIR
    local m
    for m in $(findmnt -rno TARGET | grep -E "^$1(/|$)" | LC_ALL=C sort -r); do
        $SUDO umount -l "$m" 2>/dev/null || true
    done
}

remove_rootfs() {  # remove_rootfs DIR: remove a root filesystem tree, never crossing into a mount
    [ -d "$1" ] || return 0
    unmount_under "$1"
    $SUDO rm -rf --one-file-system "$1"
}

# --- kubeling/debian:bookworm ------------------------------------------------------------
# debootstrap on the host into a folder outside $WORK (so the EXIT trap's plain rm -rf never
# meets a mount), trimmed and tarred once into $CACHE/rootfs/ (about 30 MB of .debs fetched from
# Debian's mirror, once); `docker import` of that tarball is the image.
debian_rootfs() {  # debian_rootfs TARBALL
    local root log=$CACHE/build-debian.log
    command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
    root=$(mktemp -d "$CACHE/debootstrap.XXXXXX")
    trap "remove_rootfs '$root'; rm -rf '$WORK'" EXIT
    echo "build-images: debootstrap --variant=minbase $SUITE (a minute or two, once)" >&2
    $SUDO debootstrap --variant=minbase --components=main "$SUITE" "$root" "$MIRROR" >"$log" 2>&1 \
        || fail "debootstrap $SUITE failed: $(grep -E '^[EW]:' "$log" | tail -n 1) (log $log)"
    unmount_under "$root"
    $SUDO cp -a --no-preserve=ownership "$IMAGES/debian/rootfs/." "$root/"
    $SUDO rm -f "$root/etc/apt/sources.list" "$root/etc/resolv.conf" "$root/etc/hostname"
    $SUDO truncate -s 0 "$root/etc/machine-id" 2>/dev/null || true
    # What the slim dpkg excludes (deploy/images/debian/rootfs/etc/dpkg/dpkg.cfg.d) keep out of
    # later packages, removed from debootstrap's: documentation but the copyright files, manual
    # pages, translations; and apt's lists, caches and logs.
    $SUDO find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    $SUDO find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
    $SUDO rm -rf "$root"/usr/share/{man,groff,info,lintian,linda,locale}/* "$root"/var/lib/apt/lists/* \
        "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old \
        "$root"/var/log/* "$root"/tmp/*
    $SUDO tar --numeric-owner --xattrs -C "$root" --exclude='./dev/*' --exclude='./proc/*' \
        --exclude='./sys/*' --exclude='./run/*' -cf "$1.part" . || fail "tar of the $SUITE root filesystem failed"
    $SUDO mv "$1.part" "$1"
    remove_rootfs "$root"
    trap 'rm -rf "$WORK"' EXIT
}

debian_import() {  # debian_import HASH TARBALL TAG
    local old
    old=$(docker image inspect -f '{{.Id}}' "$3" 2>/dev/null || true)
    docker import -c 'LABEL io.kubeling.image=1' -c "LABEL io.kubeling.name=debian" -c "LABEL io.kubeling.hash=$1" \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' -c 'ENV LANG=C.UTF-8' -c 'CMD ["bash"]' \
        -m "debootstrap --variant=minbase $SUITE" "$2" "$3" >/dev/null || fail "docker import of $2 failed"
    [ -z "$old" ] || docker image rm "$old" >/dev/null 2>&1 || true
    echo "built debian ($3)"
}

DEBIAN_TAGS=(kubeling/debian:$SUITE)
rootfs_hash=$(printf '%s\n' "$SUITE" "$MIRROR" "$(recipe debian_rootfs unmount_under remove_rootfs)" \
    | digest $(image_files debian))
debian_hash=$(printf '%s\n' "$HELPERS_HASH" "$rootfs_hash" "$(recipe debian_import)" | digest)
debian_tar=$ROOTFS_DIR/debian-$SUITE-minbase-$rootfs_hash.tar
if [ "$(current "${DEBIAN_TAGS[@]}" || true)" != "$debian_hash" ]; then
    [ -f "$debian_tar" ] || debian_rootfs "$debian_tar"
    debian_import "$debian_hash" "$debian_tar" "${DEBIAN_TAGS[0]}"
fi
# Tarballs of older recipes: no longer needed.
find "$ROOTFS_DIR" -maxdepth 1 -name "debian-$SUITE-minbase-*.tar*" -not -name "$(basename "$debian_tar")" -delete

# --- Debian packages into an image -------------------------------------------------------
# The host's apt resolves what PKG... need on top of the parent image's dpkg status (the host
# is the same Debian release) and downloads them once into $CACHE/debs/NAME-HASH/. They are then
# installed in a container of the parent with no network, the folder mounted read-only on /mnt,
# and the container is committed: one layer, with no .deb left in it.
deb_set() {  # deb_set DIR PARENT PKG...: DIR holds the .debs PKG... need on PARENT (downloaded once)
    local dir=$1 parent=$2 status=$WORK/status.$$ log=$WORK/apt-download.log
    shift 2
    [ -f "$dir/.complete" ] && return 0
    rm -rf "$dir"
    mkdir -p "$dir/partial"
    docker run --rm --network none --entrypoint cat "$parent" /var/lib/dpkg/status >"$status" \
        || fail "cannot read /var/lib/dpkg/status of $parent"
    local apt_args=(-q -y --download-only --no-install-recommends -o "Dir::State::status=$status"
        -o "Dir::Cache::archives=$dir" -o Debug::NoLocking=1 -o APT::Sandbox::User=root install "$@")
    if ! $SUDO apt-get "${apt_args[@]}" >"$log" 2>&1; then
        apt_update   # the host's package lists are missing or stale
        $SUDO apt-get "${apt_args[@]}" >"$log" 2>&1 || fail "apt-get --download-only $* failed: $(grep -E '^E:' "$log" | tail -n 1)"
    fi
    rm -rf "$dir/partial" "$dir/lock"
    ls "$dir"/*.deb >/dev/null 2>&1 || fail "apt-get --download-only $* left no .deb in $dir"
    touch "$dir/.complete"
}

commit_debs() {  # commit_debs NAME HASH PARENT DIR CMD TAG...: PARENT + the .debs in DIR, committed
    # Files matching a glob in deploy/images/NAME/dpkg-excludes (NAME less -deps) are not installed.
    local name=$1 hash=$2 parent=$3 dir=$4 cmd=$5 cid log old excludes=() g
    log=$CACHE/build-$name.log
    shift 5
    if [ -f "$IMAGES/${name%-deps}/dpkg-excludes" ]; then
        for g in $(grep -vE '^\s*(#|$)' "$IMAGES/${name%-deps}/dpkg-excludes"); do excludes+=(-o "DPkg::Options::=--path-exclude=$g"); done
    fi
    old=$(docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true)
    # No label or environment of this container may end up in the committed image's config; its
    # name (a leftover of an interrupted build is removed first) is not part of it.
    docker rm -f "kubeling-build-$name" >/dev/null 2>&1 || true
    cid=$(docker create --name "kubeling-build-$name" --network none -v "$dir:/mnt:ro" "$parent" sh -ec '
            export DEBIAN_FRONTEND=noninteractive
            apt-get install -y -q --no-install-recommends "$@" /mnt/*.deb
            rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/cache/debconf/*-old /var/lib/dpkg/*-old \
                /var/log/apt /var/log/dpkg.log /var/log/alternatives.log /tmp/*' sh ${excludes[@]+"${excludes[@]}"}) \
        || fail "docker create for $name failed"
    if ! docker start -a "$cid" >"$log" 2>&1; then
        docker rm -f "$cid" >/dev/null 2>&1
        fail "installing the .debs of $name failed: $(grep -E '^(E:|dpkg: error)' "$log" | tail -n 1) (log $log)"
    fi
    docker commit -c "LABEL io.kubeling.image=1" -c "LABEL io.kubeling.name=$name" -c "LABEL io.kubeling.hash=$hash" \
        -c "CMD $cmd" -m "$name: $(cd "$dir" && ls *.deb | wc -l) Debian packages" "$cid" "$1" >/dev/null \
        || { docker rm -f "$cid" >/dev/null 2>&1; fail "docker commit of $name failed"; }
    docker rm "$cid" >/dev/null
    local t
    for t in "${@:2}"; do docker tag "$1" "$t"; done
    if [ -n "$old" ] && [ "$(docker image inspect -f '{{len .RepoTags}}' "$old" 2>/dev/null)" = "0" ]; then
        docker image rm "$old" >/dev/null 2>&1 || true
    fi
    echo "built $name ($*)"
}

package_list() { grep -vE '^\s*(#|$)' "$IMAGES/$1/packages"; }

# --- kubeling/python:bookworm ------------------------------------------------------------
PYTHON_TAGS=(kubeling/python:$SUITE)
python_pkgs=$(package_list python)
# The .deb set's key: the parent's hash, the package list and how it is resolved.
python_set=python-$(printf '%s\n' "$debian_hash" "$(recipe deb_set)" | digest "$IMAGES/python/packages")
python_hash=$(printf '%s\n' "$HELPERS_HASH" "$debian_hash" "$(recipe deb_set commit_debs)" | digest $(image_files python))
if [ "$(current "${PYTHON_TAGS[@]}" || true)" != "$python_hash" ]; then
    deb_set "$DEBS/$python_set" "${DEBIAN_TAGS[0]}" $python_pkgs
    commit_debs python "$python_hash" "${DEBIAN_TAGS[0]}" "$DEBS/$python_set" '["python3"]' "${PYTHON_TAGS[@]}"
fi

# --- kubeling/control-plane:deps ---------------------------------------------------------
# The runtime dependencies of pyproject.toml, installed by pip on the host for Debian's
# CPython 3.11 on glibc 2.36 (--target with --platform/--python-version, binary wheels only;
# sdists are first built into wheels with `pip wheel`), and copied into
# /usr/local/lib/python3.11/dist-packages, where Debian's python3 finds them.
py_wheels() {  # py_wheels REQS DIR: DIR holds the wheels of REQS (downloaded and built once)
    [ -f "$2/.complete" ] && return 0
    rm -rf "$2"
    mkdir -p "$2"
    echo "build-images: pip wheel: the project's runtime dependencies (about a minute, once)" >&2
    python3 -m pip wheel -q --disable-pip-version-check -w "$2" -r "$1" >"$CACHE/build-wheels.log" 2>&1 \
        || fail "pip wheel of the project's dependencies failed: $(grep -E '^ERROR' "$CACHE/build-wheels.log" | tail -n 1) (log $CACHE/build-wheels.log)"
    touch "$2/.complete"
}

py_target() {  # py_target REQS WHEELS DIR: REQS installed from WHEELS into DIR, for CPython 3.11 on glibc 2.36 x86_64
    local plats=() m log=$CACHE/build-pydeps.log
    for m in $(seq 17 36); do plats+=(--platform "manylinux_2_${m}_x86_64"); done
    plats+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64 --platform linux_x86_64)
    rm -rf "$3"
    python3 -m pip install -q --disable-pip-version-check --no-warn-conflicts --no-index --find-links "$2" \
        --only-binary=:all: "${plats[@]}" --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
        --target "$3" -r "$1" >"$log" 2>&1 \
        || fail "pip install --target of the project's dependencies failed: $(grep -E '^ERROR' "$log" | tail -n 1) (log $log)"
    rm -rf "$3/bin"   # console scripts with the host's python in their #! line
}

[ "$(uname -m)" = x86_64 ] || fail "the cluster images are built for x86_64 only (this is $(uname -m))"
CP_DEPS_TAGS=(kubeling/control-plane:deps)
python3 -c 'import tomllib, sys; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' \
    "$PROJECT/pyproject.toml" >"$WORK/requirements.txt" || fail "cannot read the dependencies of $PROJECT/pyproject.toml (python3 >= 3.11)"
wheels_hash=$({ recipe py_wheels; cat "$WORK/requirements.txt"; } | digest)
cp_deps_hash=$({ printf '%s\n' "$HELPERS_HASH" "$python_hash" "$wheels_hash"; recipe py_target; } \
    | digest "$IMAGES/control-plane/Dockerfile.deps")
if [ "$(current "${CP_DEPS_TAGS[@]}" || true)" != "$cp_deps_hash" ]; then
    py_wheels "$WORK/requirements.txt" "$CACHE/wheels-$wheels_hash"
    ctx=$WORK/control-plane-deps
    mkdir -p "$ctx"
    py_target "$WORK/requirements.txt" "$CACHE/wheels-$wheels_hash" "$ctx/dist-packages"
    cp "$IMAGES/control-plane/Dockerfile.deps" "$ctx/Dockerfile"
    build control-plane-deps "$cp_deps_hash" "$ctx" "${CP_DEPS_TAGS[@]}"
fi
find "$CACHE" -maxdepth 1 -name 'wheels-*' -not -name "wheels-$wheels_hash" -exec rm -rf {} +

# --- the source layer: kubeling/control-plane:dev and kubeling/node:dev ------------------
# The project's packages (no tests, no __pycache__), compiled on the host when its python3 is
# 3.11 (checked-hash .pyc files, valid whatever the files' times), copied into /opt/kubeling.
source_files() {
    (cd "$PROJECT" && find "${PACKAGES[@]}" -type f -not -path '*/__pycache__/*' -not -name '*.py[co]' | LC_ALL=C sort)
}
stage_source() {  # stage_source DIR: the project's packages, compiled, in DIR/kubeling
    mkdir -p "$1/kubeling"
    (cd "$PROJECT" && source_files | tar -cf - -T -) | tar -C "$1/kubeling" -xf -
    if python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
        python3 -m compileall -q --invalidation-mode checked-hash "$1/kubeling" >/dev/null \
            || fail "python3 -m compileall of the project's source failed"
    fi
}
source_hash=$(cd "$PROJECT" && source_files | { mapfile -t files; { echo "${PACKAGES[*]}"; recipe source_files stage_source; } | digest "${files[@]}"; })

# --- kubeling/node:deps ------------------------------------------------------------------
# control-plane:deps plus the node's system packages: a node runs its own Docker engine, the
# kubelet and kube-proxy. Its source layer sits on top, so a source change never reinstalls these.
NODE_DEPS_TAGS=(kubeling/node:deps)
node_pkgs=$(package_list node)
# The .deb set's key: control-plane:deps has the packages of kubeling/python (pip adds none).
node_set=node-$(printf '%s\n' "$python_hash" "$(recipe deb_set)" | digest "$IMAGES/node/packages")
node_deps_hash=$(printf '%s\n' "$HELPERS_HASH" "$cp_deps_hash" "$(recipe deb_set commit_debs)" | digest "$IMAGES/node/packages" "$IMAGES/node/dpkg-excludes")
if [ "$(current "${NODE_DEPS_TAGS[@]}" || true)" != "$node_deps_hash" ]; then
    deb_set "$DEBS/$node_set" "${CP_DEPS_TAGS[0]}" $node_pkgs
    commit_debs node-deps "$node_deps_hash" "${CP_DEPS_TAGS[0]}" "$DEBS/$node_set" '["dockerd"]' "${NODE_DEPS_TAGS[@]}"
fi
# .deb sets of older recipes: no longer needed.
find "$DEBS" -maxdepth 1 -type d \( -name 'python-*' -o -name 'node-*' \) \
    -not -name "$python_set" -not -name "$node_set" -exec rm -rf {} +

CP_TAGS=(kubeling/control-plane:dev)
NODE_TAGS=(kubeling/node:dev)
cp_hash=$(printf '%s\n' "$HELPERS_HASH" "$cp_deps_hash" "$source_hash" | digest "$IMAGES/control-plane/Dockerfile")
node_hash=$(printf '%s\n' "$HELPERS_HASH" "$node_deps_hash" "$source_hash" | digest "$IMAGES/node/Dockerfile")
staged=""
for img in control-plane node; do
    if [ $img = control-plane ]; then tags=("${CP_TAGS[@]}"); hash=$cp_hash; else tags=("${NODE_TAGS[@]}"); hash=$node_hash; fi
    [ "$(current "${tags[@]}" || true)" != "$hash" ] || continue
    [ -n "$staged" ] || { stage_source "$WORK/source"; staged=1; }
    ctx=$WORK/$img
    mkdir -p "$ctx"
    cp -a "$WORK/source/kubeling" "$ctx/kubeling"
    cp "$IMAGES/$img/Dockerfile" "$ctx/Dockerfile"
    build "$img" "$hash" "$ctx" "${tags[@]}"
done

# --- kubeling/registry:2 -----------------------------------------------------------------
# Debian's docker-registry (distribution 2.8, a Go binary linking only libc) with libc and the
# loader from the host, on the local busybox (sh and wget for health checks), as nginx is built.
REGISTRY_TAGS=(kubeling/registry:2)
registry_deb=$(deb docker-registry)
mkdir -p "$WORK/registry-deb"
dpkg-deb -x "$registry_deb" "$WORK/registry-deb"
registry_bin=$WORK/registry-deb/usr/bin/docker-registry
registry_libs=$(LC_ALL=C ldd "$registry_bin" | sed -nE 's#.*=> (/[^ ]+) .*#\1#p; s#^\s*(/[^ ]+) \(0x.*#\1#p' | LC_ALL=C sort -u)
[ -n "$registry_libs" ] && ! LC_ALL=C ldd "$registry_bin" | grep -q 'not found' \
    || fail "docker-registry's shared libraries are missing on the host"
registry_lib_files=()
for l in $registry_libs; do registry_lib_files+=("$(readlink -f "$l")"); done
registry_hash=$(printf '%s\n' "$HELPERS_HASH" "$busybox_hash" $registry_libs \
    | digest "$registry_deb" "${registry_lib_files[@]}" $(image_files registry))
if [ "$(current "${REGISTRY_TAGS[@]}" || true)" != "$registry_hash" ]; then
    ctx=$WORK/registry
    root=$ctx/rootfs
    mkdir -p "$root/usr/bin" "$root/var/lib/docker-registry"
    cp "$registry_bin" "$root/usr/bin/docker-registry"
    for l in $registry_libs; do
        mkdir -p "$root$(dirname "$l")"
        cp -L "$l" "$root$l"
    done
    mkdir -p "$root/usr/share/doc/docker-registry"
    cp "$WORK/registry-deb/usr/share/doc/docker-registry/copyright" "$root/usr/share/doc/docker-registry/"
    cp -a "$IMAGES/registry/rootfs/." "$root/"
    cp "$IMAGES/registry/Dockerfile" "$ctx/"
    build registry "$registry_hash" "$ctx" "${REGISTRY_TAGS[@]}"
fi
