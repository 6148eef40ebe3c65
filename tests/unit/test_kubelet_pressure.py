"""The node's pressure conditions follow the host with upstream's default eviction thresholds."""
from __future__ import annotations

from kubelet.pressure import host_pressure, memory_available

MEMINFO = "MemTotal:       24576000 kB\nMemFree:          100000 kB\nMemAvailable:   {avail} kB\n"


def test_memory_pressure_below_100_mebibytes(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(MEMINFO.format(avail=50 * 1024))
    assert memory_available(meminfo.read_text()) == 50 * 1024 * 1024
    assert host_pressure(tmp_path, str(meminfo))["MemoryPressure"] is True
    meminfo.write_text(MEMINFO.format(avail=2 * 1024 * 1024))
    assert host_pressure(tmp_path, str(meminfo))["MemoryPressure"] is False
