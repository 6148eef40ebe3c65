"""Admission: namespace lifecycle, Service IP and NodePort allocation, pod defaults set by admission plugins.

Allocations are etcd keys (/registry/ranges/serviceips/<ip>, /registry/ranges/servicenodeports/<port>)
written in the same transaction as the Service, so concurrent apiservers never hand out one twice.
"""
from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field

import orjson

from kubeling.api.errors import Cause, StatusError, invalid, invalid_error, not_found

IP_PREFIX = "/registry/ranges/serviceips/"
PORT_PREFIX = "/registry/ranges/servicenodeports/"
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
IMMORTAL_NAMESPACES = frozenset(("default", "kube-system", "kube-public"))   # NamespaceLifecycle's


def check_namespace(cache, namespace: str) -> None:
    """NamespaceLifecycle: nothing is created in a missing or terminating namespace."""
    ns = cache.get(f"/registry/namespaces/{namespace}")
    if ns is None:
        raise not_found("", "namespaces", namespace)
    if ns.get("metadata", {}).get("deletionTimestamp") or ns.get("status", {}).get("phase") == "Terminating":
        raise StatusError(403, "Forbidden", f"unable to create new content in namespace {namespace} because it "
                          "is being terminated", details={"name": namespace, "kind": "namespaces",
                                                          "causes": [{"reason": "NamespaceTerminating",
                                                                      "message": f"namespace {namespace} is being terminated",
                                                                      "field": "metadata.namespace"}]})


TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"   # upstream's DefaultAPITokenMountPath
TOKEN_VOLUME_PREFIX = "kube-api-access-"
NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"    # apimachinery's rand.String alphabet (no vowels, no 0/1/3)


def token_volume_source() -> dict:
    """upstream's TokenVolumeSource: a token for the API (3607 s, which an apiserver may extend), the
    cluster CA from kube-root-ca.crt and the namespace, in one projected volume (mode 0644)."""
    return {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}


