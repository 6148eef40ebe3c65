"""What the kubelet resolves before the runtime: DNS per dnsPolicy, the hosts file, $(VAR)
expansion, env from the API with upstream's errors, Service variables, runAsNonRoot, image
references."""
from __future__ import annotations

import asyncio
import base64

import pytest

from kubelet.docker_runtime import reference
from kubelet.podconfig import (ConfigBuilder, ContainerConfigError, DNSSettings, dns_config, expand, hosts_file,
                               service_env, verify_run_as_non_root)
from kubeling.client import ApiError


@pytest.fixture
def dns(tmp_path) -> DNSSettings:
    host = tmp_path / "resolv.conf"
    host.write_text("# the node's\nnameserver 192.168.0.1\nsearch corp.example\noptions edns0\n")
    return DNSSettings(["10.96.0.10"], "cluster.local", str(host))


def pod(**spec) -> dict:
    return {"metadata": {"name": "web-0", "namespace": "shop", "uid": "u1", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c"}], **spec}}


def test_cluster_first(dns):
    assert dns_config(pod(), dns) == (["10.96.0.10"], ["shop.svc.cluster.local", "svc.cluster.local",
                                                       "cluster.local", "corp.example"], ["ndots:5"])


def test_default_and_host_network(dns):
    host = (["192.168.0.1"], ["corp.example"], ["edns0"])
    assert dns_config(pod(dnsPolicy="Default"), dns) == host
    assert dns_config(pod(hostNetwork=True), dns) == host
    assert dns_config(pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet"), dns)[0] == ["10.96.0.10"]
    assert dns_config(pod(), DNSSettings([], "cluster.local", dns.host_resolv_conf)) == host


def test_none_with_dns_config_and_merging(dns):
    cfg = {"nameservers": ["1.2.3.4"], "searches": ["a.example"], "options": [{"name": "ndots", "value": "2"},
                                                                            {"name": "rotate"}]}
    assert dns_config(pod(dnsPolicy="None", dnsConfig=cfg), dns) == (["1.2.3.4"], ["a.example"], ["ndots:2", "rotate"])
    servers, searches, options = dns_config(pod(dnsConfig=cfg), dns)
    assert servers == ["10.96.0.10", "1.2.3.4"] and searches[-1] == "a.example" and options == ["ndots:2", "rotate"]


def test_hosts_file():
    text = hosts_file(pod(hostname="db", subdomain="backend",
                          hostAliases=[{"ip": "10.0.0.9", "hostnames": ["foo", "bar"]}]), "10.244.1.7", "cluster.local")
    lines = text.splitlines()
    assert lines[0] == "# Kubernetes-managed hosts file." and "127.0.0.1\tlocalhost" in lines
    assert "10.244.1.7\tdb.backend.shop.svc.cluster.local\tdb" in lines
    assert lines[-2:] == ["# Entries added by HostAliases.", "10.0.0.9\tfoo\tbar"]
    assert hosts_file(pod(), "10.244.1.7", "cluster.local").splitlines()[-1] == "10.244.1.7\tweb-0"


def test_expand():
    env = {"A": "x", "B": "y"}
    assert expand("$(A)-$(B)-$(C)", env) == "x-y-$(C)"
    assert expand("$$(A) $$ $(A", env) == "$(A) $ $(A"


class FakeClient:
    """Objects by (plural, name); others are NotFound in the apiserver's words."""

    def __init__(self, objects: dict) -> None:
        self.objects = objects

    async def get(self, resource, name, namespace=None, sub=None):
        try:
            return self.objects[(resource.plural, name)]
        except KeyError:
            raise ApiError(404, {"reason": "NotFound", "message": f'{resource.plural} "{name}" not found'}) from None


def builder(objects: dict, dns: DNSSettings) -> ConfigBuilder:
    return ConfigBuilder(FakeClient(objects), "192.168.1.2", "/nonexistent", dns, False, {"cpu": "4", "memory": "8Gi"})


async def test_env_sources_and_errors(dns):
    objects = {("configmaps", "cfg"): {"data": {"greeting": "hi", "k2": "v2"}},
               ("secrets", "sec"): {"data": {"pw": base64.b64encode(b"s3").decode()}}}
    c = {"name": "c", "image": "busybox", "command": ["echo", "$(GREETING)"], "args": ["$(POD_IP)"],
         "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
         "env": [{"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}},
                 {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "pw"}}},
                 {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                 {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                 {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                 {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": True}}}],
         "resources": {"limits": {"memory": "64Mi", "cpu": "250m"}}}
    cfg = await builder(objects, dns).container_config(pod(), c, 3, "10.244.1.7")
    env = dict(cfg.env)
    assert env == {"CFG_greeting": "hi", "CFG_k2": "v2", "GREETING": "hi", "PW": "s3", "POD_IP": "10.244.1.7",
                   "APP": "web", "MEM": "64"}
    assert (cfg.entrypoint, cfg.cmd, cfg.attempt) == (["echo", "hi"], ["10.244.1.7"], 3)
    assert (cfg.memory_limit, cfg.cpu_millis_limit, cfg.cpu_millis_request) == (64 * 2**20, 250, 250)
    for env_var, message in (
            ({"configMapKeyRef": {"name": "nope", "key": "k"}}, 'configmap "nope" not found'),
            ({"configMapKeyRef": {"name": "cfg", "key": "missing"}}, "couldn't find key missing in ConfigMap shop/cfg"),
            ({"secretKeyRef": {"name": "nope", "key": "k"}}, 'secret "nope" not found'),
            ({"secretKeyRef": {"name": "sec", "key": "k"}}, "couldn't find key k in Secret shop/sec")):
        with pytest.raises(ContainerConfigError) as e:
            await builder(objects, dns).container_config(pod(), {"name": "c", "env": [{"name": "X", "valueFrom": env_var}]},
                                                         0, "")
        assert str(e.value) == message


def test_image_references():
    assert reference("busybox") == ("docker.io", "docker.io/library/busybox:latest")
    assert reference("nginx:1.25") == ("docker.io", "docker.io/library/nginx:1.25")
    assert reference("gcr.io/google-samples/kubernetes-bootcamp:v1") == \
        ("gcr.io", "gcr.io/google-samples/kubernetes-bootcamp:v1")
    assert reference("localhost:5000/app") == ("localhost:5000", "localhost:5000/app:latest")
    assert reference("me/app@sha256:ab") == ("docker.io", "docker.io/me/app@sha256:ab")


def service(name: str, ns: str, ip: str, *ports: dict, **spec) -> dict:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"clusterIP": ip, "ports": list(ports), **spec}}


MASTER = service("kubernetes", "default", "10.96.0.1", {"name": "https", "port": 443, "protocol": "TCP"})


def test_service_variables_are_upstreams():
    web = service("my-web", "shop", "10.96.5.6", {"port": 80, "protocol": "TCP"},
                  {"name": "metrics-udp", "port": 9090, "protocol": "UDP"})
    headless = service("db", "shop", "None", {"port": 5432})
    external = {"metadata": {"name": "ext", "namespace": "shop"}, "spec": {"type": "ExternalName",
                                                                         "externalName": "example.com"}}
    other = service("elsewhere", "other", "10.96.7.7", {"port": 1})
    env = service_env([MASTER, web, headless, external, other], "shop", True)
    assert env == {
        "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
        "KUBERNETES_SERVICE_PORT_HTTPS": "443", "KUBERNETES_PORT": "tcp://10.96.0.1:443",
        "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
        "KUBERNETES_PORT_443_TCP_PORT": "443", "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1",
        "MY_WEB_SERVICE_HOST": "10.96.5.6", "MY_WEB_SERVICE_PORT": "80", "MY_WEB_SERVICE_PORT_METRICS_UDP": "9090",
        "MY_WEB_PORT": "tcp://10.96.5.6:80",
        "MY_WEB_PORT_80_TCP": "tcp://10.96.5.6:80", "MY_WEB_PORT_80_TCP_PROTO": "tcp",
        "MY_WEB_PORT_80_TCP_PORT": "80", "MY_WEB_PORT_80_TCP_ADDR": "10.96.5.6",
        "MY_WEB_PORT_9090_UDP": "udp://10.96.5.6:9090", "MY_WEB_PORT_9090_UDP_PROTO": "udp",
        "MY_WEB_PORT_9090_UDP_PORT": "9090", "MY_WEB_PORT_9090_UDP_ADDR": "10.96.5.6"}
    # enableServiceLinks: false keeps only the master service's
    assert set(service_env([MASTER, web], "shop", False)) == {k for k in env if k.startswith("KUBERNETES_")}
    assert service_env([service("v6", "shop", "fd00::1", {"port": 80})], "shop", True)["V6_PORT"] == "tcp://[fd00::1]:80"


class Services:
    """A synced service informer's view."""

    def __init__(self, *items: dict) -> None:
        self.items = items
        self.synced = asyncio.Event()
        self.synced.set()

    def list(self, namespace=None):
        return [s for s in self.items if namespace is None or s["metadata"]["namespace"] == namespace]


async def test_service_variables_in_the_container_env_explicit_env_wins(dns):
    web = service("web", "shop", "10.96.5.6", {"port": 80})
    b = ConfigBuilder(FakeClient({}), "192.168.1.2", "/nonexistent", dns, False, {}, Services(MASTER, web))
    c = {"name": "c", "env": [{"name": "WEB_SERVICE_PORT", "value": "8080"},
                              {"name": "URL", "value": "http://$(WEB_SERVICE_HOST):$(WEB_SERVICE_PORT)"}]}
    env = dict((await b.container_config(pod(), c, 0, "")).env)
    assert env["WEB_SERVICE_PORT"] == "8080" and env["URL"] == "http://10.96.5.6:8080"
    assert env["WEB_PORT_80_TCP_ADDR"] == "10.96.5.6" and env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    unsynced = Services()
    unsynced.synced.clear()
    b = ConfigBuilder(FakeClient({}), "192.168.1.2", "/nonexistent", dns, False, {}, unsynced)
    with pytest.raises(ContainerConfigError, match="^services have not yet been read at least once, cannot construct envvars$"):
        await b.container_config(pod(), {"name": "c"}, 0, "")


def test_run_as_non_root_messages():
    p = pod(securityContext={"runAsNonRoot": True})
    who = '(pod: "web-0_shop(u1)", container: c)'
    c = {"name": "c"}
    for uid, user, message in ((None, "", f"container has runAsNonRoot and image will run as root {who}"),
                               (0, "", f"container has runAsNonRoot and image will run as root {who}"),
                               (None, "nobody", ("container has runAsNonRoot and image has non-numeric user (nobody), "
                                                 f"cannot verify user is non-root {who}"))):
        with pytest.raises(ContainerConfigError) as e:
            verify_run_as_non_root(p, c, uid, user)
        assert str(e.value) == message
    verify_run_as_non_root(p, c, 1000, "")
    verify_run_as_non_root(p, {"name": "c", "securityContext": {"runAsUser": 1000}}, None, "")
    verify_run_as_non_root(p, {"name": "c", "securityContext": {"runAsNonRoot": False}}, None, "")
    verify_run_as_non_root(pod(), c, None, "")
    with pytest.raises(ContainerConfigError, match=r"^container's runAsUser breaks non-root policy \(pod"):
        verify_run_as_non_root(pod(securityContext={"runAsNonRoot": True, "runAsUser": 0}), c, 1000, "")
