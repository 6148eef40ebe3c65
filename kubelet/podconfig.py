"""What the kubelet resolves before a runtime sees a pod: DNS settings, the hosts file, hostnames,
environment (values, fieldRef, resourceFieldRef, ConfigMap and Secret keys, Services), $(VAR)
expansion, resources, security context (runAsNonRoot) and mounts (upstream's
generateContainerConfig / makeMounts)."""
from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import os
import re
import secrets
import shutil
from collections import ChainMap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from kubeling.api import quantity
from kubeling.api.resources import lookup
from kubeling.client import ApiError, Client
from kubeling.client.informer import Informer

from .downward import FieldError, field_value, resource_value
from .runtime import ContainerConfig, Mount, SandboxConfig
from .volumes import VolumeManager

CONFIGMAPS, SECRETS = lookup("", "v1", "configmaps"), lookup("", "v1", "secrets")
MAX_DNS_SERVERS, MAX_DNS_SEARCHES = 3, 32
MASTER_SERVICES = ("kubernetes",)    # in `default`, their variables reach every pod, service links or not
_VAR = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


class ContainerConfigError(Exception):
    """CreateContainerConfigError: the message is upstream's (e.g. 'configmap "x" not found')."""


@dataclass
class DNSSettings:
    cluster_dns: list[str]
    cluster_domain: str
    host_resolv_conf: str = "/etc/resolv.conf"

    def host(self) -> tuple[list[str], list[str], list[str]]:
        """Nameservers, search domains and options of the node's resolv.conf (dnsPolicy Default),
        read when the kubelet starts, as upstream does."""
        return self._host

    @functools.cached_property
    def _host(self) -> tuple[list[str], list[str], list[str]]:
        servers: list[str] = []
        searches: list[str] = []
        options: list[str] = []
        try:
            text = Path(self.host_resolv_conf).read_text()
        except OSError:
            return servers, searches, options
        for line in text.splitlines():
            f = line.split("#", 1)[0].split()
            if len(f) >= 2 and f[0] == "nameserver":
                servers.append(f[1])
            elif f and f[0] in ("search", "domain"):
                searches = f[1:]
            elif f and f[0] == "options":
                options += f[1:]
        return servers, searches, options