def _mount_service_account_token(spec: dict) -> None:
    """upstream's mountServiceAccountToken; a malformed spec is left alone for validation to refuse."""
    def dicts(x: object) -> list[dict]:
        return [d for d in x if isinstance(d, dict)] if isinstance(x, list) else []
    volumes = spec.get("volumes")
    if volumes is not None and not isinstance(volumes, list):
        return
    name = next((str(v["name"]) for v in dicts(volumes) if str(v.get("name", "")).startswith(TOKEN_VOLUME_PREFIX)), "")
    has_volume = bool(name)
    name = name or TOKEN_VOLUME_PREFIX + "".join(random.choice(NAME_CHARS) for _ in range(5))
    needed = False
    for c in dicts(spec.get("initContainers")) + dicts(spec.get("containers")):
        mounts = c.get("volumeMounts")
        if mounts is not None and not isinstance(mounts, list):
            continue
        if not any(m.get("mountPath") == TOKEN_MOUNT_PATH for m in dicts(mounts)):
            c["volumeMounts"] = [*(mounts or []), {"name": name, "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}]
            needed = True
    if needed and not has_volume:
        spec["volumes"] = [*(volumes or []), {"name": name, "projected": token_volume_source()}]


def admit_pod(pod: dict) -> None:
    """ServiceAccount and DefaultTolerationSeconds admission plus the status a new pod starts with.
    Unless the pod opts out (automountServiceAccountToken: false), every init and app container
    without a mount at /var/run/secrets/kubernetes.io/serviceaccount gets the kube-api-access-xxxxx
    projected volume there, read-only (upstream's mountServiceAccountToken). A ServiceAccount's own
    automountServiceAccountToken is not looked at: the account is not read here."""
    spec = pod.setdefault("spec", {})
    sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    spec["serviceAccountName"] = sa
    spec["serviceAccount"] = sa
    if spec.get("automountServiceAccountToken") is not False:
        _mount_service_account_token(spec)
    tols = spec.setdefault("tolerations", [])
    for taint in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not any(t.get("key") == taint and t.get("effect") in ("NoExecute", None, "")
                   or (not t.get("key") and t.get("operator") == "Exists") for t in tols):
            tols.append({"key": taint, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
    status = pod.setdefault("status", {})
    status["phase"] = "Pending"
    status["qosClass"] = qos_class(spec)


def qos_class(spec: dict) -> str:
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    requests = limits = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        requests |= bool(req)
        limits |= bool(lim)
        for r in ("cpu", "memory"):
            if r not in lim or (r in req and str(req[r]) != str(lim[r])):
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    return "Guaranteed" if guaranteed and containers else "Burstable"


@dataclass
class Allocation:
    puts: dict[str, bytes] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)


def allocated_keys(svc: dict) -> set[str]:
    spec = svc.get("spec") or {}
    keys = {IP_PREFIX + ip for ip in (spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []))
            if ip and ip != "None"}
    keys |= {PORT_PREFIX + str(p["nodePort"]) for p in spec.get("ports") or [] if p.get("nodePort")}
    return keys


class ServiceAllocator:
    def __init__(self, cidr: str, node_ports: str, cache):
        self.net = ipaddress.ip_network(cidr, strict=False)
        lo, _, hi = node_ports.partition("-")
        self.port_lo, self.port_hi = int(lo), int(hi or lo)
        self.cache = cache

    @property
    def first_ip(self) -> str:
        return str(self.net.network_address + 1)

    def _used(self) -> tuple[set[str], set[int]]:
        ips: set[str] = set()
        ports: set[int] = set()
        for svc in self.cache.list("/registry/services/", None):
            spec = svc.get("spec") or {}
            ips.update(spec.get("clusterIPs") or [spec.get("clusterIP", "")])
            ports.update(p.get("nodePort", 0) for p in spec.get("ports") or [])
        return ips, ports

    def _random_ip(self, used: set[str]) -> str:
        size = self.net.num_addresses
        for _ in range(200):
            off = random.randrange(2, max(3, size - 1))   # .0 is the network, .1 is the kubernetes service
            ip = str(self.net.network_address + off)
            if ip not in used:
                return ip
        for off in range(2, size - 1):
            ip = str(self.net.network_address + off)
            if ip not in used:
                return ip
        raise StatusError(500, "InternalError", "Internal error occurred: failed to allocate a serviceIP: range is full")

    def _random_port(self, used: set[int]) -> int:
        for _ in range(200):
            p = random.randint(self.port_lo, self.port_hi)
            if p not in used:
                return p
        for p in range(self.port_lo, self.port_hi + 1):
            if p not in used:
                return p
        raise StatusError(500, "InternalError", "Internal error occurred: failed to allocate a nodePort: range is full")

    def allocate(self, svc: dict, old: dict | None, taken: set[str] = frozenset()) -> Allocation:
        """Fill clusterIP(s) and nodePorts of svc (keeping old's), return the keys to write and free.

        `taken` are keys a previous attempt lost to another apiserver: never pick them again."""
        spec = svc.setdefault("spec", {})
        name = svc.get("metadata", {}).get("name", "")
        ns = svc.get("metadata", {}).get("namespace", "")
        typ = spec.get("type", "ClusterIP")
        ospec = (old or {}).get("spec") or {}
        used_ips, used_ports = self._used()
        used_ips |= {k[len(IP_PREFIX):] for k in taken if k.startswith(IP_PREFIX)}
        used_ports |= {int(k[len(PORT_PREFIX):]) for k in taken if k.startswith(PORT_PREFIX)}
        causes: list[Cause] = []
        if typ == "ExternalName":
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        else:
            if not spec.get("clusterIP") and ospec.get("clusterIP"):
                spec["clusterIP"] = ospec["clusterIP"]
            ip = spec.get("clusterIP") or (spec.get("clusterIPs") or [""])[0]
            if ip == "None":
                spec["clusterIP"], spec["clusterIPs"] = "None", ["None"]
            elif not ip:
                ip = self._random_ip(used_ips)
                spec["clusterIP"], spec["clusterIPs"] = ip, [ip]
            else:
                spec["clusterIPs"] = [ip]
                if ip != ospec.get("clusterIP"):
                    try:
                        addr = ipaddress.ip_address(ip)
                    except ValueError:
                        addr = None
                    if addr is None:
                        pass  # validation reports the format
                    elif addr not in self.net or addr in (self.net.network_address, self.net.broadcast_address):
                        causes.append(invalid("spec.clusterIPs", [ip], f"failed to allocate IP {ip}: the provided IP "
                                              f"({ip}) is not in the valid range. The range of valid IPs is {self.net}"))
                    elif ip in used_ips:
                        causes.append(invalid("spec.clusterIPs", [ip], f"failed to allocate IP {ip}: provided IP is "
                                              "already allocated"))
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                     for p in ospec.get("ports") or [] if p.get("nodePort")}
        needs_ports = typ in ("NodePort", "LoadBalancer")
        for i, p in enumerate(spec.get("ports") or []):
            if not needs_ports:
                p.pop("nodePort", None)
                continue
            np = p.get("nodePort") or old_ports.get((p.get("port"), p.get("protocol", "TCP")))
            if not np:
                np = self._random_port(used_ports)
                used_ports.add(np)
            elif np not in old_ports.values():
                if not isinstance(np, int) or not (self.port_lo <= np <= self.port_hi):
                    causes.append(invalid(f"spec.ports[{i}].nodePort", np, "provided port is not in the valid range. "
                                          f"The range of valid ports is {self.port_lo}-{self.port_hi}"))
                elif np in used_ports:
                    causes.append(invalid(f"spec.ports[{i}].nodePort", np, "provided port is already allocated"))
                used_ports.add(np)
            p["nodePort"] = np
        if needs_ports:
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if causes:
            raise invalid_error("", "Service", name, causes)
        new_keys, old_keys = allocated_keys(svc), allocated_keys(old) if old else set()
        owner = orjson.dumps({"namespace": ns, "name": name})
        return Allocation({k: owner for k in sorted(new_keys - old_keys)}, sorted(old_keys - new_keys))
