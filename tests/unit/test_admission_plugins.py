"""LimitRanger, Priority and ResourceQuota admission plugins against an in-memory cache and store."""
from __future__ import annotations

import asyncio
import copy

import pytest

from apiserver.plugins import Attributes, load
from apiserver.plugins.limitranger import PLUGIN as LIMIT_RANGER
from apiserver.plugins.priority import PLUGIN as PRIORITY
from apiserver.plugins.resourcequota import PLUGIN as QUOTA
from apiserver.storage import StaleRevision
from kubeling.api.errors import StatusError
from kubeling.api.resources import lookup

PODS, PVCS = lookup("", "v1", "pods"), lookup("", "v1", "persistentvolumeclaims")
CONFIGMAPS, QUOTAS = lookup("", "v1", "configmaps"), lookup("", "v1", "resourcequotas")
LIMITS, CLASSES = lookup("", "v1", "limitranges"), lookup("scheduling.k8s.io", "v1", "priorityclasses")


class Store:
    """The watch cache and etcd in one: get/list by key prefix, compare-and-swap updates."""

    def __init__(self, *objs: tuple) -> None:
        self.items: dict[str, dict] = {}
        self.rev = 1
        self.lose_races = 0    # the next n updates find the key moved on
        for r, obj in objs:
            self.put(r, obj)

    def put(self, r, obj: dict) -> None:
        self.rev += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rev)
        self.items[r.key(obj["metadata"].get("namespace"), obj["metadata"]["name"])] = obj

    def get(self, key: str) -> dict | None:
        return self.items.get(key)

    def list(self, prefix: str, namespace: str | None):
        lo = prefix + (f"{namespace}/" if namespace else "")
        return [o for k, o in sorted(self.items.items()) if k.startswith(lo)]

    async def wait_for(self, rev: int, timeout: float) -> bool:
        return True

    async def current_revision(self) -> int:
        return self.rev

    async def update(self, key: str, obj: dict, expected_rev: int) -> dict:
        cur = self.items[key]
        if self.lose_races:
            self.lose_races -= 1
            self.rev += 1
            cur["metadata"]["resourceVersion"] = str(self.rev)
        if int(cur["metadata"]["resourceVersion"]) != expected_rev:
            raise StaleRevision(cur)
        self.rev += 1
        self.items[key] = {**copy.deepcopy(obj), "metadata": {**obj["metadata"], "resourceVersion": str(self.rev)}}
        return self.items[key]


def attrs(store: Store, r, obj: dict, op: str = "CREATE", old: dict | None = None, dry_run: bool = False) -> Attributes:
    meta = obj["metadata"]
    return Attributes(op, r, None, meta.get("namespace"), meta.get("name", ""), obj, old, dry_run, store, store)


def pod(name: str = "p", *containers: dict, **spec) -> dict:
    cs = list(containers) or [{"name": "c", "image": "busybox"}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "ns"},
            "spec": {"containers": cs, **spec}}


def container(name: str = "c", requests: dict | None = None, limits: dict | None = None) -> dict:
    res = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
    return {"name": name, "image": "busybox", "resources": res}


def run(plugin, a: Attributes) -> None:
    asyncio.run(plugin.admit(a))


def refused(plugin, a: Attributes) -> str:
    with pytest.raises(StatusError) as e:
        run(plugin, a)
    assert e.value.code == 403 and e.value.reason == "Forbidden"
    return e.value.message


def test_plugins_load_in_upstream_order():
    names = [p.name for p in load()]
    assert names.index("LimitRanger") < names.index("Priority") < names.index("ResourceQuota")


# ---- LimitRanger -----------------------------------------------------------------------------------

def limit_range(*items: dict) -> dict:
    """A LimitRange as stored (defaulted: default limits from max, default requests from them or min)."""
    from apiserver.api.defaults import DEFAULTERS
    lr = {"metadata": {"name": "lr", "namespace": "ns"}, "spec": {"limits": list(items)}}
    DEFAULTERS[("", "LimitRange")](lr)
    return lr


