"""`widespec backup` copies a workspace consistently, also while a run writes to it, into a copy that opens,
verifies clean and resumes to the same release."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import time
from pathlib import Path

import pytest

from curation.core.store import Store
from curation.core.workspace import MOVES_KEY, Workspace, open_workspace
from tests.test_cli import widespec
from tests.test_verify import cli, verified


def test_backup_links_or_copies_a_whole_workspace_that_verifies_clean(
    released: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    linked = cli(released.root, "backup", str(tmp_path / "linked"), "--json")
    assert linked.exit_code == 0, linked.output
    summary = json.loads(linked.stdout)
    assert (summary["images"], summary["releases"], summary["copied"]) == (12, ["1.0.0"], 0)
    sha = next(released.store.iter("render"))["image_sha256"]
    copy = tmp_path / "linked" / "images" / sha[:2] / f"{sha}.png"
    assert copy.stat().st_ino == released.images.path_for(sha).stat().st_ino  # the same filesystem: a hard link
    assert verified(tmp_path / "linked")["clean"]
    assert not list((tmp_path / "linked" / ".widespec").iterdir())  # the runtime stays behind

    def no_links(source: object, target: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)  # as on another filesystem
    copied = cli(released.root, "backup", str(tmp_path / "copied"), "--json")
    assert copied.exit_code == 0, copied.output
    assert json.loads(copied.stdout)["linked"] == 0
    card = tmp_path / "copied" / "exports" / "v1.0.0" / "README.md"
    assert not card.stat().st_mode & stat.S_IWUSR  # a release stays read-only
    assert verified(tmp_path / "copied")["clean"]
    with open_workspace(tmp_path / "copied") as ws:
        assert ws.store.count("pair") == released.store.count("pair") == 6


def test_backup_refuses_a_destination_that_is_not_empty(released: Workspace, tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    refused = widespec("-w", str(released.root), "backup", str(tmp_path / "full"), cwd=tmp_path)
    assert refused.returncode == 2 and "exists and is not empty" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and (tmp_path / "full" / "notes.txt").read_text() == "mine"
    inside = widespec("-w", str(released.root), "backup", str(released.root / "copy"), cwd=tmp_path)
    assert inside.returncode == 2 and "inside the workspace" in inside.stderr


def test_a_release_whose_rename_is_owed_is_backed_up_in_place(released: Workspace, tmp_path: Path) -> None:
    final = released.exports_dir / "v1.0.0"
    waiting = released.exports_dir / ".tmp-v1.0.0-4242"
    final.rename(waiting)  # as a kill between the release's commit and its rename leaves it
    released.store.state_put(MOVES_KEY, [[str(waiting), str(final)]])
    released.close()
    assert verified(released.root)["clean"]
    assert cli(released.root, "backup", str(tmp_path / "copy")).exit_code == 0
    assert (tmp_path / "copy" / "exports" / "v1.0.0" / "README.md").is_file()
    with Store(tmp_path / "copy" / "widespec.db") as copy:
        assert copy.state_get(MOVES_KEY) == []  # the copy owes nothing (and never renames the workspace's folder)
    assert verified(tmp_path / "copy")["clean"] and waiting.is_dir()


@pytest.mark.slow
def test_a_backup_taken_while_a_run_writes_opens_verifies_and_resumes_to_the_same_release(tmp_path: Path) -> None:
    from tests.test_run_kill import make_workspace, snapshot, start_run

    source = make_workspace(tmp_path / "source")
    run = start_run(source)
    try:
        with Store(source / "widespec.db", read_only=True) as watcher:  # generate has stored some renders
            deadline = time.monotonic() + 240
            while watcher.count("render") < 4 and time.monotonic() < deadline and run.poll() is None:
                time.sleep(0.05)
        backup = widespec("-q", "-w", str(source), "backup", str(tmp_path / "copy"), cwd=tmp_path)
        assert backup.returncode == 0, backup.stderr
        during = widespec("-w", str(source), "verify", "--json", cwd=tmp_path)  # read-only beside the run
        assert during.returncode == 0 and json.loads(during.stdout)["clean"], during.stdout
        assert run.poll() is None, "the backup was taken mid-run"
    finally:
        assert run.wait(timeout=600) == 0, run.stderr.read() if run.stderr else ""
    copy = tmp_path / "copy"
    with open_workspace(source) as ws:
        rendered = ws.store.count("render")
    with open_workspace(copy) as ws:
        assert 4 <= ws.store.count("render") < rendered
        assert ws.store.count("release") == 0
        assert {r["status"] for r in ws.store.runs(limit=50)} <= {"ok", "interrupted"}
    checked = widespec("-w", str(copy), "verify", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    resumed = widespec("-q", "-w", str(copy), "run", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert snapshot(copy) == snapshot(source)  # the same records, images and release bytes as the uninterrupted run
    shutil.rmtree(copy)
