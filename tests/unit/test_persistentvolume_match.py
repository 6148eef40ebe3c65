"""Which PersistentVolume a claim gets (controllers/persistentvolume.py's best_match), as upstream's
findByClaim and FindMatchingVolume choose."""
from __future__ import annotations

from controllers.persistentvolume import best_match


def pv(name: str, size: str, modes: tuple[str, ...] = ("ReadWriteOnce",), phase: str = "Available", **spec) -> dict:
    labels = spec.pop("labels", {})
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"capacity": {"storage": size}, "accessModes": list(modes), "volumeMode": "Filesystem", **spec},
            "status": {"phase": phase}}


def pvc(size: str = "1Gi", modes: tuple[str, ...] = ("ReadWriteOnce",), **spec) -> dict:
    return {"metadata": {"name": "data", "namespace": "ns", "uid": "u1"},
            "spec": {"accessModes": list(modes), "resources": {"requests": {"storage": size}}, **spec}}


def name(v: dict | None) -> str | None:
    return v["metadata"]["name"] if v is not None else None


def test_the_smallest_volume_that_fits():
    vols = [pv("big", "10Gi"), pv("small", "500Mi"), pv("fit", "2Gi"), pv("exact", "1Gi", phase="Bound")]
    assert name(best_match(pvc(), vols)) == "fit"
    assert name(best_match(pvc("20Gi"), vols)) is None


def test_access_modes_contained_fewest_modes_first():
    vols = [pv("many", "1Gi", ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany")), pv("rox", "5Gi", ("ReadOnlyMany",)),
            pv("two", "5Gi", ("ReadWriteOnce", "ReadOnlyMany"))]
    assert name(best_match(pvc(), vols)) == "two"          # a smaller volume with more modes comes later
    assert name(best_match(pvc(modes=("ReadWriteMany",)), vols)) == "many"
    assert name(best_match(pvc(modes=("ReadWriteOncePod",)), vols)) is None


def test_class_volume_mode_selector_and_deletion():
    vols = [pv("fast", "1Gi", storageClassName="fast"), pv("block", "1Gi", volumeMode="Block"),
            pv("labelled", "3Gi", labels={"tier": "gold"}), pv("plain", "2Gi")]
    assert name(best_match(pvc(), vols)) == "plain"
    assert name(best_match(pvc(storageClassName="fast"), vols)) == "fast"
    assert name(best_match(pvc(volumeMode="Block"), vols)) == "block"
    assert name(best_match(pvc(selector={"matchLabels": {"tier": "gold"}}), vols)) == "labelled"
    gone = pv("plain", "2Gi")
    gone["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    assert name(best_match(pvc(), [gone])) is None
    annotated = pv("beta", "1Gi", storageClassName="other")
    annotated["metadata"]["annotations"] = {"volume.beta.kubernetes.io/storage-class": "fast"}
    assert name(best_match(pvc(storageClassName="fast"), [annotated])) == "beta"


def test_a_volume_pre_bound_to_the_claim_wins_even_if_not_available():
    ref = {"name": "data", "namespace": "ns"}
    vols = [pv("fit", "1Gi"), pv("mine", "5Gi", phase="Pending", claimRef=ref),
            pv("theirs", "1Gi", claimRef={"name": "other", "namespace": "ns"})]
    assert name(best_match(pvc(), vols)) == "mine"
    assert name(best_match(pvc(), [pv("uid", "1Gi", claimRef={**ref, "uid": "not-u1"})])) is None
