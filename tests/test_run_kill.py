"""`widespec run` killed with SIGKILL inside every one of its stages, at named instants, then rerun, ends exactly
where an uninterrupted run ends: the same record ids, the same image bytes, the same export bytes; the killed runs
read `interrupted`. A second
`widespec run` started meanwhile exits 1 at once naming the first."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from annotation import server
from curation.core import config as config_module
from curation.core.contracts import RECORD_KINDS
from curation.core.pause import PAUSE_ENV, PAUSED_FILE
from curation.core.workspace import init_workspace, open_workspace
from tests.annotation_fixtures import free_port
from tests.test_cli import widespec
from tests.test_judge_stage import KEY, KEY_ENV, standin
from tests.vision_standin import VisionStandin

pytestmark = pytest.mark.slow
__all__ = ["standin"]  # the fixture, used by name


def make_workspace(root: Path) -> Path:
    ws = init_workspace(root)
    config_module.set_value(ws.config_path, "run", "annotate", False)  # Label Studio rounds have their own tests
    ws.close()
    added = widespec("-w", str(root), "prompts", "add", "--builtin", "starter", "--sample", "16", cwd=root.parent)
    assert added.returncode == 0, added.stderr
    return root


def start_run(root: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "curation.app.cli", "-q", "-w", str(root), "run"],
        cwd=root.parent,
        env={**os.environ, **(env or {})},
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


# Every stage of `widespec run`, in its order, with the instants each is killed at (curation.core.pause): as its
# ledger run opens, with an output computed but not committed (an export's folder built), and between an output's
# commit and the renames it journaled (an export's record stored, its folder not yet in place). Stages whose work
# comes in several outputs are killed after one of them too.
KILL_POINTS = {
    "rewrite": ("started", "computed", "journaled", "committed"),
    "text-checks": ("started", "computed", "journaled"),
    "generate": ("started", "computed", "journaled", "committed"),
    "score": ("started", "computed", "journaled", "committed"),
    "filter": ("started", "computed", "journaled"),
    "judge": ("started", "computed", "journaled", "committed"),
    "annotate-push": ("started", "computed", "journaled"),
    "export": ("started", "computed", "journaled"),
}


def kill_at(root: Path, point: str, env: dict[str, str]) -> str:
    """Run `widespec run` paused at `point` (WIDESPEC_PAUSE_AT), SIGKILL it there; what it reported reaching."""
    paused = root / ".widespec" / PAUSED_FILE
    paused.unlink(missing_ok=True)
    process = start_run(root, {**env, PAUSE_ENV: point})
    deadline = time.monotonic() + 240
    while not paused.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    reached = paused.read_text(encoding="utf-8") if paused.exists() else f"nothing (exit {process.poll()})"
    process.kill()
    process.wait()
    return reached


def judged_and_pushed(root: Path, standin: VisionStandin) -> Path:
    """The judge on the local vision stand-in and annotation round 1 pushed to the workspace's own Label Studio."""
    with open_workspace(root) as ws:
        for key, value in {"base_url": standin.base_url, "model": "standin-vl", "api_key_env": KEY_ENV}.items():
            config_module.set_value(ws.config_path, "judge", key, value)
        for section in ("rewriter", "generator", "scorer", "judge"):  # work in several outputs
            config_module.set_value(ws.config_path, section, "batch_size", 4)
        config_module.set_value(ws.config_path, "run", "annotate", True)
        config_module.set_value(ws.config_path, "annotation", "port", free_port())
    return root


def test_runs_killed_inside_every_stage_end_like_an_uninterrupted_run(tmp_path: Path, standin: VisionStandin) -> None:
    env = {KEY_ENV: KEY}
    reference = judged_and_pushed(make_workspace(tmp_path / "reference"), standin)
    killed = judged_and_pushed(make_workspace(tmp_path / "killed"), standin)
    try:
        done = widespec("-q", "-w", str(reference), "run", cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
        expected = snapshot(reference)
        assert expected["exports"], "the reference run exported a version"

        points = [f"{stage}:{point}" for stage, stage_points in KILL_POINTS.items() for point in stage_points]
        reached = [kill_at(killed, point, env) for point in points]
        assert reached == points  # each kill landed at the instant of the stage it names
        finished = widespec("-q", "-w", str(killed), "run", cwd=tmp_path, env=env)
        assert finished.returncode == 0, finished.stderr
        assert snapshot(killed) == expected
    finally:
        for root in (reference, killed):
            with open_workspace(root) as ws:
                server.stop(ws)
    with open_workspace(killed) as ws:
        ledger = ws.store.runs(limit=500)
    interrupted = {f"{r['stage']}" for r in ledger if r["status"] == "interrupted"}
    assert interrupted == set(KILL_POINTS)
    assert len([r for r in ledger if r["status"] == "interrupted"]) == len(points)
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
