"""Deployment controller: one ReplicaSet per template (pod-template-hash), revisions for
`kubectl rollout`, RollingUpdate within maxSurge/maxUnavailable, Recreate, pause, history clean-up."""
from __future__ import annotations

import hashlib
import math
import time

import orjson

from kubeling.api.resources import lookup
from kubeling.client import ApiError

from .base import Controller, controller_of

RS, DEPLOY = lookup("apps", "v1", "replicasets"), lookup("apps", "v1", "deployments")
REV = "deployment.kubernetes.io/revision"
HASH = "pod-template-hash"
ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: dict) -> str:
    digest = int(hashlib.sha256(orjson.dumps(template, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16], 16)
    out = ""
    for _ in range(10):
        digest, r = divmod(digest, len(ALPHABET))
        out += ALPHABET[r]
    return out


def _strip_hash(template: dict) -> dict:
    t = orjson.loads(orjson.dumps(template))
    (t.get("metadata") or {}).get("labels", {}).pop(HASH, None)
    return t


def resolve(value, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        x = int(value[:-1]) * total / 100
        return math.ceil(x) if round_up else math.floor(x)
    return int(value or 0)


def _available(rs: dict) -> int:
    """Available pods of a ReplicaSet, at most its spec: a scale-down the ReplicaSet controller has
    not yet reported would otherwise count the pods it is deleting, and a second pass would cut
    below replicas-maxUnavailable."""
    return min((rs.get("status") or {}).get("availableReplicas", 0), rs["spec"].get("replicas", 0))


def old_sizes(min_available: int, new: dict, old: list[dict]) -> dict[str, int]:
    """Replicas for each old ReplicaSet in a rolling update, as upstream scales them down: unhealthy
    old pods first, then oldest first as far as keeping min_available pods available allows."""
    total = sum(r["spec"].get("replicas", 0) for r in [new] + old)
    sizes = {r["metadata"]["name"]: r["spec"].get("replicas", 0) for r in old}
    budget = total - min_available - max(0, new["spec"].get("replicas", 0) - _available(new))
    if budget <= 0:
        return sizes
    old_sorted = sorted(old, key=lambda x: x["metadata"].get("creationTimestamp", ""))
    for r in old_sorted:
        unhealthy = min(sizes[r["metadata"]["name"]] - _available(r), budget)
        if unhealthy > 0:
            sizes[r["metadata"]["name"]] -= unhealthy
            budget -= unhealthy
    can_remove = sum(_available(r) for r in [new] + old) - min_available
    for r in old_sorted:
        cut = min(sizes[r["metadata"]["name"]], max(0, can_remove))
        sizes[r["metadata"]["name"]] -= cut
        can_remove -= cut
    return sizes


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class DeploymentController(Controller):
    name = "deployment"

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.deploys = self.factory.get(DEPLOY)
        self.rs = self.factory.get(RS)
        self.rs.add_indexer("owner", lambda o: [r["uid"] for r in o["metadata"].get("ownerReferences") or []
                                                if r.get("controller")])
        self.deploys.add_handler(*self.enqueue_handlers())
        self.rs.add_handler(self.on_rs, lambda old, new: self.on_rs(new), self.on_rs)

    def on_rs(self, rs: dict) -> None:
        ref = controller_of(rs)
        if ref and ref.get("kind") == "Deployment":
            self.queue.add(f"{rs['metadata']['namespace']}/{ref['name']}")

    async def sync(self, key: str) -> None:
        d = self.deploys.get(key)
        if d is None or d["metadata"].get("deletionTimestamp"):
            return
        ns, spec = d["metadata"]["namespace"], d.get("spec") or {}
        owned = self.rs.by_index("owner", d["metadata"]["uid"])
        h = template_hash(_strip_hash(spec.get("template") or {}))
        new = next((r for r in owned if (r["metadata"].get("labels") or {}).get(HASH) == h), None)
        old = [r for r in owned if r is not new]
        max_rev = max((int((r["metadata"].get("annotations") or {}).get(REV, "0") or 0) for r in owned), default=0)
        if spec.get("paused"):
            await self._status(d, new, old)
            return
        if new is None:
            new = await self._create_rs(d, h, max_rev + 1, 0 if any(r["spec"].get("replicas") for r in old)
                                        else spec.get("replicas", 1))
        elif int((new["metadata"].get("annotations") or {}).get(REV, "0") or 0) < max_rev:
            new = await self.client.patch(RS, new["metadata"]["name"], {"metadata": {"annotations": {REV: str(max_rev + 1)}}}, ns)
        rev = (new["metadata"].get("annotations") or {}).get(REV)
        if (d["metadata"].get("annotations") or {}).get(REV) != rev:
            d = await self.client.patch(DEPLOY, d["metadata"]["name"], {"metadata": {"annotations": {REV: rev}}}, ns)
        strategy = (spec.get("strategy") or {}).get("type", "RollingUpdate")
        if strategy == "Recreate":
            await self._recreate(d, new, old)
        else:
            await self._rolling(d, new, old)
        await self._cleanup(d, old)
        await self._status(d, self.rs.get(f"{ns}/{new['metadata']['name']}") or new, old)

    async def _create_rs(self, d: dict, h: str, revision: int, replicas: int) -> dict:
        spec = d["spec"]
        tpl = orjson.loads(orjson.dumps(spec.get("template") or {}))
        tpl.setdefault("metadata", {}).setdefault("labels", {})[HASH] = h
        sel = orjson.loads(orjson.dumps(spec.get("selector") or {}))
        sel.setdefault("matchLabels", {})[HASH] = h
        meta = d["metadata"]
        body = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": f"{meta['name']}-{h}", "namespace": meta["namespace"],
                             "labels": {**(tpl["metadata"].get("labels") or {})},
                             "annotations": {REV: str(revision), "deployment.kubernetes.io/desired-replicas": str(spec.get("replicas", 1)),
                                             "deployment.kubernetes.io/max-replicas": str(spec.get("replicas", 1))},
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"],
                                                  "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]},
                "spec": {"replicas": replicas, "minReadySeconds": spec.get("minReadySeconds", 0), "selector": sel,
                         "template": tpl}}
        try:
            rs = await self.client.create(RS, body, meta["namespace"])
        except ApiError as e:
            if e.code != 409:
                raise
            rs = await self.client.get(RS, body["metadata"]["name"], meta["namespace"])
        self.recorder.event(d, "Normal", "ScalingReplicaSet",
                            f"Scaled up replica set {rs['metadata']['name']} from 0 to {replicas}")
        return rs

    async def _scale(self, d: dict, rs: dict, n: int) -> None:
        cur = rs["spec"].get("replicas", 0)
        if cur == n:
            return
        await self.client.patch(RS, rs["metadata"]["name"], {"spec": {"replicas": n}, "metadata": {"annotations": {
            "deployment.kubernetes.io/desired-replicas": str(d["spec"].get("replicas", 1))}}}, rs["metadata"]["namespace"])
        verb = "up" if n > cur else "down"
        self.recorder.event(d, "Normal", "ScalingReplicaSet",
                            f"Scaled {verb} replica set {rs['metadata']['name']} from {cur} to {n}")

    async def _rolling(self, d: dict, new: dict, old: list[dict]) -> None:
        spec = d["spec"]
        want = spec.get("replicas", 1)
        ru = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        surge = resolve(ru.get("maxSurge", "25%"), want, True)
        unavailable = resolve(ru.get("maxUnavailable", "25%"), want, False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        total = sum(r["spec"].get("replicas", 0) for r in [new] + old)
        new_n = new["spec"].get("replicas", 0)
        if not old or all(r["spec"].get("replicas", 0) == 0 for r in old):
            await self._scale(d, new, want)
            return
        if new_n < want:
            room = want + surge - total
            if room > 0:
                await self._scale(d, new, min(want, new_n + room))
                return
        sizes = old_sizes(want - unavailable, new, old)
        for r in old:
            await self._scale(d, r, sizes[r["metadata"]["name"]])
        if new_n > want:
            await self._scale(d, new, want)

    async def _recreate(self, d: dict, new: dict, old: list[dict]) -> None:
        for r in old:
            await self._scale(d, r, 0)
        if all((r.get("status") or {}).get("replicas", 0) == 0 for r in old):
            await self._scale(d, new, d["spec"].get("replicas", 1))

    async def _cleanup(self, d: dict, old: list[dict]) -> None:
        limit = d["spec"].get("revisionHistoryLimit", 10)
        idle = [r for r in old if r["spec"].get("replicas", 0) == 0 and (r.get("status") or {}).get("replicas", 0) == 0]
        idle.sort(key=lambda r: int((r["metadata"].get("annotations") or {}).get(REV, "0") or 0))
        for r in idle[: max(0, len(idle) - limit)]:
            try:
                await self.client.delete(RS, r["metadata"]["name"], r["metadata"]["namespace"])
            except ApiError as e:
                if not e.not_found:
                    raise

    async def _status(self, d: dict, new: dict | None, old: list[dict]) -> None:
        all_rs = ([new] if new else []) + old
        st = lambda r, k: (r.get("status") or {}).get(k, 0)  # noqa: E731
        want = d["spec"].get("replicas", 1)
        replicas = sum(st(r, "replicas") for r in all_rs)
        available = sum(st(r, "availableReplicas") for r in all_rs)
        updated = st(new, "replicas") if new else 0
        ru = (d["spec"].get("strategy") or {}).get("rollingUpdate") or {}
        min_available = want - resolve(ru.get("maxUnavailable", "25%"), want, False)
        conds = {c["type"]: c for c in (d.get("status") or {}).get("conditions") or []}

        def cond(typ: str, status: str, reason: str, message: str) -> dict:
            prev = conds.get(typ)
            same = prev and prev.get("status") == status and prev.get("reason") == reason
            return {"type": typ, "status": status, "lastUpdateTime": prev["lastUpdateTime"] if same else _now(),
                    "lastTransitionTime": prev["lastTransitionTime"] if prev and prev.get("status") == status else _now(),
                    "reason": reason, "message": message}
        name = new["metadata"]["name"] if new else ""
        complete = updated == want and replicas == want and available >= want
        cur_st = d.get("status") or {}
        moved = any(cur_st.get(k, 0) != v for k, v in (("updatedReplicas", updated), ("availableReplicas", available),
                                                        ("replicas", replicas)))
        prog = conds.get("Progressing")
        deadline = d["spec"].get("progressDeadlineSeconds", 600)
        from kubeling.client.leaderelection import parse_time
        stalled = (not complete and not moved and prog is not None and prog.get("reason") != "NewReplicaSetAvailable"
                   and parse_time(prog.get("lastUpdateTime")) + deadline < time.time())
        if prog is not None and prog.get("reason") == "ProgressDeadlineExceeded" and not moved and not complete:
            stalled = True
        if not complete and not stalled:
            self.queue.add_after(f"{d['metadata']['namespace']}/{d['metadata']['name']}", min(deadline, 30) + 0.5)
        if moved and prog is not None:     # progress refreshes the deadline
            conds["Progressing"] = {**prog, "lastUpdateTime": _now()}
        status = {
            "observedGeneration": d["metadata"].get("generation", 1), "replicas": replicas, "updatedReplicas": updated,
            "readyReplicas": sum(st(r, "readyReplicas") for r in all_rs), "availableReplicas": available,
            "unavailableReplicas": max(0, replicas - available) if replicas >= want else max(0, want - available),
            "conditions": [
                cond("Available", "True" if available >= min_available else "False",
                     "MinimumReplicasAvailable" if available >= min_available else "MinimumReplicasUnavailable",
                     "Deployment has minimum availability." if available >= min_available
                     else "Deployment does not have minimum availability."),
                cond("Progressing", "False", "ProgressDeadlineExceeded",
                     f'ReplicaSet "{name}" has timed out progressing.') if stalled else
                cond("Progressing", "True", "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                     f'ReplicaSet "{name}" has successfully progressed.' if complete
                     else f'ReplicaSet "{name}" is progressing.'),
            ]}
        for k in ("readyReplicas", "availableReplicas", "unavailableReplicas", "updatedReplicas", "replicas"):
            if status[k] == 0:
                status.pop(k)
        cur = d.get("status") or {}
        if {k: v for k, v in status.items() if k != "conditions"} == {k: v for k, v in cur.items() if k != "conditions"} \
                and [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == \
                [(c.get("type"), c.get("status"), c.get("reason")) for c in cur.get("conditions") or []]:
            return
        body = {**d, "status": status}
        try:
            await self.client.update(DEPLOY, body, d["metadata"]["namespace"], "status")
        except ApiError as e:
            if e.conflict:
                self.queue.add(f"{d['metadata']['namespace']}/{d['metadata']['name']}")
            elif not e.not_found:
                raise
