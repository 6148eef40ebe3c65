"""Running a system tool (iptables, sysctl, conntrack) from an asyncio process without blocking it."""
from __future__ import annotations

import asyncio


class CommandError(RuntimeError):
    """A command that failed: its argv, exit code and stderr."""


async def run(*argv: str, stdin: str | None = None, check: bool = True, ok: str = "") -> tuple[int, str]:
    """One command off the event loop; (exit code, stdout), CommandError on failure when `check`
    (a failure whose stderr contains `ok` is no failure)."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    if check and proc.returncode and not (ok and ok in err.decode()):
        raise CommandError(f"{' '.join(argv)}: exit {proc.returncode}: {err.decode().strip()}")
    return proc.returncode or 0, out.decode()
