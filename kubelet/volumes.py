"""Pod volumes as host directories the runtime bind-mounts: emptyDir (on disk, or a tmpfs for
medium Memory), hostPath, configMap, secret, downwardAPI, projected (serviceAccountToken,
configMap, secret, downwardAPI sources in one directory) and persistentVolumeClaim (the hostPath or
local PersistentVolume its claim is bound to).

Every volume made of files is written as upstream's AtomicWriter does: the files live in a
timestamped `..<time>` directory, `..data` points at it and each top-level name is a symlink
through `..data`, so a new version appears to the container at once (one rename of `..data`). Each
sync writes them again when something changed (a ConfigMap, a label, a token due for refresh).
"""
from __future__ import annotations

import asyncio
import base64
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

from kubeling.api import quantity
from kubeling.api.resources import lookup
from kubeling.client import ApiError, Client

from .downward import FieldError, metadata_field, resource_value
from .tokens import TokenError, TokenManager

CONFIGMAPS, SECRETS = lookup("", "v1", "configmaps"), lookup("", "v1", "secrets")
PVCS, PVS = lookup("", "v1", "persistentvolumeclaims"), lookup("", "v1", "persistentvolumes")
PLUGIN_DIRS = {"emptyDir": "kubernetes.io~empty-dir", "configMap": "kubernetes.io~configmap",
               "secret": "kubernetes.io~secret", "downwardAPI": "kubernetes.io~downward-api",
               "projected": "kubernetes.io~projected"}
DEFAULT_MODE = 0o644
Files = dict[str, tuple[bytes, int]]      # relative path -> (content, mode)


class VolumeError(Exception):
    """A volume could not be set up: the pod waits in ContainerCreating (event FailedMount)."""