def test_limit_range_defaults_requests_and_limits_and_annotates():
    store = Store((LIMITS, limit_range({"type": "Container", "default": {"cpu": "500m", "memory": "128Mi"},
                                        "defaultRequest": {"cpu": "100m"}})))
    p = pod("p", container("a", limits={"memory": "64Mi"}))
    run(LIMIT_RANGER, attrs(store, PODS, p))
    res = p["spec"]["containers"][0]["resources"]
    # as upstream, the default limit is the default request too (here above the container's own limit,
    # which pod validation then refuses)
    assert res == {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "64Mi", "cpu": "500m"}}
    assert p["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == \
        "LimitRanger plugin set: cpu, memory request for container a; cpu limit for container a"


def test_limit_range_min_max_and_ratio_messages():
    store = Store((LIMITS, limit_range({"type": "Container", "min": {"cpu": "100m"}})))
    msg = refused(LIMIT_RANGER, attrs(store, PODS, pod("x", container(requests={"cpu": "50m"}))))
    assert msg == 'pods "x" is forbidden: minimum cpu usage per Container is 100m, but request is 50m'
    store = Store((LIMITS, limit_range({"type": "Pod", "max": {"memory": "1Gi"}})))
    msg = refused(LIMIT_RANGER, attrs(store, PODS, pod("x", container())))
    assert msg == 'pods "x" is forbidden: maximum memory usage per Pod is 1Gi.  No limit is specified'
    store = Store((LIMITS, limit_range({"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}})))
    msg = refused(LIMIT_RANGER, attrs(store, PODS, pod("x", container(requests={"cpu": "100m"}, limits={"cpu": "300m"}))))
    assert msg == 'pods "x" is forbidden: cpu max limit to request ratio per Container is 2, but provided ratio is 3.000000'
    store = Store((LIMITS, limit_range({"type": "Pod", "max": {"cpu": "1"}})))
    two = pod("x", container("a", {"cpu": "600m"}, {"cpu": "600m"}), container("b", {"cpu": "600m"}, {"cpu": "600m"}))
    msg = refused(LIMIT_RANGER, attrs(store, PODS, two))
    assert msg == 'pods "x" is forbidden: maximum cpu usage per Pod is 1, but limit is 1200m'


def test_limit_range_bounds_claims():
    store = Store((LIMITS, limit_range({"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"},
                                        "max": {"storage": "2Gi"}})))
    claim = {"metadata": {"name": "c", "namespace": "ns"}, "spec": {"resources": {"requests": {"storage": "5Gi"}}}}
    assert refused(LIMIT_RANGER, attrs(store, PVCS, claim)) == \
        'persistentvolumeclaims "c" is forbidden: maximum storage usage per PersistentVolumeClaim is 2Gi, but request is 5Gi'
    claim["spec"]["resources"]["requests"]["storage"] = "1536Mi"
    run(LIMIT_RANGER, attrs(store, PVCS, claim))


# ---- Priority --------------------------------------------------------------------------------------

def priority_class(name: str, value: int, **kw) -> dict:
    return {"metadata": {"name": name}, "value": value, **kw}


def test_priority_from_class_default_class_or_zero():
    store = Store((CLASSES, priority_class("high", 1000, preemptionPolicy="Never")))
    p = pod(priorityClassName="high")
    run(PRIORITY, attrs(store, PODS, p))
    assert (p["spec"]["priority"], p["spec"]["preemptionPolicy"]) == (1000, "Never")
    p = pod()
    run(PRIORITY, attrs(store, PODS, p))
    assert (p["spec"]["priority"], p["spec"]["preemptionPolicy"], p["spec"].get("priorityClassName")) == \
        (0, "PreemptLowerPriority", None)
    store.put(CLASSES, priority_class("default", 7, globalDefault=True))
    p = pod()
    run(PRIORITY, attrs(store, PODS, p))
    assert (p["spec"]["priority"], p["spec"]["priorityClassName"]) == (7, "default")
    # a priority written by the user must agree with the global default class, as upstream
    assert refused(PRIORITY, attrs(store, PODS, pod("z", priority=0))).endswith("computed 7 from the given PriorityClass name")


def test_priority_refusals():
    store = Store((CLASSES, priority_class("high", 1000)))
    assert refused(PRIORITY, attrs(store, PODS, pod("x", priorityClassName="foo"))) == \
        'pods "x" is forbidden: no PriorityClass with name foo was found'
    assert refused(PRIORITY, attrs(store, PODS, pod("x", priorityClassName="high", priority=5))) == \
        'pods "x" is forbidden: the integer value of priority (5) must not be provided in pod spec; priority ' \
        'admission controller computed 1000 from the given PriorityClass name'
    store.put(CLASSES, priority_class("one", 1, globalDefault=True))
    msg = refused(PRIORITY, attrs(store, CLASSES, priority_class("two", 2, globalDefault=True)))
    assert msg == 'priorityclasses.scheduling.k8s.io "two" is forbidden: PriorityClass one is already marked as ' \
                  'default. Only one default can exist'


# ---- ResourceQuota ---------------------------------------------------------------------------------

def quota(hard: dict, used: dict | None, name: str = "q", **spec) -> dict:
    q = {"metadata": {"name": name, "namespace": "ns"}, "spec": {"hard": hard, **spec}}
    if used is not None:
        q["status"] = {"hard": hard, "used": used}
    return q


def used(store: Store, name: str = "q") -> dict:
    return store.get(QUOTAS.key("ns", name))["status"]["used"]


def test_quota_charges_then_refuses_with_upstream_message():
    store = Store((QUOTAS, quota({"pods": "2"}, {"pods": "1"})))
    run(QUOTA, attrs(store, PODS, pod("a")))
    assert used(store) == {"pods": "2"}
    msg = refused(QUOTA, attrs(store, PODS, pod("x")))
    assert msg == 'pods "x" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2'


def test_quota_compute_resources_and_must_specify():
    store = Store((QUOTAS, quota({"requests.cpu": "1", "limits.memory": "1Gi"},
                                 {"requests.cpu": "0", "limits.memory": "0"})))
    msg = refused(QUOTA, attrs(store, PODS, pod("x", container("a", {"cpu": "100m"}), container("b"))))
    assert msg == 'pods "x" is forbidden: failed quota: q: must specify limits.memory for: a,b; requests.cpu for: b'
    run(QUOTA, attrs(store, PODS, pod("y", container("a", {"cpu": "600m"}, {"memory": "512Mi"}))))
    assert used(store) == {"requests.cpu": "600m", "limits.memory": "512Mi"}
    msg = refused(QUOTA, attrs(store, PODS, pod("z", container("a", {"cpu": "500m"}, {"memory": "256Mi"}))))
    assert msg == 'pods "z" is forbidden: exceeded quota: q, requested: requests.cpu=500m, used: requests.cpu=600m, ' \
                  'limited: requests.cpu=1'


def test_quota_scopes_and_counts():
    store = Store((QUOTAS, quota({"pods": "0"}, {"pods": "0"}, "be", scopes=["BestEffort"])),
                  (QUOTAS, quota({"pods": "0"}, {"pods": "0"}, "hi", scopeSelector={"matchExpressions": [
                      {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]})),
                  (QUOTAS, quota({"count/configmaps": "1", "configmaps": "5"}, {"count/configmaps": "0", "configmaps": "0"}, "cm")))
    run(QUOTA, attrs(store, PODS, pod("burstable", container(requests={"cpu": "1m"}))))
    assert "exceeded quota: be" in refused(QUOTA, attrs(store, PODS, pod("x")))
    assert "exceeded quota: hi" in refused(QUOTA, attrs(store, PODS, pod("y", container(requests={"cpu": "1m"}),
                                                                         priorityClassName="high")))
    cm = {"metadata": {"name": "c", "namespace": "ns"}}
    run(QUOTA, attrs(store, CONFIGMAPS, cm))
    assert used(store, "cm") == {"count/configmaps": "1", "configmaps": "1"}
    assert refused(QUOTA, attrs(store, CONFIGMAPS, {"metadata": {"name": "d", "namespace": "ns"}})) == \
        'configmaps "d" is forbidden: exceeded quota: cm, requested: count/configmaps=1, used: count/configmaps=1, ' \
        'limited: count/configmaps=1'


def test_quota_without_usage_is_unknown_and_dry_run_does_not_charge():
    store = Store((QUOTAS, quota({"pods": "2", "count/pods": "3"}, {"pods": "0"})))
    assert refused(QUOTA, attrs(store, PODS, pod("x"))) == \
        'pods "x" is forbidden: status unknown for quota: q, resources: count/pods,pods'
    store = Store((QUOTAS, quota({"pods": "2"}, {"pods": "0"})))
    run(QUOTA, attrs(store, PODS, pod("x"), dry_run=True))
    assert used(store) == {"pods": "0"}


def test_quota_charge_retries_a_lost_compare_and_swap():
    store = Store((QUOTAS, quota({"pods": "5"}, {"pods": "1"})))
    store.lose_races = 2
    run(QUOTA, attrs(store, PODS, pod("a")))
    assert used(store) == {"pods": "2"}


def test_quantities_print_as_resource_quantity_does():
    from decimal import Decimal

    from kubeling.api.quota import canonical, format_quantity
    assert [canonical(q) for q in ("1000m", "1500m", "2000", "1536Mi", "1Gi", "0.5", "1G")] == \
        ["1", "1500m", "2k", "1536Mi", "1Gi", "500m", "1G"]
    assert format_quantity(Decimal(3 * 2**20), binary=True) == "3Mi"
