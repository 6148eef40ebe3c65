"""StatefulSet controller: pods with stable names (<set>-<ordinal>), hostnames and claims.

As upstream's pkg/controller/statefulset: each template version is a ControllerRevision
(`<set>-<hash>`, data a strategic-merge patch that replaces spec.template, so `kubectl rollout
history|undo statefulset` work) whose name labels the pods (controller-revision-hash).
OrderedReady creates ordinal i+1 only once 0..i are running, ready and available (minReadySeconds)
and removes one pod at a time from the highest ordinal; Parallel creates and removes all at once. RollingUpdate replaces
outdated pods from the highest ordinal down to the partition, at most maxUnavailable at a time;
OnDelete replaces a pod only when someone deletes it. volumeClaimTemplates give each ordinal its
own PersistentVolumeClaims (<template>-<set>-<ordinal>) that outlive its pods; the retention policy
is carried out through owner references for the garbage collector, as upstream."""
from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from kubeling.api.resources import lookup
from kubeling.api.selectors import selector_from_object
from kubeling.client import ApiError
from kubeling.client.leaderelection import parse_time

from .base import controller_of
from .deployment import resolve, template_hash
from .replicaset import adopt, pod_ready
from .workloads import OwnedPods, _owner_ref

PODS, PVCS = lookup("", "v1", "pods"), lookup("", "v1", "persistentvolumeclaims")
STS, REVISIONS = lookup("apps", "v1", "statefulsets"), lookup("apps", "v1", "controllerrevisions")
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"
_ORDINAL = re.compile(r"^(.*)-([0-9]+)$")


# ---- identity ------------------------------------------------------------------------------------

def ordinal_of(set_name: str, pod: dict) -> int | None:
    """getParentNameAndOrdinal: the ordinal of a pod named <set>-<n>, None for any other name."""
    m = _ORDINAL.match(pod["metadata"].get("name") or "")
    return int(m.group(2)) if m and m.group(1) == set_name else None


def claim_name(template: dict, set_name: str, ordinal: int) -> str:
    return f"{(template.get('metadata') or {}).get('name', '')}-{set_name}-{ordinal}"


def wanted_ordinals(spec: dict) -> range:
    """The ordinals the set should have: spec.ordinals.start onwards, spec.replicas of them."""
    start = (spec.get("ordinals") or {}).get("start", 0)
    return range(start, start + spec.get("replicas", 1))


def revision_of(pod: dict) -> str:
    return (pod["metadata"].get("labels") or {}).get(REVISION_LABEL, "")


