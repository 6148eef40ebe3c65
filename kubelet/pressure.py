"""The node's resource pressure, as the kubelet's eviction manager reports it in the Node conditions
with upstream's default hard thresholds: memory.available < 100Mi, nodefs.available < 10%.
(PID pressure has no default threshold upstream, so it is never reported.)"""
from __future__ import annotations

import shutil
from pathlib import Path

MEMORY_AVAILABLE_MIN = 100 * 1024 * 1024
NODEFS_AVAILABLE_MIN = 0.10


def memory_available(meminfo: str) -> int:
    """Bytes available (MemAvailable of /proc/meminfo, in kB there)."""
    for line in meminfo.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise ValueError("no MemAvailable in /proc/meminfo")


def host_pressure(root_dir: str | Path, meminfo_path: str = "/proc/meminfo") -> dict[str, bool]:
    """{"MemoryPressure": bool, "DiskPressure": bool} for this host now."""
    memory = memory_available(Path(meminfo_path).read_text()) < MEMORY_AVAILABLE_MIN
    disk = shutil.disk_usage(root_dir)
    return {"MemoryPressure": memory, "DiskPressure": disk.free / disk.total < NODEFS_AVAILABLE_MIN}
