"""Network namespaces for tests: made only where the test may (root, `ip netns` permitted)."""
from __future__ import annotations

import os
import subprocess

import pytest


def add_or_skip(name: str) -> None:
    """`ip netns add NAME`, or skip the test where namespaces cannot be made."""
    if os.geteuid() != 0:
        pytest.skip("needs root for ip netns")
    p = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, check=False)
    if p.returncode:
        pytest.skip(f"ip netns add is not permitted here: {p.stderr.strip()}")
