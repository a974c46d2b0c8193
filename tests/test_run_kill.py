"""`widespec run` killed with SIGKILL at random moments, then rerun, ends exactly where an uninterrupted run ends:
the same record ids, the same image bytes, the same export bytes; the killed runs read `interrupted`. A second
`widespec run` started meanwhile exits 1 at once naming the first."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curation.core import config as config_module
from curation.core.contracts import RECORD_KINDS
from curation.core.workspace import init_workspace, open_workspace
from tests.test_cli import widespec

pytestmark = pytest.mark.slow


def make_workspace(root: Path) -> Path:
    ws = init_workspace(root)
    config_module.set_value(ws.config_path, "run", "annotate", False)  # Label Studio rounds have their own tests
    ws.close()
    added = widespec("-w", str(root), "prompts", "add", "--builtin", "starter", "--sample", "16", cwd=root.parent)
    assert added.returncode == 0, added.stderr
    return root


def start_run(root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "curation.app.cli", "-q", "-w", str(root), "run"],
        cwd=root.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def snapshot(root: Path) -> dict[str, object]:
    """Everything a run decides: record ids per kind, image bytes, the export's files and bytes."""
    with open_workspace(root) as ws:
        ids = {kind: sorted(ws.store.ids(kind)) for kind in RECORD_KINDS}
    images = sorted(p.name for p in (root / "images").rglob("*.png"))
    exports = {
        str(p.relative_to(root / "exports")): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((root / "exports").rglob("*"))
        if p.is_file()
    }
    return {"ids": ids, "images": images, "exports": exports}


ORDER = ["rewrite", "generate", "score", "filter", "export"]
TEXT_CHECKS = {"score", "filter"}  # also run (as the text checks) before generate


def stage_in_progress(root: Path, process: subprocess.Popen[str], wanted: str, timeout_s: float = 180) -> str | None:
    """Wait until `process` has a ledger run of stage `wanted` (or a later one) in progress; None when the
    process ended first."""
    later = ORDER[ORDER.index(wanted) :]
    if ORDER.index(wanted) <= ORDER.index("generate"):
        later = [s for s in later if s not in TEXT_CHECKS]  # a score run before generate is the text checks
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with sqlite3.connect(f"file:{root / 'widespec.db'}?mode=ro", uri=True, timeout=5) as db:
                row = db.execute(
                    f"SELECT stage FROM run WHERE status = 'running' AND stage IN ({','.join('?' * len(later))}) "
                    "AND process LIKE ?",
                    (*later, f"{process.pid}:%"),
                ).fetchone()
        except sqlite3.OperationalError:
            row = None
        if row:
            return str(row[0])
        time.sleep(0.02)
    return None


def test_runs_killed_at_random_moments_end_like_an_uninterrupted_run(tmp_path: Path) -> None:
    reference = make_workspace(tmp_path / "reference")
    assert widespec("-q", "-w", str(reference), "run", cwd=tmp_path).returncode == 0
    expected = snapshot(reference)
    assert expected["exports"], "the reference run exported a version"

    killed = make_workspace(tmp_path / "killed")
    rng = random.Random(11)
    stages_hit: set[str] = set()
    for wanted in ("rewrite", "generate", "generate", "score", "score", "filter", "export"):
        process = start_run(killed)
        stage = stage_in_progress(killed, process, wanted)
        if stage is not None:
            time.sleep(rng.uniform(0.0, 0.3))  # somewhere inside that stage (or just after it)
            stages_hit.add(stage)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
    finished = widespec("-q", "-w", str(killed), "run", cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr
    assert snapshot(killed) == expected
    status = json.loads(widespec("-w", str(killed), "status", "--json", cwd=tmp_path).stdout)
    assert "interrupted" in {r["status"] for r in status["runs"]}  # status shows the latest 10 runs
    with open_workspace(killed) as ws:
        ledger = ws.store.runs(limit=200)
    interrupted = [r for r in ledger if r["status"] == "interrupted"]
    # the stages with real compute are always caught; the millisecond ones (rewrite on the lexicon, filter,
    # export) are killed whenever the poll sees them running
    assert {"generate", "score"} <= stages_hit, stages_hit
    assert len(interrupted) >= 4
    assert not [r for r in ledger if r["status"] == "running"]


def test_a_second_run_exits_at_once_naming_the_first(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "ws")
    first = start_run(root)
    try:
        deadline = time.monotonic() + 60
        while not list((root / ".widespec" / "lock-holders").glob("*.json")):
            assert time.monotonic() < deadline and first.poll() is None, "the first run took the lock"
            time.sleep(0.05)
        started = time.monotonic()
        second = widespec("-w", str(root), "run", cwd=tmp_path)
        assert second.returncode == 1
        assert f"pid {first.pid}" in second.stderr and "widespec run" in second.stderr
        assert time.monotonic() - started < 2  # interpreter start-up included
        status = widespec("-w", str(root), "status", "--json", cwd=tmp_path)
        assert status.returncode == 0  # read-only commands keep working meanwhile
    finally:
        assert first.wait(timeout=300) == 0, first.stderr.read() if first.stderr else ""
    with open_workspace(root) as ws:
        assert ws.store.count("release") == 1