def spec_hash(container: dict) -> str:
    """A container restarts when its spec changes (the image, say): its hash is on the container."""
    return hashlib.sha256(orjson.dumps(container, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def hostname(pod: dict) -> str:
    """spec.hostname, else the pod name, cut to 63 characters as upstream."""
    name = (pod.get("spec") or {}).get("hostname") or pod["metadata"]["name"]
    return name[:63].rstrip("-.")


def dns_config(pod: dict, dns: DNSSettings) -> tuple[list[str], list[str], list[str]]:
    """Nameservers, searches and options for dnsPolicy ClusterFirst (the cluster DNS, then the
    node's searches), ClusterFirstWithHostNet, Default (the node's) or None (dnsConfig only),
    with spec.dnsConfig merged in."""
    spec, ns = pod.get("spec") or {}, pod["metadata"].get("namespace", "default")
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "ClusterFirst" and spec.get("hostNetwork"):
        policy = "Default"
    host_servers, host_searches, host_options = dns.host()
    if policy == "None":
        servers, searches, options = [], [], []
    elif policy in ("ClusterFirst", "ClusterFirstWithHostNet") and dns.cluster_dns:
        d = dns.cluster_domain
        servers = list(dns.cluster_dns)
        searches = [f"{ns}.svc.{d}", f"svc.{d}", d, *host_searches]
        options = ["ndots:5"]
    else:   # Default, or ClusterFirst without --cluster-dns (upstream falls back the same way)
        servers, searches, options = host_servers, host_searches, host_options
    extra = spec.get("dnsConfig") or {}
    servers = list(dict.fromkeys(servers + list(extra.get("nameservers") or [])))[:MAX_DNS_SERVERS]
    searches = list(dict.fromkeys(searches + list(extra.get("searches") or [])))[:MAX_DNS_SEARCHES]
    opts: dict[str, str] = {}
    for o in options:
        opts[o.partition(":")[0]] = o
    for o in extra.get("options") or []:
        opts[o["name"]] = f"{o['name']}:{o['value']}" if o.get("value") is not None else o["name"]
    return servers, searches, list(opts.values())


def resolv_conf(servers: list[str], searches: list[str], options: list[str]) -> str:
    lines = [f"nameserver {s}" for s in servers]
    if searches:
        lines.append("search " + " ".join(searches))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def hosts_file(pod: dict, ip: str, domain: str) -> str:
    """Upstream's managed /etc/hosts: localhost, the pod's own names, then spec.hostAliases."""
    spec = pod.get("spec") or {}
    lines = ["# Kubernetes-managed hosts file.", "127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet", "fe00::0\tip6-mcastprefix", "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters"]
    name = hostname(pod)
    if spec.get("subdomain"):
        ns = pod["metadata"].get("namespace", "default")
        lines.append(f"{ip}\t{name}.{spec['subdomain']}.{ns}.svc.{domain}\t{name}")
    else:
        lines.append(f"{ip}\t{name}")
    aliases = spec.get("hostAliases") or []
    if aliases:
        lines += ["", "# Entries added by HostAliases."]
        lines += [f"{a['ip']}\t" + "\t".join(a.get("hostnames") or []) for a in aliases]
    return "\n".join(lines) + "\n"


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: defined variables are replaced, $$ escapes, others stay."""
    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return _VAR.sub(sub, text)


def format_pod(pod: dict) -> str:
    """format.Pod: name_namespace(uid)."""
    meta = pod["metadata"]
    return f"{meta.get('name', '')}_{meta.get('namespace', '')}({meta.get('uid', '')})"


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def _service_variables(svc: dict) -> dict[str, str]:
    """upstream's envvars.FromServices for one Service: the Kubernetes and Docker-link variables."""
    spec = svc["spec"]
    ip, ports = spec["clusterIP"], spec["ports"]
    prefix = _env_name(svc["metadata"]["name"])
    env = {f"{prefix}_SERVICE_HOST": ip, f"{prefix}_SERVICE_PORT": str(ports[0]["port"])}
    for p in ports:
        if p.get("name"):
            env[f"{prefix}_SERVICE_PORT_{_env_name(p['name'])}"] = str(p["port"])
    host = f"[{ip}]" if ":" in ip else ip
    for i, p in enumerate(ports):
        proto = (p.get("protocol") or "TCP").lower()
        url = f"{proto}://{host}:{p['port']}"
        if i == 0:
            env[f"{prefix}_PORT"] = url     # Docker special-cases the first port
        key = f"{prefix}_PORT_{p['port']}_{proto.upper()}"
        env.update({key: url, f"{key}_PROTO": proto, f"{key}_PORT": str(p["port"]), f"{key}_ADDR": ip})
    return env


def service_env(services: Iterable[dict], namespace: str, links: bool) -> dict[str, str]:
    """upstream's getServiceEnvVarMap: the master services of `default` always, every Service of
    the pod's namespace with enableServiceLinks (a namespace's own wins over a master one of the
    same name); Services without a cluster IP (headless, ExternalName) give none."""
    chosen: dict[str, dict] = {}
    for svc in services:
        ip = (svc.get("spec") or {}).get("clusterIP")
        if not ip or ip == "None":
            continue
        meta = svc["metadata"]
        if meta.get("namespace") == "default" and meta["name"] in MASTER_SERVICES:
            chosen.setdefault(meta["name"], svc)
        elif meta.get("namespace") == namespace and links:
            chosen[meta["name"]] = svc
    env: dict[str, str] = {}
    for svc in chosen.values():
        env.update(_service_variables(svc))
    return env


def _effective(pod: dict, c: dict, field: str) -> Any:
    """A securityContext field as the container sees it: its own, else the pod's."""
    sc = c.get("securityContext") or {}
    return sc[field] if sc.get(field) is not None else ((pod.get("spec") or {}).get("securityContext") or {}).get(field)


def requires_non_root(pod: dict, c: dict) -> bool:
    return bool(_effective(pod, c, "runAsNonRoot"))


def verify_run_as_non_root(pod: dict, c: dict, image_uid: int | None, image_user: str) -> None:
    """upstream's verifyRunAsNonRoot against the image's user (a uid, else a name; neither: root),
    CreateContainerConfigError with upstream's messages."""
    if not requires_non_root(pod, c):
        return
    who = f'(pod: "{format_pod(pod)}", container: {c["name"]})'
    run_as = _effective(pod, c, "runAsUser")
    if run_as is not None:
        if int(run_as) == 0:
            raise ContainerConfigError(f"container's runAsUser breaks non-root policy {who}")
        return
    if image_uid is None and image_user:
        raise ContainerConfigError(f"container has runAsNonRoot and image has non-numeric user ({image_user}), "
                                   f"cannot verify user is non-root {who}")
    if not image_uid:
        raise ContainerConfigError(f"container has runAsNonRoot and image will run as root {who}")


class ConfigBuilder:
    """Turns a pod's spec into SandboxConfig and ContainerConfig, writing the pod's files (hosts,
    resolv.conf, termination logs, volumes) under the root dir when the runtime uses host files."""

    def __init__(self, client: Client, node_ip: str, root_dir: str, dns: DNSSettings, host_files: bool,
                 allocatable: dict[str, str], services: Informer | None = None) -> None:
        self.client, self.node_ip, self.dns = client, node_ip, dns
        self.services = services     # None: no service variables, as a kubelet without an apiserver
        self.root = Path(root_dir)
        self.host_files = host_files
        self.allocatable = allocatable
        self.volumes = VolumeManager(client, self.root / "pods", allocatable)

    def pod_dir(self, uid: str) -> Path:
        return self.root / "pods" / uid

    def sandbox_config(self, pod: dict) -> SandboxConfig:
        spec = pod.get("spec") or {}
        servers, searches, options = dns_config(pod, self.dns)
        grace = spec.get("terminationGracePeriodSeconds")
        return SandboxConfig(hostname(pod), servers, searches, options, bool(spec.get("hostNetwork")),
                             30 if grace is None else int(grace))

    async def mount_volumes(self, pod: dict) -> None:
        """Set up the pod's volumes (raises VolumeError: the pod waits, FailedMount)."""
        if self.host_files:
            await self.volumes.setup(pod)

    async def remove_pod_dir(self, uid: str) -> None:
        """Unmount the pod's memory volumes, then remove its directory (volumes, hosts, logs)."""
        if self.host_files:
            await self.volumes.teardown(uid)
            await asyncio.to_thread(shutil.rmtree, self.pod_dir(uid), True)

    async def container_config(self, pod: dict, c: dict, attempt: int, pod_ip: str) -> ContainerConfig:
        env = await self._env(pod, c, pod_ip)
        values = dict(env)
        sc = c.get("securityContext") or {}
        psc = (pod.get("spec") or {}).get("securityContext") or {}
        uid, gid = sc.get("runAsUser", psc.get("runAsUser")), sc.get("runAsGroup", psc.get("runAsGroup"))
        user = "" if uid is None else str(uid) + ("" if gid is None else f":{gid}")
        limits = (c.get("resources") or {}).get("limits") or {}
        requests = (c.get("resources") or {}).get("requests") or {}
        caps = sc.get("capabilities") or {}
        return ContainerConfig(
            name=c["name"], image=c.get("image", ""), attempt=attempt, spec_hash=spec_hash(c),
            entrypoint=[expand(x, values) for x in c["command"]] if c.get("command") else None,
            cmd=[expand(x, values) for x in c["args"]] if c.get("args") else None,
            env=env, working_dir=c.get("workingDir", ""),
            mounts=await self._mounts(pod, c, pod_ip) if self.host_files else [],
            cpu_millis_limit=quantity.milli(limits["cpu"]) if "cpu" in limits else 0,
            cpu_millis_request=quantity.milli(requests.get("cpu", limits.get("cpu"))) if "cpu" in requests or "cpu" in limits else 0,
            memory_limit=quantity.value(limits["memory"]) if "memory" in limits else 0,
            tty=bool(c.get("tty")), stdin=bool(c.get("stdin")), stdin_once=bool(c.get("stdinOnce")), user=user,
            read_only_rootfs=bool(sc.get("readOnlyRootFilesystem")), privileged=bool(sc.get("privileged")),
            cap_add=list(caps.get("add") or []), cap_drop=list(caps.get("drop") or []),
            termination_message_path=c.get("terminationMessagePath") or "/dev/termination-log",
            termination_message_policy=c.get("terminationMessagePolicy") or "File")

    # ---- environment --------------------------------------------------------------
    async def _get(self, kind: str, ns: str, name: str) -> dict | None:
        try:
            return await self.client.get(CONFIGMAPS if kind == "configmap" else SECRETS, name, ns)
        except ApiError as e:
            if e.not_found:
                return None
            raise

    async def _source(self, kind: str, ns: str, name: str, optional: bool) -> dict[str, str] | None:
        """A ConfigMap's or Secret's data as text; None for a missing optional one."""
        obj = await self._get(kind, ns, name)
        if obj is None:
            if optional:
                return None
            raise ContainerConfigError(f'{kind} "{name}" not found')
        if kind == "secret":
            return {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
        binary = {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("binaryData") or {}).items()}
        return {**binary, **(obj.get("data") or {})}

    def _service_env(self, pod: dict) -> dict[str, str]:
        """The Services' variables as the container starts (upstream reads its service lister)."""
        if self.services is None:
            return {}
        if not self.services.synced.is_set():
            raise ContainerConfigError("services have not yet been read at least once, cannot construct envvars")
        ns = pod["metadata"].get("namespace", "default")
        links = (pod.get("spec") or {}).get("enableServiceLinks") is not False
        candidates = self.services.list("default") + (self.services.list(ns) if links and ns != "default" else [])
        return service_env(candidates, ns, links)

    async def _env(self, pod: dict, c: dict, pod_ip: str) -> list[tuple[str, str]]:
        """envFrom, then env in order, each value $(VAR)-expanded against the ones before it and the
        Services' variables, then those Service variables the container does not set itself."""
        ns = pod["metadata"].get("namespace", "default")
        services = self._service_env(pod)
        env: dict[str, str] = {}
        for src in c.get("envFrom") or []:
            ref = src.get("configMapRef") or src.get("secretRef") or {}
            kind = "configmap" if "configMapRef" in src else "secret"
            data = await self._source(kind, ns, ref.get("name", ""), bool(ref.get("optional")))
            for k, v in (data or {}).items():
                env[src.get("prefix", "") + k] = v
        for e in c.get("env") or []:
            if "valueFrom" not in e:
                env[e["name"]] = expand(e.get("value", ""), ChainMap(env, services))
                continue
            value = await self._value_from(pod, c, e["valueFrom"], pod_ip)
            if value is not None:
                env[e["name"]] = value
        return list(env.items()) + [(k, v) for k, v in services.items() if k not in env]

    async def _value_from(self, pod: dict, c: dict, src: dict, pod_ip: str) -> str | None:
        ns = pod["metadata"].get("namespace", "default")
        for key, kind, title in (("configMapKeyRef", "configmap", "ConfigMap"), ("secretKeyRef", "secret", "Secret")):
            if key in src:
                ref = src[key]
                data = await self._source(kind, ns, ref.get("name", ""), bool(ref.get("optional")))
                if data is None:
                    return None
                if ref["key"] not in data:
                    if ref.get("optional"):
                        return None
                    raise ContainerConfigError(f"couldn't find key {ref['key']} in {title} {ns}/{ref.get('name', '')}")
                return data[ref["key"]]
        try:
            if "fieldRef" in src:
                return field_value(pod, src["fieldRef"]["fieldPath"], self.node_ip, pod_ip)
            if "resourceFieldRef" in src:
                return resource_value(pod, c, src["resourceFieldRef"], self.allocatable)
        except FieldError as e:
            raise ContainerConfigError(str(e)) from None
        return None

    # ---- mounts -------------------------------------------------------------------
    async def _mounts(self, pod: dict, c: dict, pod_ip: str) -> list[Mount]:
        """The container's volume mounts, then the pod's hosts and resolv.conf files and a fresh
        termination-log file (written off the event loop)."""
        spec = pod.get("spec") or {}
        files: dict[str, str] = {"resolv.conf": resolv_conf(*dns_config(pod, self.dns))}
        if not spec.get("hostNetwork"):
            files["etc-hosts"] = hosts_file(pod, pod_ip, self.dns.cluster_domain)
        return await asyncio.to_thread(self._prepare_mounts, pod, c, files)

    def _prepare_mounts(self, pod: dict, c: dict, files: dict[str, str]) -> list[Mount]:
        pdir = self.pod_dir(pod["metadata"]["uid"])
        mounts = [Mount(self.volumes.host_path(pod, vm["name"], vm.get("subPath", "")), vm["mountPath"],
                        bool(vm.get("readOnly")) or self.volumes.read_only(pod, vm["name"]))
                  for vm in c.get("volumeMounts") or []]
        targets = {m.container_path for m in mounts}
        for name, text in files.items():
            _write_if_changed(pdir / name, text)
        for name, target in (("etc-hosts", "/etc/hosts"), ("resolv.conf", "/etc/resolv.conf")):
            if name in files and target not in targets:
                mounts.append(Mount(str(pdir / name), target))
        log = pdir / "containers" / c["name"] / secrets.token_hex(4)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.touch(0o666)
        os.chmod(log, 0o666)
        mounts.append(Mount(str(log), c.get("terminationMessagePath") or "/dev/termination-log"))
        return mounts


def _write_if_changed(path: Path, text: str) -> None:
    try:
        if path.read_text() == text:
            return
    except OSError:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    tmp.replace(path)

