"""The official kubernetes Python client against etcdnode + apiserver, and two apiservers on one store."""
from __future__ import annotations

import threading

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.support.control_plane import ApiServer

SHARES_CONTROL_PLANE = True   # API calls only: the session's control plane (tests/conftest.py)


def clients(api: ApiServer) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(api.kubeconfig))


@pytest.fixture(scope="module")
def core(control_plane):
    return client.CoreV1Api(clients(control_plane))


@pytest.fixture(scope="module")
def apps(control_plane):
    return client.AppsV1Api(clients(control_plane))


def deployment(name: str, image: str = "nginx:1.25") -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=2, selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(
                    name="web", image=image, ports=[client.V1ContainerPort(container_port=80)])]))))


def test_round_trips(core, apps, ns):
    created = apps.create_namespaced_deployment(ns, deployment("web"))
    assert created.metadata.uid and created.spec.template.spec.containers[0].image_pull_policy == "IfNotPresent"
    got = apps.read_namespaced_deployment("web", ns)
    assert got.spec.replicas == 2
    patched = apps.patch_namespaced_deployment("web", ns, {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "nginx:1.26"}]}}}})   # strategic merge by container name
    containers = patched.spec.template.spec.containers
    assert len(containers) == 1 and containers[0].image == "nginx:1.26" and containers[0].ports[0].container_port == 80
    assert patched.metadata.generation == 2
    listed = apps.list_namespaced_deployment(ns, label_selector="")
    assert [d.metadata.name for d in listed.items] == ["web"]
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c", labels={"a": "b"}),
                                                            data={"k": "v"}))
    assert [c.metadata.name for c in core.list_namespaced_config_map(ns, label_selector="a=b").items] == ["c"]
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c")))
    assert e.value.status == 409
    apps.delete_namespaced_deployment("web", ns)
    with pytest.raises(ApiException) as e:
        apps.read_namespaced_deployment("web", ns)
    assert e.value.status == 404


def test_watch_and_resume(core, ns):
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    for i in range(3):
        core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"w{i}")))
    w = watch.Watch()
    seen = []
    for ev in w.stream(core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=5):
        seen.append((ev["type"], ev["object"].metadata.name))
        if len(seen) == 2:
            w.stop()
    last_rv = core.read_namespaced_config_map("w1", ns).metadata.resource_version
    # resume after w1: only w2 arrives
    for ev in watch.Watch().stream(core.list_namespaced_config_map, ns, resource_version=last_rv, timeout_seconds=2):
        seen.append((ev["type"], ev["object"].metadata.name))
        break
    assert seen == [("ADDED", "w0"), ("ADDED", "w1"), ("ADDED", "w2")]


def test_too_old_resource_version_is_410_then_relist(control_plane, tmp_path):
    """An apiserver keeping a short history answers 410 Expired; the client relists and watches again."""
    api = ApiServer(tmp_path / "short", control_plane.store.client_urls, cert_dir=control_plane.cert_dir,
                    tokens=control_plane.tokens, extra_args=["--watch-cache-history", "5"], name="short").start()
    try:
        core = client.CoreV1Api(clients(api))
        ns = "expired-ns"
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        old_rv = core.list_namespaced_config_map(ns).metadata.resource_version
        for i in range(8):
            core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"e{i}")))
        with pytest.raises(ApiException) as e:
            for _ in watch.Watch().stream(core.list_namespaced_config_map, ns, resource_version=old_rv, timeout_seconds=5):
                pass
        assert e.value.status == 410
        fresh = core.list_namespaced_config_map(ns)
        assert len(fresh.items) == 8
        core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="after")))
        names = [ev["object"].metadata.name for ev in watch.Watch().stream(
            core.list_namespaced_config_map, ns, resource_version=fresh.metadata.resource_version, timeout_seconds=2)]
        assert names == ["after"]
    finally:
        api.stop()


def test_two_apiservers_on_one_store(control_plane, tmp_path, ns):
    other = ApiServer(tmp_path / "second", control_plane.store.client_urls, cert_dir=control_plane.cert_dir,
                      tokens=control_plane.tokens, name="second").start()
    try:
        a, b = client.CoreV1Api(clients(control_plane)), client.CoreV1Api(clients(other))
        rv = b.list_namespaced_config_map(ns).metadata.resource_version
        events: list = []

        def watch_b() -> None:
            for ev in watch.Watch().stream(b.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=10):
                events.append((ev["type"], ev["object"].metadata.name))
                if len(events) == 1:
                    return
        t = threading.Thread(target=watch_b)
        t.start()
        a.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="from-a")))
        assert b.read_namespaced_config_map("from-a", ns).metadata.name == "from-a"
        t.join(15)
        assert events == [("ADDED", "from-a")]
        # both allocate service IPs from one range without duplicates
        ips = set()
        for i in range(6):
            api = a if i % 2 else b
            svc = api.create_namespaced_service(ns, client.V1Service(metadata=client.V1ObjectMeta(name=f"s{i}"),
                                                spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)])))
            ips.add(svc.spec.cluster_ip)
        assert len(ips) == 6
        # a requested clusterIP raced for through both apiservers: one gets it, the other is told it is
        # taken; neither is quietly given another address
        from concurrent.futures import ThreadPoolExecutor
        for i in range(5):
            ip = f"10.96.77.{10 + i}"

            def create(api, name):
                try:
                    return api.create_namespaced_service(ns, client.V1Service(
                        metadata=client.V1ObjectMeta(name=name),
                        spec=client.V1ServiceSpec(cluster_ip=ip, ports=[client.V1ServicePort(port=80)]))).spec.cluster_ip
                except ApiException as e:
                    assert e.status == 422 and "provided IP is already allocated" in e.body, e.body
                    return None
            with ThreadPoolExecutor(2) as pool:
                got = list(pool.map(create, (a, b), (f"race{i}a", f"race{i}b")))
            assert sorted(got, key=str) == sorted([ip, None], key=str), got
    finally:
        other.stop()