class VolumeManager:
    def __init__(self, client: Client, pods_dir: Path, allocatable: dict[str, str]) -> None:
        self.client, self.pods_dir, self.allocatable = client, pods_dir, allocatable
        self.tokens = TokenManager(client)
        self.claims: dict[str, dict[str, str]] = {}    # pod uid -> claim volume -> its PersistentVolume's path

    def _dir(self, uid: str, kind: str, name: str) -> Path:
        return self.pods_dir / uid / "volumes" / PLUGIN_DIRS[kind] / name

    def host_path(self, pod: dict, volume: str, sub_path: str = "") -> str:
        """Where volume `volume` of the pod is on the host (plus a subPath, created if missing)."""
        vol = next((v for v in (pod.get("spec") or {}).get("volumes") or [] if v["name"] == volume), None)
        if vol is None:
            raise VolumeError(f'volume "{volume}" not found in the pod spec')
        if "hostPath" in vol:
            base = Path(vol["hostPath"]["path"])
        elif "persistentVolumeClaim" in vol:
            base = Path(self.claims[pod["metadata"]["uid"]][volume])
        else:
            kind = next((k for k in PLUGIN_DIRS if k in vol), None)
            if kind is None:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{volume}" : volume type not supported')
            base = self._dir(pod["metadata"]["uid"], kind, volume)
        if not sub_path:
            return str(base)
        target = base / sub_path
        if target.exists():
            return os.path.realpath(target)
        target.mkdir(parents=True, exist_ok=True)
        return str(target)

    @staticmethod
    def read_only(pod: dict, volume: str) -> bool:
        """A claim the pod mounts `readOnly` is read-only in every container."""
        vol = next((v for v in (pod.get("spec") or {}).get("volumes") or [] if v["name"] == volume), {})
        return bool((vol.get("persistentVolumeClaim") or {}).get("readOnly"))

    async def setup(self, pod: dict) -> None:
        """Prepare every volume of the pod; raises VolumeError with upstream's FailedMount message.
        Claims that cannot be used yet (unbound, missing) are reported together once the other
        volumes are ready, as upstream's volume manager does."""
        uid, ns = pod["metadata"]["uid"], pod["metadata"].get("namespace", "default")
        unprocessed: dict[str, str] = {}
        for vol in (pod.get("spec") or {}).get("volumes") or []:
            name = vol["name"]
            if "persistentVolumeClaim" in vol:
                if name not in self.claims.get(uid, {}):    # a claim's volume, once found, stays for the pod's life
                    try:
                        pv = await self._bound_volume(pod, vol)
                    except VolumeError as e:
                        unprocessed[name] = str(e)
                        continue
                    self.claims.setdefault(uid, {})[name] = await asyncio.to_thread(_persistent_volume, pv)
                continue
            try:
                if "emptyDir" in vol and (vol["emptyDir"] or {}).get("medium") == "Memory":
                    await asyncio.to_thread(_tmpfs, self._dir(uid, "emptyDir", name), self._memory_size(pod, vol))
                elif "emptyDir" in vol:
                    await asyncio.to_thread(_empty_dir, self._dir(uid, "emptyDir", name))
                elif "hostPath" in vol:
                    await asyncio.to_thread(_host_path, vol["hostPath"])
                elif "configMap" in vol:
                    files = await self._projection(ns, vol["configMap"], "configmap")
                    await asyncio.to_thread(atomic_write, self._dir(uid, "configMap", name), files)
                elif "secret" in vol:
                    src = {**vol["secret"], "name": vol["secret"].get("secretName", "")}
                    files = await self._projection(ns, src, "secret")
                    await asyncio.to_thread(atomic_write, self._dir(uid, "secret", name), files)
                elif "downwardAPI" in vol:
                    src = vol["downwardAPI"] or {}
                    files = self._downward(pod, src.get("items") or [], src.get("defaultMode", DEFAULT_MODE))
                    await asyncio.to_thread(atomic_write, self._dir(uid, "downwardAPI", name), files)
                elif "projected" in vol:
                    files = await self._projected(pod, vol["projected"] or {})
                    await asyncio.to_thread(atomic_write, self._dir(uid, "projected", name), files)
                else:
                    raise VolumeError("volume type not supported")
            except (VolumeError, OSError) as e:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {e}') from None
        if unprocessed:
            names = "[" + " ".join(sorted(unprocessed)) + "]"
            raise VolumeError(f"Unable to attach or mount volumes: unmounted volumes={names}, unattached volumes=[], "
                              f"failed to process volumes={names}: " + "; ".join(unprocessed.values()))

    async def _bound_volume(self, pod: dict, vol: dict) -> dict:
        """upstream's getPVCExtractPV and getPVSpec: the PersistentVolume the pod's claim is bound to,
        or VolumeError with their messages."""
        ns, claim = pod["metadata"].get("namespace", "default"), vol["persistentVolumeClaim"]["claimName"]
        prefix = f"error processing PVC {ns}/{claim}: "
        try:
            pvc = await self.client.get(PVCS, claim, ns)
        except ApiError as e:
            if not e.not_found:
                raise
            raise VolumeError(f"{prefix}failed to fetch PVC from API server: {e.status.get('message')}") from None
        name = (pvc.get("spec") or {}).get("volumeName") or ""
        if pvc["metadata"].get("deletionTimestamp"):
            raise VolumeError(prefix + "PVC is being deleted")
        if (pvc.get("status") or {}).get("phase") != "Bound":
            raise VolumeError(prefix + "PVC is not bound")
        if not name:
            raise VolumeError(prefix + "PVC has empty pvc.Spec.VolumeName")
        try:
            pv = await self.client.get(PVS, name)
        except ApiError as e:
            if not e.not_found:
                raise
            raise VolumeError(f"{prefix}failed to fetch PV {name} from API server: {e.status.get('message')}") from None
        ref = (pv.get("spec") or {}).get("claimRef")
        if not ref:
            raise VolumeError(f"{prefix}found PV object {name} but it has a nil pv.Spec.ClaimRef indicating it is "
                              "not yet bound to the claim")
        if ref.get("uid") != pvc["metadata"]["uid"]:
            raise VolumeError(f"{prefix}found PV object {name} but its pv.Spec.ClaimRef.UID {ref.get('uid', '')} "
                              f"does not point to claim.UID {pvc['metadata']['uid']}")
        if (pv["spec"].get("volumeMode") or "Filesystem") != "Filesystem":
            raise VolumeError(f"volume {vol['name']} has volumeMode {pv['spec']['volumeMode']}, but is specified in "
                              "volumeMounts")
        return pv

    async def teardown(self, uid: str) -> None:
        """The pod is gone: unmount its memory volumes (so its directory can be removed) and forget
        its tokens and claims."""
        self.tokens.forget(uid)
        self.claims.pop(uid, None)
        await asyncio.to_thread(_unmount_under, self.pods_dir / uid)

    def _memory_size(self, pod: dict, vol: dict) -> int:
        """upstream's calculateEmptyDirMemorySize: the node's allocatable memory, else the pod's
        memory limit when every container has one, else the volume's sizeLimit, whichever is least."""
        size = quantity.value(self.allocatable.get("memory", "0"))
        spec = pod.get("spec") or {}

        def limit(c: dict) -> int | None:
            raw = ((c.get("resources") or {}).get("limits") or {}).get("memory")
            return None if raw is None else quantity.value(raw)
        app = [limit(c) for c in spec.get("containers") or []]
        init = [limit(c) for c in spec.get("initContainers") or []]
        if app and None not in app and None not in init:
            pod_limit = max([sum(app), *init])     # type: ignore[list-item]
            if 0 < pod_limit <= size or not size:
                size = pod_limit
        raw = (vol["emptyDir"] or {}).get("sizeLimit")
        if raw is not None and 0 < quantity.value(raw) and (quantity.value(raw) <= size or not size):
            size = quantity.value(raw)
        return size

    def _downward(self, pod: dict, items: list[dict], mode: int) -> Files:
        """downwardAPI items: metadata fields and container resources as files (errors aggregated,
        as upstream's CollectData)."""
        files: Files = {}
        errors = []
        for item in items:
            try:
                if item.get("fieldRef"):
                    value = metadata_field(pod, item["fieldRef"]["fieldPath"])
                else:
                    value = resource_value(pod, None, item.get("resourceFieldRef") or {}, self.allocatable)
            except FieldError as e:
                errors.append(str(e))
                continue
            files[os.path.normpath(item["path"])] = (value.encode(), item.get("mode", mode))
        if errors:
            raise VolumeError(_aggregate(errors))
        return files

    async def _projected(self, pod: dict, src: dict) -> Files:
        """All sources of a projected volume in one directory; every source's error is reported."""
        ns, mode = pod["metadata"].get("namespace", "default"), src.get("defaultMode", DEFAULT_MODE)
        files: Files = {}
        errors = []
        for source in src.get("sources") or []:
            try:
                if source.get("serviceAccountToken"):
                    tp = source["serviceAccountToken"]
                    lifetime = int(tp.get("expirationSeconds") or 3600)
                    token = await self.tokens.token(pod, tp.get("audience") or "", lifetime)
                    files[tp["path"]] = (token.encode(), mode)
                elif source.get("configMap") or source.get("secret"):
                    kind = "configmap" if source.get("configMap") else "secret"
                    files.update(await self._projection(ns, {**(source.get("configMap") or source["secret"]),
                                                             "defaultMode": mode}, kind))
                elif source.get("downwardAPI"):
                    files.update(self._downward(pod, source["downwardAPI"].get("items") or [], mode))
            except (VolumeError, TokenError) as e:
                errors.append(str(e))
        if errors:
            raise VolumeError(_aggregate(errors))
        return files

    async def _projection(self, ns: str, src: dict, kind: str) -> dict[str, tuple[bytes, int]]:
        """The files of a configMap or secret volume: every key, or the listed items, with modes."""
        try:
            obj = await self.client.get(CONFIGMAPS if kind == "configmap" else SECRETS, src.get("name", ""), ns)
        except ApiError as e:
            if not e.not_found:
                raise
            if src.get("optional"):
                return {}
            raise VolumeError(f'{kind} "{src.get("name", "")}" not found') from None
        if kind == "secret":
            data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        else:
            data = {k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()}
            data.update({k: v.encode() for k, v in (obj.get("data") or {}).items()})
        mode = src.get("defaultMode", DEFAULT_MODE)
        if not src.get("items"):
            return {k: (v, mode) for k, v in data.items()}
        files = {}
        for item in src["items"]:
            if item["key"] not in data:
                if src.get("optional"):
                    continue
                noun = "config" if kind == "configmap" else "secret"
                raise VolumeError(f"{kind} references non-existent {noun} key: {item['key']}")
            files[item["path"]] = (data[item["key"]], item.get("mode", mode))
        return files