def _go_map_order(value: Any) -> Any:
    """Keys sorted at every level, as Go's json.Marshal writes a map[string]interface{}."""
    if isinstance(value, dict):
        return {k: _go_map_order(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_go_map_order(v) for v in value]
    return value


def revision_patch(template: dict) -> dict:
    """What a ControllerRevision stores: the patch kubectl applies to roll back. kubectl compares
    it byte for byte with the patch it builds from the live set (getStatefulSetPatch, a Go map:
    sorted keys) to skip a rollback to the current template, so it is written in that order."""
    return _go_map_order({"spec": {"template": {**template, "$patch": "replace"}}})


def revision_template(rev: dict) -> dict:
    tpl = dict(((rev.get("data") or {}).get("spec") or {}).get("template") or {})
    tpl.pop("$patch", None)
    return tpl


def new_pod(sts: dict, template: dict, ordinal: int, revision: str) -> dict:
    """newStatefulSetPod: the template with the ordinal's identity (name, hostname, subdomain, labels)
    and its claims in place of the template's volumes of the same names."""
    tpl = orjson.loads(orjson.dumps(template))
    meta, spec = tpl.get("metadata") or {}, tpl.get("spec") or {}
    set_name = sts["metadata"]["name"]
    name = f"{set_name}-{ordinal}"
    claims = {(c.get("metadata") or {}).get("name"): claim_name(c, set_name, ordinal)
              for c in sts["spec"].get("volumeClaimTemplates") or []}
    spec["volumes"] = [v for v in spec.get("volumes") or [] if v.get("name") not in claims] + [
        {"name": vol, "persistentVolumeClaim": {"claimName": claim}} for vol, claim in claims.items()]
    if not spec["volumes"]:
        del spec["volumes"]
    spec["hostname"] = name
    spec["subdomain"] = sts["spec"].get("serviceName") or ""
    if not spec["subdomain"]:
        del spec["subdomain"]
    pod_meta = {"name": name, "labels": {**(meta.get("labels") or {}), POD_NAME_LABEL: name,
                                         POD_INDEX_LABEL: str(ordinal), REVISION_LABEL: revision},
                "ownerReferences": [_owner_ref(sts, "StatefulSet", "apps/v1")]}
    for key in ("annotations", "finalizers"):
        if meta.get(key):
            pod_meta[key] = meta[key]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


# ---- the decision --------------------------------------------------------------------------------

def _terminating(pod: dict) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def _finished(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded")


def _healthy(pod: dict) -> bool:
    """isRunningAndReady, not terminating."""
    return (not _terminating(pod) and (pod.get("status") or {}).get("phase") == "Running"
            and pod_ready(pod))


def unavailable_for(pod: dict, min_ready: float, now: float) -> float:
    """Seconds until a healthy pod counts as available (ready for minReadySeconds): 0 when it does."""
    if not min_ready:
        return 0.0
    since = next((parse_time(c.get("lastTransitionTime")) for c in (pod.get("status") or {}).get("conditions") or []
                  if c.get("type") == "Ready"), now)
    return max(0.0, since + min_ready - now)


@dataclass
class Plan:
    """What one sync does: ordinals to create, pods to delete (scale-down ones separately, for
    their claims' retention policy)."""
    create: list[int] = field(default_factory=list)
    delete: list[dict] = field(default_factory=list)
    condemn: list[dict] = field(default_factory=list)


def plan(spec: dict, pods: dict[int, dict], update_revision: str, now: float) -> Plan:
    """updateStatefulSet's decisions for pods keyed by ordinal (the set's own only). A pod is "up"
    when running, ready and available (isRunningAndAvailable)."""
    min_ready = spec.get("minReadySeconds", 0)

    def up(pod: dict) -> bool:
        return _healthy(pod) and not unavailable_for(pod, min_ready, now)
    wanted = wanted_ordinals(spec)
    ordered = spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"
    out = Plan()
    for i in wanted:
        pod = pods.get(i)
        if pod is None:
            out.create.append(i)
        elif _finished(pod) and not _terminating(pod):
            out.delete.append(pod)        # a failed pod is replaced under the same name
        elif up(pod):
            continue
        if ordered:
            return out                    # OrderedReady: nothing further until this one is up
    for i in sorted((i for i in pods if i not in wanted), reverse=True):
        pod = pods[i]
        if _terminating(pod):
            if ordered:
                return out
            continue
        out.condemn.append(pod)
        if ordered:
            return out
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return out
    ru = strategy.get("rollingUpdate") or {}
    partition = ru.get("partition", 0)
    unavailable = sum(1 for i in wanted if i not in pods or not up(pods[i]) or pods[i] in out.delete)
    budget = max(1, resolve(ru.get("maxUnavailable", 1), len(wanted), True)) - unavailable
    for i in sorted((i for i in wanted if i >= wanted.start + partition and i in pods), reverse=True):
        if budget <= 0:
            break
        pod = pods[i]
        if revision_of(pod) != update_revision and not _terminating(pod) and pod not in out.delete:
            out.delete.append(pod)
            budget -= 1
    return out


# ---- the controller ------------------------------------------------------------------------------

class StatefulSetController(OwnedPods):
    name = "statefulset"
    owner_resource = STS
    kind = "StatefulSet"

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.claims = self.factory.get(PVCS)
        self.revisions = self.factory.get(REVISIONS)
        self.revisions.add_indexer("owner", lambda r: [o["uid"] for o in r["metadata"].get("ownerReferences") or []
                                                       if o.get("controller")])
        self.pods.add_handler(self.on_orphan, lambda old, new: self.on_orphan(new))

    def on_orphan(self, pod: dict) -> None:
        """An orphan named like a set's member and matching its selector: wake that set to adopt it."""
        if controller_of(pod) is not None or pod["metadata"].get("deletionTimestamp"):
            return
        for sts in self.owners.list(pod["metadata"].get("namespace")):
            if self._member(sts, pod):
                self.enqueue(sts)

    @staticmethod
    def _member(sts: dict, pod: dict) -> bool:
        """isMemberOf and the selector: what ClaimPods adopts."""
        sel = selector_from_object(sts["spec"].get("selector"))
        return bool(sel) and sel.matches(pod["metadata"].get("labels") or {}) and \
            ordinal_of(sts["metadata"]["name"], pod) is not None

    async def sync(self, key: str) -> None:
        sts = self.owners.get(key)
        if sts is None or sts["metadata"].get("deletionTimestamp"):
            return
        name = sts["metadata"]["name"]
        pods: dict[int, dict] = {}
        for p in self.pods.by_index("owner", sts["metadata"]["uid"]):
            if (i := ordinal_of(name, p)) is not None:
                pods[i] = p
        for p in self.pods.list(sts["metadata"]["namespace"]):
            if controller_of(p) is None and not p["metadata"].get("deletionTimestamp") and self._member(sts, p):
                await adopt(self.client, p, _owner_ref(sts, "StatefulSet", "apps/v1"))
                pods.setdefault(ordinal_of(name, p), p)
        current, update, collisions = await self._revisions(sts, list(pods.values()))
        steps = plan(sts["spec"], pods, update["metadata"]["name"], time.time())
        error: ApiError | None = None
        try:
            wanted = wanted_ordinals(sts["spec"])
            live = {i: p for i, p in pods.items()
                    if not _terminating(p) and p not in steps.condemn and p not in steps.delete}
            await asyncio.gather(*(self._restore_identity(sts, p, i) for i, p in live.items()))
            await asyncio.gather(*(self._retain_claims(sts, p, i not in wanted) for i, p in live.items()))
            await asyncio.gather(*(self._delete(sts, p) for p in steps.delete))
            await asyncio.gather(*(self._scale_down(sts, p) for p in steps.condemn))
            await asyncio.gather(*(self._create(sts, i, current, update) for i in steps.create))
        except ApiError as e:     # status is still written, then the sync is retried
            error = e
        await self._status(sts, list(pods.values()), current, update, collisions)
        if error is not None:
            raise error

    # ---- revisions ----

    async def _revisions(self, sts: dict, pods: list[dict]) -> tuple[dict, dict, int]:
        """getStatefulSetRevisions: the current and update ControllerRevisions, creating the update
        one (or renumbering an equal older one after a rollback) and pruning the history beyond
        revisionHistoryLimit; and the collisionCount, raised when another owner's revision holds
        the name the template hashes to."""
        ns, uid = sts["metadata"]["namespace"], sts["metadata"]["uid"]
        status = sts.get("status") or {}
        tpl = sts["spec"].get("template") or {}
        revs = sorted(self.revisions.by_index("owner", uid), key=lambda r: r.get("revision", 0))
        top = max((r.get("revision", 0) for r in revs), default=0)
        collisions = status.get("collisionCount", 0)
        while True:
            h = template_hash({"template": tpl, "collisionCount": collisions})
            rev_name = f"{sts['metadata']['name']}-{h}"
            # FindEqualRevisions: a revision of this template made under another collisionCount
            update = next((r for r in revs if r["metadata"]["name"] == rev_name), None) or \
                next((r for r in reversed(revs) if revision_template(r) == tpl), None)
            if update is not None:
                rev_name = update["metadata"]["name"]
                break
            body = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {
                "name": rev_name, "namespace": ns,
                "labels": {**((tpl.get("metadata") or {}).get("labels") or {}), REVISION_LABEL: h},
                "ownerReferences": [_owner_ref(sts, "StatefulSet", "apps/v1")]},
                "data": revision_patch(tpl), "revision": top + 1}
            try:
                update = await self.client.create(REVISIONS, body, ns)
            except ApiError as e:
                if not e.already_exists:
                    raise
                update = await self.client.get(REVISIONS, rev_name, ns)
                if (controller_of(update) or {}).get("uid") != uid:
                    collisions += 1       # another owner's revision holds the name: hash again
                    continue
            revs.append(update)
            break
        if update.get("revision", 0) < top:
            update = await self.client.patch(REVISIONS, rev_name, {"revision": top + 1}, ns)
            revs = [update if r["metadata"]["name"] == rev_name else r for r in revs]
        current = next((r for r in revs if r["metadata"]["name"] == status.get("currentRevision")), update)
        in_use = {revision_of(p) for p in pods} | {current["metadata"]["name"], rev_name}
        stale = [r for r in revs if r["metadata"]["name"] not in in_use]
        for r in stale[: max(0, len(stale) - sts["spec"].get("revisionHistoryLimit", 10))]:
            try:
                await self.client.delete(REVISIONS, r["metadata"]["name"], ns)
            except ApiError as e:
                if not e.not_found:
                    raise
        return current, update, collisions

    # ---- pods and claims ----

    def _claim_refs(self, sts: dict, pod: dict | None, scaled_down: bool) -> list[dict]:
        """updateClaimOwnerRefForSetAndPod: whenDeleted=Delete makes the set an owner of the claim,
        whenScaled=Delete the scaled-down pod (non-controller references, for the garbage collector)."""
        policy = sts["spec"].get("persistentVolumeClaimRetentionPolicy") or {}
        refs = []
        if policy.get("whenDeleted") == "Delete" and not (scaled_down and policy.get("whenScaled") == "Delete"):
            refs.append({"apiVersion": "apps/v1", "kind": "StatefulSet", "name": sts["metadata"]["name"],
                         "uid": sts["metadata"]["uid"]})
        if scaled_down and pod is not None and policy.get("whenScaled") == "Delete":
            refs.append({"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"],
                         "uid": pod["metadata"]["uid"]})
        return refs

    async def _ensure_claims(self, sts: dict, ordinal: int) -> None:
        """createPersistentVolumeClaims: one claim per template for the ordinal, kept when it exists."""
        ns, set_name = sts["metadata"]["namespace"], sts["metadata"]["name"]
        for tpl in sts["spec"].get("volumeClaimTemplates") or []:
            name = claim_name(tpl, set_name, ordinal)
            existing = self.claims.get(f"{ns}/{name}")
            if existing is not None:
                if existing["metadata"].get("deletionTimestamp"):
                    raise ApiError(409, None, f"pvc {name} is being deleted")
                continue
            meta = tpl.get("metadata") or {}
            labels = {**(meta.get("labels") or {}), **((sts["spec"].get("selector") or {}).get("matchLabels") or {})}
            body = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": name, "namespace": ns, "labels": labels},
                    "spec": tpl.get("spec") or {}}
            if meta.get("annotations"):
                body["metadata"]["annotations"] = meta["annotations"]
            if refs := self._claim_refs(sts, None, False):
                body["metadata"]["ownerReferences"] = refs
            try:
                await self.client.create(PVCS, body, ns)
            except ApiError as e:
                if e.already_exists:
                    continue
                self.recorder.event(sts, "Warning", "FailedCreate", f"create Claim {name} for Pod "
                                    f"{set_name}-{ordinal} in StatefulSet {set_name} failed error: {e}")
                raise
            self.recorder.event(sts, "Normal", "SuccessfulCreate",
                                f"create Claim {name} Pod {set_name}-{ordinal} in StatefulSet {set_name} success")

    async def _create(self, sts: dict, ordinal: int, current: dict, update: dict) -> None:
        """newVersionedStatefulSetPod: below the partition a pod is made from the current revision."""
        spec, set_name = sts["spec"], sts["metadata"]["name"]
        strategy = spec.get("updateStrategy") or {}
        partition = (strategy.get("rollingUpdate") or {}).get("partition", 0)
        below = strategy.get("type", "RollingUpdate") == "RollingUpdate" and \
            ordinal < wanted_ordinals(spec).start + partition
        rev = current if below else update
        outdated = rev["metadata"]["name"] != update["metadata"]["name"]
        template = revision_template(rev) if outdated else spec.get("template") or {}
        await self._ensure_claims(sts, ordinal)
        body = new_pod(sts, template, ordinal, rev["metadata"]["name"])
        try:
            await self.client.create(PODS, body, sts["metadata"]["namespace"])
        except ApiError as e:
            if e.already_exists:     # the informer has not shown it yet
                return
            self.recorder.event(sts, "Warning", "FailedCreate", f"create Pod {body['metadata']['name']} in "
                                f"StatefulSet {set_name} failed error: {e.status.get('message') or e}")
            raise
        self.recorder.event(sts, "Normal", "SuccessfulCreate",
                            f"create Pod {body['metadata']['name']} in StatefulSet {set_name} successful")

    async def _delete(self, sts: dict, pod: dict) -> None:
        await self.delete_pod(pod)
        self.recorder.event(sts, "Normal", "SuccessfulDelete", f"delete Pod {pod['metadata']['name']} in "
                            f"StatefulSet {sts['metadata']['name']} successful")

    async def _restore_identity(self, sts: dict, pod: dict, ordinal: int) -> None:
        """identityMatches/updateIdentity: a member whose identity labels were removed or changed
        gets them back."""
        want = {POD_NAME_LABEL: pod["metadata"]["name"], POD_INDEX_LABEL: str(ordinal)}
        labels = pod["metadata"].get("labels") or {}
        if all(labels.get(k) == v for k, v in want.items()):
            return
        try:
            await self.client.patch(PODS, pod["metadata"]["name"], {"metadata": {"labels": want}},
                                    sts["metadata"]["namespace"])
        except ApiError as e:
            if not e.not_found:
                raise

    async def _retain_claims(self, sts: dict, pod: dict, scaled_down: bool) -> None:
        """Bring the owner references of the pod's claims in line with the retention policy (it
        may have changed since they were made); references to anything else are kept."""
        ns, set_name = sts["metadata"]["namespace"], sts["metadata"]["name"]
        ours = {sts["metadata"]["uid"], pod["metadata"]["uid"]}
        refs = self._claim_refs(sts, pod, scaled_down)
        for tpl in sts["spec"].get("volumeClaimTemplates") or []:
            claim = self.claims.get(f"{ns}/{claim_name(tpl, set_name, ordinal_of(set_name, pod))}")
            if claim is None or claim["metadata"].get("deletionTimestamp"):
                continue
            have = claim["metadata"].get("ownerReferences") or []
            want = [r for r in have if r.get("uid") not in ours] + refs
            if want != have:
                try:
                    await self.client.patch(PVCS, claim["metadata"]["name"],
                                            {"metadata": {"ownerReferences": want or None}}, ns)
                except ApiError as e:
                    if not e.not_found:
                        raise

    async def _scale_down(self, sts: dict, pod: dict) -> None:
        """A condemned pod: its claims first take the owners whenScaled asks for, then it goes."""
        await self._retain_claims(sts, pod, True)
        await self._delete(sts, pod)

    # ---- status ----

    async def _status(self, sts: dict, pods: list[dict], current: dict, update: dict, collisions: int) -> None:
        """computeReplicaStatus, then completeRollingUpdate: once every replica is updated and ready
        the update revision becomes the current one."""
        spec = sts["spec"]
        min_ready, now = spec.get("minReadySeconds", 0), time.time()
        cur_name, upd_name = current["metadata"]["name"], update["metadata"]["name"]

        def available(p: dict) -> bool:
            wait = unavailable_for(p, min_ready, now)
            if wait:     # the sync that counts it (and may proceed past it) is due then
                self.queue.add_after(f"{sts['metadata']['namespace']}/{sts['metadata']['name']}", wait + 0.1)
            return not wait
        created = [p for p in pods if (p.get("status") or {}).get("phase")]
        live = [p for p in created if not _terminating(p)]
        ready = [p for p in pods if _healthy(p)]
        status = {"observedGeneration": sts["metadata"].get("generation", 1), "replicas": len(created),
                  "readyReplicas": len(ready), "availableReplicas": sum(1 for p in ready if available(p)),
                  "currentReplicas": sum(1 for p in live if revision_of(p) == cur_name),
                  "updatedReplicas": sum(1 for p in live if revision_of(p) == upd_name),
                  "currentRevision": cur_name, "updateRevision": upd_name,
                  "collisionCount": collisions}
        replicas = spec.get("replicas", 1)
        if (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate" and \
                status["updatedReplicas"] == status["readyReplicas"] == status["replicas"] == replicas:
            status["currentRevision"], status["currentReplicas"] = upd_name, status["updatedReplicas"]
        await self.write_status(sts, status)
