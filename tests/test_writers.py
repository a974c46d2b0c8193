"""Every command that writes to a workspace holds its lock, goes through the executor and leaves a ledger run:
`prompts add`, `annotate gold add`, `annotate gold from-round`, `filter --calibrate` and `publish`. Under a
running `widespec run` (another process holding the lock) each is refused at once and changes nothing, the
configuration file included."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest
from typer.testing import CliRunner

from annotation import gold
from curation.app.cli import app
from curation.core import config as config_module
from curation.core.lock import WorkspaceBusy
from curation.core.records import verdict_record
from curation.core.workspace import Workspace
from tests.dataset_fixtures import populate
from tests.hub_fake import FakeHub, installed
from tests.lock_holder import holder


def _invoke(ws: Workspace, *args: str) -> object:
    """Run a widespec command in this process; the exception it ended with (None when it succeeded)."""
    out = CliRunner().invoke(app, ["-q", "-w", str(ws.root), *args])
    return out.exception if out.exit_code else None


def _gold_file(ws: Workspace, tmp_path: Path, pair_ids: list[str]) -> Path:
    path = tmp_path / "gold.jsonl"
    path.write_text("".join(json.dumps({"pair_id": p, "expected": "anti"}) + "\n" for p in pair_ids), encoding="utf-8")
    return path


def _calibratable(ws: Workspace) -> None:
    """Round-2 verdicts that follow the direction score (anti above its median), so `filter --calibrate` fits and
    writes a direction threshold."""
    direction = {s["subject_id"]: s["value"] for s in ws.store.iter("score") if s["metric"] == "direction"}
    median = sorted(direction.values())[len(direction) // 2]
    resolved = {"agreement": 1.0, "annotators": 2}
    ws.store.put(
        "verdict",
        [
            verdict_record(pair, 2, {**resolved, "label": label, "votes": {label: 2}})
            for pair, value in direction.items()
            for label in ["anti" if value >= median else "base"]
        ],
    )
    config_module.set_value(ws.config_path, "filter", "calibration_min_verdicts", 4)
    config_module.set_value(ws.config_path, "annotation", "gold_min_agreement", 0.6)
    ws.reload_config()


def _snapshot(ws: Workspace) -> tuple[str, dict[str, int], dict[str, str]]:
    counts = {kind: ws.store.count(kind) for kind in ("base_prompt", "decision", "release")}
    return ws.config_path.read_text(encoding="utf-8"), counts, gold.gold_answers(ws)


@pytest.mark.parametrize(
    "command",
    [
        ["prompts", "add", "--builtin", "starter", "--sample", "3"],
        ["annotate", "gold", "add", "{gold}"],
        ["annotate", "gold", "from-round", "1"],
        ["filter", "--calibrate"],
        ["publish", "--version", "1.0.0", "--repo", "lab/wide"],
    ],
    ids=["prompts-add", "gold-add", "gold-from-round", "filter-calibrate", "publish"],
)
def test_a_writer_under_a_running_command_is_refused_and_changes_nothing(
    workspace: Workspace, tmp_path: Path, command: list[str]
) -> None:
    pairs = populate(workspace, 12)
    _calibratable(workspace)
    gold_file = _gold_file(workspace, tmp_path, pairs[:2])
    before = _snapshot(workspace)
    with holder(workspace) as process:
        refused = _invoke(workspace, *(arg.replace("{gold}", str(gold_file)) for arg in command))
        assert isinstance(refused, WorkspaceBusy) and f"pid {process.pid}" in str(refused)
    assert _snapshot(workspace) == before


def _runs(ws: Workspace, stage: str) -> list[dict[str, object]]:
    return [run for run in ws.store.runs() if run["stage"] == stage]


def test_each_writer_leaves_a_ledger_run_with_its_counts(workspace: Workspace, tmp_path: Path) -> None:
    pairs = populate(workspace, 12)
    _calibratable(workspace)
    assert _invoke(workspace, "prompts", "add", "--builtin", "starter", "--sample", "3") is None
    assert _invoke(workspace, "annotate", "gold", "add", str(_gold_file(workspace, tmp_path, pairs[:2]))) is None
    assert _invoke(workspace, "annotate", "gold", "from-round", "1") is None
    before = workspace.config_path.read_text(encoding="utf-8")
    assert _invoke(workspace, "filter", "--calibrate") is None
    [prompts] = _runs(workspace, "prompts")
    assert prompts["status"] == "ok" and prompts["counts"]["imported"] == 3  # type: ignore[index]
    first, second = sorted(_runs(workspace, "gold"), key=lambda run: int(run["id"]))  # type: ignore[call-overload]
    assert (first["status"], first["counts"]["added"]) == ("ok", 2)  # type: ignore[index]
    assert second["status"] == "ok" and second["counts"]["added"] >= 1  # type: ignore[index]
    [calibrate] = _runs(workspace, "calibrate")
    written = calibrate["counts"]["thresholds_written"]  # type: ignore[index]
    assert calibrate["status"] == "ok" and written >= 1
    assert (workspace.config_path.read_text(encoding="utf-8") != before) == bool(written)


@pytest.mark.slow
def test_a_failed_publish_stores_its_error_redacted(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy that echoes the request's Authorization header back in its error: the ledger keeps no token."""
    from exports.export import export_version
    from exports.publish import publish

    token = "plain-hub-token-value-42"  # not hf_-shaped: redacted because it is HF_TOKEN's value
    monkeypatch.setenv("HF_TOKEN", token)
    populate(workspace, 4)
    export_version(workspace, "1.0.0")

    def echoing_proxy(request: httpx2.Request) -> httpx2.Response:
        raise RuntimeError(f"proxy refused {request.url} with authorization {request.headers.get('authorization')}")

    with installed(FakeHub()), pytest.raises(RuntimeError, match=token):  # the caller still sees the real error
        publish(workspace, "1.0.0", "lab/wide", transport=httpx2.MockTransport(echoing_proxy))
    [run] = _runs(workspace, "publish")
    assert run["status"] == "failed" and "proxy refused" in str(run["error"])
    assert token not in str(run["error"]) and "***" in str(run["error"])