def _aggregate(errors: list[str]) -> str:
    """utilerrors.NewAggregate's text: one error as it is, several as [a, b]."""
    return errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"


def _empty_dir(path: Path) -> None:
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o777)   # upstream's emptyDir permissions: any container user may write


def _tmpfs(path: Path, size: int) -> None:
    """emptyDir medium Memory: a tmpfs mounted on the volume's host directory, as upstream does, so
    every container of the pod shares it (Docker's per-container --tmpfs would not); `size` bytes
    (0: the kernel's default, half the memory)."""
    _empty_dir(path)
    if os.path.ismount(path):
        return
    options = ["-o", f"size={size}"] if size else []
    done = subprocess.run(["mount", "-t", "tmpfs", *options, "tmpfs", str(path)], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise VolumeError(f"mount failed: {done.stderr.strip() or done.returncode}")


def _unmount_under(pod_dir: Path) -> None:
    """Unmount every mount below the pod's directory (its memory volumes), deepest first."""
    prefix = str(pod_dir) + "/"
    try:
        with open("/proc/self/mounts") as f:
            points = [line.split()[1] for line in f]
    except OSError:
        return
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        done = subprocess.run(["umount", point], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise OSError(f"umount {point}: {done.stderr.strip()}")


def _host_path(src: dict) -> None:
    """hostPath types: *OrCreate create what is missing, the others check what is there."""
    path, kind = Path(src["path"]), src.get("type") or ""
    if kind == "DirectoryOrCreate" and not path.exists():
        path.mkdir(parents=True, mode=0o755)
    elif kind == "FileOrCreate" and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(0o644)
    checks = {"Directory": (Path.is_dir, "a directory"), "DirectoryOrCreate": (Path.is_dir, "a directory"),
              "File": (Path.is_file, "a file"), "FileOrCreate": (Path.is_file, "a file"),
              "Socket": (Path.is_socket, "a socket file"), "CharDevice": (Path.is_char_device, "a character device"),
              "BlockDevice": (Path.is_block_device, "a block device")}
    if kind in checks:
        ok, what = checks[kind]
        if not ok(path):
            raise VolumeError(f"hostPath type check failed: {path} is not {what}")


def _persistent_volume(pv: dict) -> str:
    """Set up a bound PersistentVolume on this node and return its path: a hostPath one as a
    hostPath volume (type checks, DirectoryOrCreate), a local one must exist."""
    name, spec = pv["metadata"]["name"], pv["spec"]
    if "local" in spec:
        path = spec["local"]["path"]
        if not os.path.exists(path):
            raise VolumeError(f'MountVolume.NewMounter initialization failed for volume "{name}" : '
                              f'path "{path}" does not exist')
        return path
    try:
        if "hostPath" not in spec:
            raise VolumeError("volume type not supported")
        _host_path(spec["hostPath"])
    except (VolumeError, OSError) as e:
        raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {e}') from None
    return spec["hostPath"]["path"]


def atomic_write(target: Path, files: dict[str, tuple[bytes, int]]) -> None:
    """Write `files` (relative path -> (content, mode)) into target the AtomicWriter way; a no-op
    when ..data already holds exactly them."""
    data_link = target / "..data"
    if data_link.is_symlink() and _same(data_link, files):
        return
    target.mkdir(parents=True, exist_ok=True)
    version = target / f"..{time.strftime('%Y_%m_%d_%H_%M_%S', time.gmtime())}.{time.time_ns() % 10**9:09d}"
    version.mkdir()
    for rel, (content, mode) in files.items():
        p = version / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
        os.chmod(p, mode)
    os.chmod(version, 0o755)
    old = os.readlink(data_link) if data_link.is_symlink() else None
    tmp = target / "..data_tmp"
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(version.name)
    tmp.replace(data_link)
    tops = {rel.split("/", 1)[0] for rel in files}
    for top in tops:
        link = target / top
        if not link.is_symlink():
            link.symlink_to(f"..data/{top}")
    for entry in target.iterdir():
        if entry.is_symlink() and not entry.name.startswith("..") and entry.name not in tops:
            entry.unlink()
    if old:
        shutil.rmtree(target / old, ignore_errors=True)


def _same(data_link: Path, files: dict[str, tuple[bytes, int]]) -> bool:
    base = data_link.resolve()
    present = {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()}
    if present != set(files):
        return False
    for rel, (content, mode) in files.items():
        p = base / rel
        if stat.S_IMODE(p.stat().st_mode) != mode or p.read_bytes() != content:
            return False
    return True
