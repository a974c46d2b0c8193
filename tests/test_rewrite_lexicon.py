"""A lexicon pass end to end: the embedded default, offline and deterministic, recorded and resumable."""

from __future__ import annotations

from rewrite_fixtures import PROMPTS, add_prompts, configure

from curation.rewrite.stage import pending_rewrite, run_rewrite
from curation.status import summary
from curation.taxonomy import load_taxonomy
from curation.workspace import Workspace


def test_lexicon_pass_is_recorded_deterministic_and_idempotent(workspace: Workspace, tmp_path) -> None:
    add_prompts(workspace, PROMPTS)
    assert summary(workspace)["pending"]["rewrite"] == len(PROMPTS)
    result = run_rewrite(workspace, limit=2)
    assert result.counts["ok"] == 2 and pending_rewrite(workspace) == len(PROMPTS) - 2
    run_rewrite(workspace)
    first = {v["id"]: v for v in workspace.store.iter("variant")}
    assert len(first) == len(PROMPTS) and pending_rewrite(workspace) == 0
    taxonomy = load_taxonomy("builtin:widespec-core")
    for variant in first.values():
        assert variant["rewriter"] == {
            "kind": "lexicon",
            "model": None,
            "template_hash": None,
            "params": {"composer": "lexicon/1"},
        }
        assert variant["usage"] is None and variant["taxonomy"] == taxonomy.provenance()
        for dimension in variant["dimensions"]:
            assert taxonomy.dimensions[dimension].intensities[variant["intensity"]] in variant["text"]
    assert run_rewrite(workspace).counts.total() == 0
    runs = workspace.store.runs(3, stage="rewrite")
    assert [r["status"] for r in runs] == ["ok", "ok", "ok"] and runs[1]["counts"]["ok"] == len(PROMPTS) - 2

    # the same prompts and settings in another workspace give the very same variants
    from curation.workspace import init_workspace

    with init_workspace(tmp_path / "other") as other:
        add_prompts(other, list(reversed(PROMPTS)))
        run_rewrite(other)
        again = {v["id"]: v for v in other.store.iter("variant")}
    assert {i: (v["text"], v["dimensions"]) for i, v in again.items()} == {
        i: (v["text"], v["dimensions"]) for i, v in first.items()
    }


def test_changing_pass_settings_starts_a_new_pass_beside_the_old_one(workspace: Workspace) -> None:
    add_prompts(workspace, PROMPTS[:3])
    run_rewrite(workspace)
    configure(workspace, intensities=["extreme"])
    assert pending_rewrite(workspace) == 3
    run_rewrite(workspace)
    assert workspace.store.count("variant") == 6
    assert {v["intensity"] for v in workspace.store.iter("variant")} >= {"extreme"}
