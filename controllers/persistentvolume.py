"""persistentvolume-binder: kube-controller-manager's PV controller for statically provisioned
volumes. A Pending claim is bound to the smallest Available volume that fits it (class, access
modes, capacity, volumeMode, selector), both sides recorded as upstream does (the volume's
claimRef, the claim's volumeName, the bind-completed and bound-by-controller annotations, phase
Bound on both); a volume whose claim is gone is Released and then reclaimed by its policy. No
provisioner runs: a claim naming a class that matches nothing stays Pending.
"""
from __future__ import annotations

import asyncio

from kubeling.api import quantity
from kubeling.api.resources import lookup
from kubeling.api.selectors import selector_from_object
from kubeling.client import ApiError

from .base import Controller

PVS, PVCS = lookup("", "v1", "persistentvolumes"), lookup("", "v1", "persistentvolumeclaims")
ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_CLASS = "volume.beta.kubernetes.io/storage-class"     # the beta annotation still wins over the field
SYNC_PERIOD = 15.0      # upstream's --pvclaimbinder-sync-period: everything is looked at again this often


def storage_class(obj: dict) -> str:
    """GetPersistentVolumeClaimClass / GetPersistentVolumeClass: the annotation, else the field."""
    ann = (obj["metadata"].get("annotations") or {}).get(ANN_CLASS)
    return ann if ann is not None else (obj.get("spec") or {}).get("storageClassName") or ""


def bound_to(pv: dict, claim: dict) -> bool:
    """IsVolumeBoundToClaim: the claimRef names the claim (and its uid, once set)."""
    ref = (pv.get("spec") or {}).get("claimRef")
    meta = claim["metadata"]
    return bool(ref) and ref.get("name") == meta["name"] and ref.get("namespace") == meta["namespace"] and \
        ref.get("uid", "") in ("", meta["uid"])


def _storage(obj: dict, *path: str) -> int:
    d = obj.get("spec") or {}
    for p in path:
        d = d.get(p) or {}
    return quantity.value(d.get("storage", "0"))


def best_match(claim: dict, volumes: list[dict]) -> dict | None:
    """findByClaim + FindMatchingVolume: the volumes grouped by access-mode set, the sets holding
    every mode the claim asks for tried fewest modes first; in each, a volume pre-bound to the
    claim wins, else the smallest Available one of the claim's class, volumeMode and selector
    with enough capacity."""
    spec = claim.get("spec") or {}
    wanted = set(spec.get("accessModes") or [])
    request = _storage(claim, "resources", "requests")
    mode = spec.get("volumeMode") or "Filesystem"
    selector = selector_from_object(spec.get("selector")) if spec.get("selector") is not None else None
    groups: dict[frozenset, list[dict]] = {}
    for pv in volumes:
        modes = frozenset((pv.get("spec") or {}).get("accessModes") or [])
        if wanted <= modes:
            groups.setdefault(modes, []).append(pv)
    for modes in sorted(groups, key=lambda m: (len(m), sorted(m))):
        smallest: dict | None = None
        for pv in groups[modes]:
            pspec = pv.get("spec") or {}
            if pspec.get("claimRef") and not bound_to(pv, claim):
                continue
            size = _storage(pv, "capacity")
            if size < request or (pspec.get("volumeMode") or "Filesystem") != mode \
                    or pv["metadata"].get("deletionTimestamp"):
                continue
            if bound_to(pv, claim):
                return pv
            if (pv.get("status") or {}).get("phase") != "Available" or storage_class(pv) != storage_class(claim):
                continue
            if selector is not None and not selector.matches(pv["metadata"].get("labels")):
                continue
            if smallest is None or size < _storage(smallest, "capacity"):
                smallest = pv
        if smallest is not None:
            return smallest
    return None


def _ref(obj: dict, kind: str) -> dict:
    """The object as the events recorder names it (informer items carry no kind)."""
    return {"kind": kind, "apiVersion": "v1", "metadata": obj["metadata"]}


