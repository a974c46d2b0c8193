"""A pass killed with SIGKILL midway, then rerun, ends with every planned variant stored exactly once."""

from __future__ import annotations

from collections import Counter

import pytest

from curation.core.workspace import Workspace
from curation.rewrite.stage import run_rewrite, view_pass
from tests.kill_fixtures import kill_midway
from tests.openai_standin import StandinServer
from tests.rewrite_fixtures import API_KEY, API_KEY_ENV, add_prompts, point_at

pytestmark = pytest.mark.slow  # the CLI in a subprocess, killed midway

PROMPTS = [f"A {colour} umbrella left on a {place}." for colour in ("red", "blue", "green", "yellow", "grey") for place in (
    "tram seat", "park bench", "beach", "rooftop", "bus stop", "staircase", "ferry deck", "market stall")]  # fmt: skip


def test_sigkill_midway_then_rerun_stores_each_planned_variant_once(
    workspace: Workspace, standin: StandinServer, monkeypatch
) -> None:
    monkeypatch.setenv(API_KEY_ENV, API_KEY)
    point_at(workspace, standin, max_concurrency=2, batch_size=3)
    add_prompts(workspace, PROMPTS)
    standin.state.latency_s = 0.05
    stored_at_kill, paid_at_kill = kill_midway(workspace.root, "rewrite", "variant", 6, {API_KEY_ENV: API_KEY})
    assert 6 <= stored_at_kill < len(PROMPTS), "the kill must land midway"
    assert workspace.store.runs(1, stage="rewrite")[0]["status"] == "interrupted"  # the killed run reads as such

    calls_before = standin.state.calls
    rerun = run_rewrite(workspace)
    planned = {v.id for v in view_pass(workspace).plan}
    stored = list(workspace.store.iter("variant"))
    assert len(stored) == len(planned) == len(PROMPTS)
    assert {v["id"] for v in stored} == planned
    assert Counter(v["base_id"] for v in stored) == Counter({b: 1 for b in workspace.store.ids("base_prompt")})
    assert all(v["status"] == "ok" for v in stored)
    # answers paid for before the kill came from the cache; only the rest were called again
    assert standin.state.calls - calls_before == len(PROMPTS) - paid_at_kill
    assert rerun.counts["cached"] == paid_at_kill - stored_at_kill
