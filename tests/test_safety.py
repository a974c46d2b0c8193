"""The safety screen: what must never be produced is blocked and recorded; dark but legitimate material passes."""

from __future__ import annotations

import pytest

from curation.core.errors import WidespecError
from curation.core.workspace import Workspace
from curation.rewrite.safety import SafetyScreen
from curation.rewrite.stage import run_rewrite
from tests.openai_standin import StandinServer
from tests.rewrite_fixtures import API_KEY, API_KEY_ENV, add_prompts, configure, point_at

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


@pytest.mark.slow
def test_moderation_endpoint_blocks_prompts_and_rewrites_and_is_cached(
    workspace: Workspace, standin: StandinServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(API_KEY_ENV, API_KEY)
    point_at(workspace, standin, moderation_model="omni-moderation-latest")
    standin.state.moderation_flags = {"harpoon": "violence", "deliberately": "harassment"}
    ok = add_prompts(workspace, ["A lighthouse keeper's cottage in fog.", "A dusty attic full of broken dolls."])
    flagged = add_prompts(workspace, ["A whaler raising a harpoon on a stormy deck."])
    summary = run_rewrite(workspace)
    assert summary.blocked_prompts == 1
    assert workspace.store.get("base_prompt", flagged[0])["block_rule"] == "moderation:violence"
    # the stand-in's rewrites end with "deliberately": flagged at moderation, stored as blocked with the rule
    stored = {v["base_id"]: v for v in workspace.store.iter("variant")}
    assert set(stored) == set(ok)
    assert all(v["status"] == "blocked" and v["block_rule"] == "moderation:harassment" for v in stored.values())
    assert standin.state.moderation_requests[0]["model"] == "omni-moderation-latest"
    checked = len(standin.state.moderation_requests)
    assert checked == 5  # three prompts, two rewrites
    add_prompts(workspace, ["A rusty tractor in a muddy field."])
    run_rewrite(workspace)
    assert len(standin.state.moderation_requests) == checked + 2  # only the new prompt and its rewrite


def test_unreachable_moderation_stops_the_pass(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(API_KEY_ENV, API_KEY)
    configure(
        workspace,
        moderation_model="omni-moderation-latest",
        base_url="http://127.0.0.1:9/v1",
        api_key_env=API_KEY_ENV,
        timeout_s=0.2,
        max_attempts=1,
    )
    add_prompts(workspace, ["A quiet harbour at dawn."])
    with pytest.raises(WidespecError, match="the safety screen cannot be skipped"):
        run_rewrite(workspace)
    assert workspace.store.count("variant") == 0
    assert workspace.store.get("base_prompt", next(iter(workspace.store.ids("base_prompt"))))["status"] == "ok"


def test_changed_safety_terms_screen_stored_prompts_and_variants_again(workspace: Workspace) -> None:
    """A curator adds a term after a pass: the stored base prompt and its variants are blocked, nothing else is."""
    kept = add_prompts(workspace, ["A rotting pumpkin on a porch, dread and decay"])
    later = add_prompts(workspace, ["a red banner over a crowd"])
    first = run_rewrite(workspace)
    assert first.counts["ok"] == 2 * workspace.settings.rewriter.variants_per_prompt
    variants = {v["id"]: v for v in workspace.store.iter("variant")}
    assert run_rewrite(workspace).run_id is None  # unchanged settings: nothing screened again, nothing to do

    configure(workspace, safety_terms=["banner"])
    again = run_rewrite(workspace)
    assert again.blocked_prompts == 1 and again.counts["ok"] == 0
    base = workspace.store.get("base_prompt", later[0])
    assert base is not None and (base["status"], base["block_rule"]) == ("blocked", "term:banner")
    after = {v["id"]: v for v in workspace.store.iter("variant")}
    assert set(after) == set(variants)
    for vid, variant in after.items():
        if variant["base_id"] == later[0]:
            assert (variant["status"], variant["text"], variant["block_rule"]) == ("blocked", None, "term:banner")
        else:
            assert variant == variants[vid] and variant["base_id"] == kept[0]
    assert run_rewrite(workspace).run_id is None  # screened once per change of the settings


def test_relaxed_safety_terms_restore_what_they_blocked(workspace: Workspace) -> None:
    """Terms added, then removed again: the base prompt comes back as it was and its variants are rewritten as
    an uninterrupted pass would have made them; a variant blocked for its own words comes back too."""
    kept = add_prompts(workspace, ["A rotting pumpkin on a porch, dread and decay"])
    add_prompts(workspace, ["a red banner over a crowd"])
    run_rewrite(workspace)
    bases = {b["id"]: b for b in workspace.store.iter("base_prompt")}
    variants = {v["id"]: v for v in workspace.store.iter("variant")}
    base_words = set(bases[kept[0]]["text"].lower().split())
    word = next(
        w
        for v in variants.values()
        if v["base_id"] == kept[0]
        for w in v["text"].lower().replace(",", " ").split()
        if w.isalpha() and len(w) > 4 and w not in base_words
    )  # a word some rewrites of the kept prompt add

    configure(workspace, safety_terms=["banner", word])
    tightened = run_rewrite(workspace)
    assert tightened.blocked_prompts == 1
    blocked = {v["id"] for v in workspace.store.iter("variant", status="blocked")}
    assert any(variants[vid]["base_id"] == kept[0] for vid in blocked)  # blocked for the variant's own words

    configure(workspace, safety_terms=[])
    relaxed = run_rewrite(workspace)
    assert relaxed.counts["unblocked_prompts"] == 1
    assert {b["id"]: b for b in workspace.store.iter("base_prompt")} == bases  # restored byte for byte
    after = {v["id"]: v for v in workspace.store.iter("variant")}
    assert set(after) == set(variants)
    fields = ("status", "text", "dimensions", "intensity", "base_id", "index")
    assert {vid: tuple(v[f] for f in fields) for vid, v in after.items()} == {
        vid: tuple(v[f] for f in fields) for vid, v in variants.items()
    }
    assert all("block_rule" not in v or v["block_rule"] is None for v in after.values())
    assert run_rewrite(workspace).run_id is None


def test_a_pair_whose_base_prompt_is_blocked_later_is_scored_judged_and_released_no_more(workspace: Workspace) -> None:
    from benchmarks.synthetic_pairs import add_pair
    from curation.core.pairs import iter_pairs, restatus
    from curation.core.records import blocked_base_prompt

    kept = add_pair(workspace, "a teapot", "a blurry teapot", ["blurry"], seed=3)
    gone = add_pair(workspace, "a red banner", "a faded red banner", ["faded_colour"], seed=4)
    assert {p.id for p in iter_pairs(workspace.store)} == {kept.pair_id, gone.pair_id}
    base = workspace.store.get("base_prompt", gone.base_id)
    assert base is not None
    # As the rewrite stage's screen blocks it: the prompt and, in the same transaction, its pairs.
    with workspace.store.transaction():
        workspace.store.put("base_prompt", [blocked_base_prompt(base, "term:banner")], on_conflict="replace")
        workspace.store.put("pair", restatus(workspace.store, {gone.variant_id}), on_conflict="replace")
    assert workspace.store.get("pair", gone.pair_id)["status"] == "blocked"  # type: ignore[index]
    assert {p.id for p in iter_pairs(workspace.store)} == {kept.pair_id}  # every later stage reads pairs here
