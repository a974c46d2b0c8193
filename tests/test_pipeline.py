"""`widespec run` end to end on the embedded defaults: every stage, a real Label Studio, a loadable export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from datasets import load_dataset

from annotation import server
from curation.app.pipeline import next_version
from curation.core import config as config_module
from curation.core.workspace import Workspace, init_workspace, open_workspace
from tests.annotation_fixtures import free_port
from tests.test_cli import widespec

pytestmark = pytest.mark.slow  # whole runs of the CLI in subprocesses

STAGES = ["rewrite", "text-checks", "generate", "score", "filter", "judge", "annotate", "export"]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Path]:
    """A workspace with 12 starter prompts whose local Label Studio is stopped afterwards."""
    ws = init_workspace(tmp_path / "demo")
    config_module.set_value(ws.config_path, "annotation", "port", free_port())
    root = ws.root
    ws.close()
    assert (
        widespec("-w", str(root), "prompts", "add", "--builtin", "starter", "--sample", "12", cwd=tmp_path).returncode
        == 0
    )
    yield root
    with open_workspace(root) as opened:
        server.stop(opened)


def run(root: Path) -> dict:
    result = widespec("-w", str(root), "run", "--json", cwd=root.parent)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_run_builds_everything_and_a_second_run_does_no_work(demo: Path) -> None:
    first = run(demo)
    work = {step["name"]: step["work"] for step in first["steps"]}
    assert list(work) == STAGES
    assert work["rewrite"] == 12 and work["generate"] == 24 + 12  # records: 24 renders and the 12 pairs they make
    assert all(work[name] > 0 for name in STAGES if name != "judge"), work
    judge = next(step for step in first["steps"] if step["name"] == "judge")
    assert judge["skipped"] and judge["summary"] == "off (judge.model is empty)"  # no judge by default
    assert first["random_weight_models"] == ["builtin:tiny-clip", "builtin:tiny-sd"]

    second = run(demo)
    assert {step["name"]: step["work"] for step in second["steps"]} == dict.fromkeys(STAGES, 0)

    with open_workspace(demo) as ws:
        [release] = ws.store.iter("release")
        assert release["version"] == "0.1.0"
        rows = load_dataset(str(demo / "exports" / "v0.1.0"), split="train")
        assert len(rows) == release["row_count"] == work["export"]
        assert rows[0]["image_anti"].size == (64, 64)
        assert "Test data, not research data" in (demo / "exports" / "v0.1.0" / "README.md").read_text()
        pushed = [r for r in ws.store.runs(limit=50) if r["stage"] == "annotate-push"]
        assert [r["counts"]["imported"] for r in pushed] == [work["annotate"]]  # the second push had nothing to do
        assert server.running(ws) is not None
    report = Path(second["report"]).read_text()
    assert "Test models:" in report and "<figure class=pair" in report


def test_a_failing_stage_stops_the_run_with_the_reason_and_how_to_resume(demo: Path, tmp_path: Path) -> None:
    ws: Workspace = open_workspace(demo)
    missing = tmp_path / "no-such-model"
    config_module.set_value(ws.config_path, "generator", "models", [str(missing)])
    ws.close()
    result = widespec("-w", str(demo), "run", cwd=tmp_path)
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert "generate failed" in message and "rerun `widespec run`" in message and "no-such-model" in message
    with open_workspace(demo) as ws:
        assert ws.store.count("variant") == 12  # the stages before it kept their work
        assert ws.store.count("score", metric="text_distance") == 12  # the text checks run before generation
        assert ws.store.count("release") == 0 and ws.store.count("score", metric="fidelity") == 0


def test_automatic_versions() -> None:
    assert next_version(None, "minor") == "0.1.0"
    assert next_version("0.3.2", "minor") == "0.4.0"
    assert next_version("0.3.2", "patch") == "0.3.3"


def test_one_run_renders_scores_and_releases_every_configured_model(demo: Path) -> None:
    """generator.models names two models: the first `widespec run` renders both before scoring, and releases both."""
    with open_workspace(demo) as ws:
        config_module.set_value(ws.config_path, "generator", "models", ["builtin:tiny-sd", "builtin:tiny-flux"])
        config_module.set_value(ws.config_path, "run", "annotate", False)
    first = run(demo)
    generate = next(step for step in first["steps"] if step["name"] == "generate")
    assert (
        generate["work"] == 2 * (24 + 12)
        and "builtin:tiny-sd" in generate["summary"]
        and "tiny-flux" in generate["summary"]
    )
    rows = load_dataset(str(demo / "exports" / "v0.1.0"), split="train")
    assert set(rows["generator"]) == {"builtin:tiny-sd", "builtin:tiny-flux"}
    with open_workspace(demo) as ws:
        scored = ws.store.count("score", metric="fidelity")
        assert scored == ws.store.count("pair", status="current") == 2 * 12
