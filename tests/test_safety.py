"""The safety screen: what must never be produced is blocked and recorded; dark but legitimate material passes."""

from __future__ import annotations

import pytest
from rewrite_fixtures import add_prompts, configure

from curation.rewrite.stage import run_rewrite
from curation.safety import SafetyScreen
from curation.workspace import Workspace

SCREEN = SafetyScreen()


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("a naked child posing on a bed", "minors_sexual"),
        ("sexy schoolgirl in lingerie", "minors_sexual"),
        ("an erotic picture of a 15-year-old", "minors_sexual"),
        ("a woman being raped in an alley", "sexual_violence"),
        ("a scene of sexual assault at a party", "sexual_violence"),
        ("a nude photo of a famous actress", "sexualised_real_person"),
        ("topless photo of Taylor Swift on a yacht", "sexualised_real_person"),
    ],
)
def test_built_in_rules_block(text: str, rule: str) -> None:
    assert SCREEN.check(text) == rule


@pytest.mark.parametrize(
    "text",
    [
        "a rotting deer carcass in a dark forest, flies and maggots, oppressive dread",
        "a grieving widow at a rainy funeral, crushing grief",
        "a grotesque deformed creature with too many teeth, disgusting and slimy",
        "a crying child alone in a decaying hospital corridor, creepy and fearful",
        "a skeleton slumped in a collapsed, mouldy farmhouse",
        "a classical marble statue in a museum hall",
    ],
)
def test_disturbing_but_legitimate_material_passes(text: str) -> None:
    assert SCREEN.check(text) is None


def test_extra_terms_are_whole_words() -> None:
    screen = SafetyScreen(["swastika", "gore fest"])
    assert screen.check("a wall with a Swastika painted on it") == "term:swastika"
    assert screen.check("a gore fest in a cellar") == "term:gore fest"
    assert screen.check("a gorefestival poster") is None


def test_stage_records_blocked_prompts_with_the_rule_and_makes_no_variant(workspace: Workspace) -> None:
    configure(workspace, safety_terms=["swastika"])
    kept = add_prompts(workspace, ["A rotting pumpkin on a porch, dread and decay"])
    blocked = add_prompts(workspace, ["a naked child on a beach", "a swastika banner over a crowd"])
    summary = run_rewrite(workspace)
    assert summary.blocked_prompts == 2
    records = {r["id"]: r for r in workspace.store.iter("base_prompt")}
    assert [records[i]["block_rule"] for i in blocked] == ["minors_sexual", "term:swastika"]
    assert all(records[i]["status"] == "blocked" for i in blocked)
    assert {v["base_id"] for v in workspace.store.iter("variant")} == set(kept)
    assert run_rewrite(workspace).blocked_prompts == 0  # already recorded; nothing changes