class PersistentVolumeBinder(Controller):
    """Keys are `pvc:<ns>/<name>` and `pv:<name>`, synced as upstream's syncClaim and syncVolume.
    One worker, as upstream's one claim and one volume goroutine: two claims never race for a
    volume (a stale cache still cannot double-bind: every write carries a resourceVersion)."""
    name = "persistentvolume-binder"
    workers = 1

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.volumes = self.factory.get(PVS)
        self.claims = self.factory.get(PVCS)
        self.volumes.add_handler(self.on_volume, lambda old, new: self.on_volume(new), self.on_volume_deleted)
        self.claims.add_handler(self.on_claim, lambda old, new: self.on_claim(new), self.on_claim_deleted)

    def on_volume(self, pv: dict) -> None:
        """A volume changed; if it may be free, the unbound claims may now find it."""
        self.queue.add("pv:" + pv["metadata"]["name"])
        if not (pv.get("spec") or {}).get("claimRef"):
            for claim in self.claims.list():
                if not (claim.get("spec") or {}).get("volumeName"):
                    self.on_claim(claim)

    def on_volume_deleted(self, pv: dict) -> None:
        ref = (pv.get("spec") or {}).get("claimRef")
        if ref:
            self.queue.add(f"pvc:{ref.get('namespace', '')}/{ref.get('name', '')}")

    def on_claim(self, claim: dict) -> None:
        self.queue.add(f"pvc:{claim['metadata']['namespace']}/{claim['metadata']['name']}")

    def on_claim_deleted(self, claim: dict) -> None:
        name = (claim.get("spec") or {}).get("volumeName")
        if name:
            self.queue.add("pv:" + name)

    async def run(self) -> None:
        await asyncio.gather(super().run(), self._resync())

    async def _resync(self) -> None:
        """upstream's resync: every claim and volume again each period, so a Pending claim retries
        (and says why again) and a missed transition is caught."""
        while True:
            await asyncio.sleep(SYNC_PERIOD)
            for claim in self.claims.list():
                self.on_claim(claim)
            for pv in self.volumes.list():
                self.queue.add("pv:" + pv["metadata"]["name"])

    async def sync(self, key: str) -> None:
        kind, _, name = key.partition(":")
        if kind == "pvc":
            claim = self.claims.get(name)
            if claim is None:
                return
            if ANN_BIND_COMPLETED in (claim["metadata"].get("annotations") or {}):
                await self._sync_bound_claim(claim)
            else:
                await self._sync_unbound_claim(claim)
        else:
            pv = self.volumes.get(name)
            if pv is not None:
                await self._sync_volume(pv)

    # ---- claims -------------------------------------------------------------------
    async def _sync_unbound_claim(self, claim: dict) -> None:
        requested = (claim.get("spec") or {}).get("volumeName")
        if not requested:
            pv = best_match(claim, self.volumes.list())
            if pv is not None:
                await self._bind(pv, claim)
                return
            cls = storage_class(claim)
            if cls:   # upstream would provision; kubeling has no StorageClass API, so none is ever found
                self.recorder.event(_ref(claim, "PersistentVolumeClaim"), "Warning", "ProvisioningFailed",
                                    f'storageclass.storage.k8s.io "{cls}" not found')
            else:
                self.recorder.event(_ref(claim, "PersistentVolumeClaim"), "Normal", "FailedBinding",
                                    "no persistent volumes available for this claim and no storage class is set")
        else:
            pv = self.volumes.get(requested)     # the user asked for this one: bound when it is free
            if pv is not None and (not (pv.get("spec") or {}).get("claimRef") or bound_to(pv, claim)):
                await self._bind(pv, claim)
                return
        await self._claim_status(claim, "Pending", None)

    async def _sync_bound_claim(self, claim: dict) -> None:
        name = (claim.get("spec") or {}).get("volumeName")
        pv = self.volumes.get(name) if name else None
        if not name:
            await self._lost(claim, "ClaimLost", "Bound claim has lost reference to PersistentVolume. "
                                                 "Data on the volume is lost!")
        elif pv is None:
            await self._lost(claim, "ClaimLost", "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
        elif not (pv.get("spec") or {}).get("claimRef") or pv["spec"]["claimRef"].get("uid") == claim["metadata"]["uid"]:
            await self._bind(pv, claim)
        else:
            await self._lost(claim, "ClaimMisbound", "Two claims are bound to the same volume, this one is bound incorrectly")

    async def _lost(self, claim: dict, reason: str, message: str) -> None:
        """updateClaimStatusWithEvent: the event only when the phase changes."""
        if (claim.get("status") or {}).get("phase") != "Lost":
            await self._claim_status(claim, "Lost", None)
            self.recorder.event(_ref(claim, "PersistentVolumeClaim"), "Warning", reason, message)

    async def _claim_status(self, claim: dict, phase: str, pv: dict | None) -> dict:
        """updateClaimStatus: phase, and the volume's access modes and capacity (none when unbound)."""
        status = dict(claim.get("status") or {})
        status["phase"] = phase
        for field, src in (("accessModes", "accessModes"), ("capacity", "capacity")):
            value = (pv.get("spec") or {}).get(src) if pv is not None else None
            if value is None:
                status.pop(field, None)
            else:
                status[field] = value
        if status == (claim.get("status") or {}):
            return claim
        ns = claim["metadata"]["namespace"]
        return await self.client.update(PVCS, {**claim, "status": status}, ns, sub="status")

    # ---- volumes ------------------------------------------------------------------
    async def _sync_volume(self, pv: dict) -> None:
        ref = (pv.get("spec") or {}).get("claimRef")
        if not ref or not ref.get("uid"):
            await self._volume_phase(pv, "Available")    # unused, or pre-bound and waiting for its claim
            return
        claim = await self._claim_of(pv, ref)
        if claim is None:
            if (pv.get("status") or {}).get("phase") not in ("Released", "Failed"):
                pv = await self._volume_phase(pv, "Released")
            await self._reclaim(pv)
        elif not (claim.get("spec") or {}).get("volumeName"):
            self.on_claim(claim)      # the claim's half of the binding is not written yet
        elif claim["spec"]["volumeName"] == pv["metadata"]["name"]:
            await self._volume_phase(pv, "Bound")
        else:
            await self._unbind(pv)    # the claim went to another volume

    async def _claim_of(self, pv: dict, ref: dict) -> dict | None:
        """The claim the volume is bound to; a cache miss is confirmed with the API (a lagging
        cache must never release a volume in use)."""
        ns, name = ref.get("namespace", ""), ref.get("name", "")
        claim = self.claims.get(f"{ns}/{name}")
        if claim is None and (pv.get("status") or {}).get("phase") not in ("Released", "Failed"):
            try:
                claim = await self.client.get(PVCS, name, ns)
            except ApiError as e:
                if not e.not_found:
                    raise
        return claim if claim is not None and claim["metadata"]["uid"] == ref["uid"] else None

    async def _reclaim(self, pv: dict) -> None:
        """Retain keeps the Released volume for its administrator; Delete deletes the object (the
        data on the node stays: kubeling runs no volume plugin's deleter)."""
        if (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") != "Delete":
            return
        try:
            await self.client.delete(PVS, pv["metadata"]["name"], preconditions={"uid": pv["metadata"]["uid"]})
        except ApiError as e:
            if not (e.not_found or e.conflict):
                raise

    async def _unbind(self, pv: dict) -> None:
        """unbindVolume: a volume the controller bound loses claimRef and annotation; one the user
        pre-bound keeps its claimRef without the uid. Then it is Available again."""
        meta, spec = dict(pv["metadata"]), dict(pv.get("spec") or {})
        ann = dict(meta.get("annotations") or {})
        if ANN_BOUND_BY_CONTROLLER in ann:
            spec.pop("claimRef", None)
            del ann[ANN_BOUND_BY_CONTROLLER]
            meta["annotations"] = ann
        else:
            spec["claimRef"] = {k: v for k, v in spec["claimRef"].items() if k != "uid"}
        pv = await self.client.update(PVS, {**pv, "metadata": meta, "spec": spec})
        await self._volume_phase(pv, "Available")

    async def _volume_phase(self, pv: dict, phase: str) -> dict:
        if (pv.get("status") or {}).get("phase") == phase:
            return pv
        status = {k: v for k, v in (pv.get("status") or {}).items() if k != "message"}
        return await self.client.update(PVS, {**pv, "status": {**status, "phase": phase}}, sub="status")

    # ---- binding --------------------------------------------------------------------
    async def _bind(self, pv: dict, claim: dict) -> None:
        """bind: the volume's claimRef, its phase Bound, the claim's volumeName, its phase Bound;
        each write only when needed, the volume first, so a half-done binding is finished by the
        next sync of either object."""
        cmeta = claim["metadata"]
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        if (ref.get("name"), ref.get("namespace"), ref.get("uid")) != (cmeta["name"], cmeta["namespace"], cmeta["uid"]):
            ann = dict(pv["metadata"].get("annotations") or {})
            if not bound_to(pv, claim):
                ann[ANN_BOUND_BY_CONTROLLER] = "yes"
            claim_ref = {"kind": "PersistentVolumeClaim", "namespace": cmeta["namespace"], "name": cmeta["name"],
                         "uid": cmeta["uid"], "apiVersion": "v1", "resourceVersion": cmeta.get("resourceVersion", "")}
            pv = await self.client.update(PVS, {**pv, "metadata": {**pv["metadata"], "annotations": ann},
                                                "spec": {**pv["spec"], "claimRef": claim_ref}})
        pv = await self._volume_phase(pv, "Bound")
        ann = dict(cmeta.get("annotations") or {})
        name = pv["metadata"]["name"]
        if (claim.get("spec") or {}).get("volumeName") != name or ANN_BIND_COMPLETED not in ann:
            if (claim.get("spec") or {}).get("volumeName") != name:
                ann.setdefault(ANN_BOUND_BY_CONTROLLER, "yes")
            ann.setdefault(ANN_BIND_COMPLETED, "yes")
            claim = await self.client.update(PVCS, {**claim, "metadata": {**cmeta, "annotations": ann},
                                                    "spec": {**claim["spec"], "volumeName": name}}, cmeta["namespace"])
        await self._claim_status(claim, "Bound", pv)
