"""Is a process still the one that started a run? A pid alone can be reused, so its start time is compared too."""

from __future__ import annotations

import os
from pathlib import Path


def process_token(pid: int) -> str:
    """`pid:start-time` on Linux (start time in clock ticks since boot), else just the pid."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return f"{pid}:{fields[19]}"
    except (OSError, IndexError):
        return str(pid)


def process_alive(pid: int, token: str | None = None) -> bool:
    """True while `pid` runs and (given a token) is the same process that made the token."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by someone else
    try:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in {"Z", "X"}:
            return False  # a zombie: dead, only not reaped yet
    except (OSError, IndexError):
        pass
    if token is None or ":" not in token:
        return True
    return process_token(pid) == token
