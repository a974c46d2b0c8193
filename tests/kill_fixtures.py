"""Killing a `widespec` command with SIGKILL once it has committed some records (the kill tests share this)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from curation.core.store import Store

REPO = Path(__file__).resolve().parent.parent


def kill_midway(root: Path, command: str, kind: str, at_least: int, env: dict[str, str]) -> tuple[int, int]:
    """Run `widespec -w ROOT -q COMMAND` in its own process, SIGKILL it once `at_least` records of `kind` are stored
    (or after 60 s), and return how many were stored and how many paid calls the spend ledger holds then."""
    process = subprocess.Popen(
        [sys.executable, "-c", "from curation.app.cli import main; main()", "-w", str(root), "-q", command],
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    watcher = Store(root / "widespec.db")
    try:
        deadline = time.monotonic() + 60
        while watcher.count(kind) < at_least and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        assert process.returncode == -signal.SIGKILL
        return watcher.count(kind), watcher.spend()[0]["calls"]
    finally:
        watcher.close()
