"""A judge pass killed with SIGKILL midway, then rerun, ends with the records of an uninterrupted pass, byte for byte
(paid answers come from the cache; nothing is paid twice)."""

from __future__ import annotations

import pytest

from curation.core.workspace import Workspace
from curation.judge.stage import run_judge
from tests.dataset_fixtures import populate
from tests.kill_fixtures import kill_midway
from tests.test_judge_stage import KEY, KEY_ENV, configure, image_for, judgments, standin
from tests.vision_standin import VisionStandin

pytestmark = pytest.mark.slow  # the CLI in a subprocess, killed midway

__all__ = ["standin"]  # the fixture, used by name


def test_sigkill_midway_then_rerun_gives_the_records_of_an_uninterrupted_pass(
    workspace: Workspace, standin: VisionStandin, monkeypatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    populate(workspace, 30, image=image_for)
    configure(workspace, base_url=standin.base_url, model="standin-vl", api_key_env=KEY_ENV, max_concurrency=2)
    configure(workspace, batch_size=2)
    standin.state.latency_s = 0.05
    for variant in list(workspace.store.iter("variant"))[::3]:  # some answers only on a retry: records stay the same
        standin.state.plan(variant["text"], "schema_invalid")
    stored_at_kill, paid_at_kill = kill_midway(workspace.root, "judge", "judgment", 6, {KEY_ENV: KEY})
    assert 6 <= stored_at_kill < 30, "the kill must land midway"
    assert workspace.store.runs(1, stage="judge")[0]["status"] == "interrupted"

    calls_before = standin.state.calls  # sent before the kill, paid or in flight
    run_judge(workspace)
    resumed = judgments(workspace)
    assert len(resumed) == 30 and {r["status"] for r in resumed.values()} == {"ok"}
    assert standin.state.behaviours["schema_invalid"] == 10  # every planned retry happened
    # Nothing paid twice: 60 answers, 10 retries, and at most the 2 requests in flight when the process died.
    assert paid_at_kill <= calls_before and standin.state.calls <= 60 + 10 + 2

    with workspace.store.transaction():
        workspace.store.delete("judgment", [r["id"] for r in workspace.store.iter("judgment")])
    run_judge(workspace)  # an uninterrupted pass (from the cache, which holds what the endpoint answered)
    assert judgments(workspace) == resumed
