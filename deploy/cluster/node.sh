#!/bin/bash
# A node container (deploy/compose.yaml): its own Docker engine, pulling pod images through the
# cluster's registry, then the kubelet and kube-proxy. When any of the three exits the container
# exits, and compose's restart policy brings the node back; SIGTERM stops all three.
set -euo pipefail
NODE=$(hostname)
IP=$(hostname -i | cut -d' ' -f1)
REGISTRY=${REGISTRY:-10.210.0.5:5000}
LOGS=/var/log/kubeling
mkdir -p "$LOGS"
log() { echo "$(date -u +%FT%TZ) node.sh $NODE: $*"; }

pids=()
stop() {
    log "stopping"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait || true
    exit 0
}
trap stop TERM INT

# Docker Hub names (busybox, nginx, kubeling/...) come through the registry as a mirror.
dockerd --registry-mirror "http://$REGISTRY" --insecure-registry "$REGISTRY" >"$LOGS/dockerd.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
docker info >/dev/null 2>&1 || { log "dockerd did not start:"; tail -n 20 "$LOGS/dockerd.log"; exit 1; }
log "docker engine up"
if ! docker image inspect registry.k8s.io/pause:3.10 >/dev/null 2>&1; then
    docker pull -q "$REGISTRY/kubeling/pause:3.10" && docker tag "$REGISTRY/kubeling/pause:3.10" registry.k8s.io/pause:3.10
fi

python3 -m kubelet --kubeconfig /pki/kubelet.kubeconfig --runtime docker --hostname-override "$NODE" \
    --node-ip "$IP" --root-dir /var/lib/kubelet --cluster-dns 10.96.0.10 --cluster-domain cluster.local \
    --route-pod-cidrs --cluster-cidr 10.244.0.0/16 --non-masquerade-cidr 10.244.0.0/16 \
    --image-pull-registries "docker.io,$REGISTRY" \
    --healthz-bind-address 0.0.0.0 &
pids+=($!)
python3 -m kubeproxy --kubeconfig /pki/kube-proxy.kubeconfig --hostname-override "$NODE" \
    --cluster-cidr 10.244.0.0/16 --service-cidr 10.96.0.0/16 &
pids+=($!)
log "kubelet and kube-proxy started"
set +e
wait -n "${pids[@]}"
code=$?
log "a node process exited ($code); restarting the node"
kill -TERM "${pids[@]}" 2>/dev/null
wait
exit 1
