"""What the kubelet resolves before the runtime: DNS per dnsPolicy, the hosts file, $(VAR)
expansion, env from the API with upstream's errors, image references."""
from __future__ import annotations

import base64

import pytest

from kubelet.docker_runtime import reference
from kubelet.podconfig import ConfigBuilder, ContainerConfigError, DNSSettings, dns_config, expand, hosts_file
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
    def __init__(self, objects: dict) -> None:
        self.objects = objects

    async def get(self, resource, name, namespace=None, sub=None):
        try:
            return self.objects[(resource.plural, name)]
        except KeyError:
            raise ApiError(404, {"reason": "NotFound"}) from None


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
