"""A lexicon pass end to end: the embedded default, offline and deterministic, recorded and resumable."""

from __future__ import annotations

import json

from curation.app.status import summary
from curation.core.config import set_value
from curation.core.taxonomy import load_taxonomy
from curation.core.workspace import Workspace
from curation.rewrite.stage import pending_rewrite, run_rewrite
from tests.rewrite_fixtures import PROMPTS, add_prompts, configure


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
    again = run_rewrite(workspace)
    assert again.counts.total() == 0 and again.run_id is None  # nothing to do: no ledger run
    runs = workspace.store.runs(3, stage="rewrite")
    assert [r["status"] for r in runs] == ["ok", "ok"] and runs[0]["counts"]["ok"] == len(PROMPTS) - 2

    # the same prompts and settings in another workspace give the very same variants
    from curation.core.workspace import init_workspace

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


def test_a_users_taxonomy_file_relative_to_the_workspace(workspace: Workspace) -> None:
    document = {
        "name": "tiny-test",
        "version": "0.1.0",
        "description": "Two families for a test.",
        "families": [
            {
                "id": f"family_{f}",
                "name": f"Family {f}",
                "description": "Test family.",
                "dimensions": [
                    {
                        "id": f"dim_{f}_{d}",
                        "name": f"Dim {f}{d}",
                        "description": "Make it worse.",
                        "intensities": {
                            "mild": f"a bit odd {f}{d}",
                            "moderate": f"odd {f}{d}",
                            "extreme": f"very odd {f}{d}",
                        },
                        "probe": {"anti": "an odd photo", "clean": "a normal photo"},
                    }
                    for d in range(3)
                ],
            }
            for f in range(2)
        ],
        "incompatible": [["dim_0_0", "dim_1_0"]],
    }
    (workspace.root / "my-taxonomy.json").write_text(json.dumps(document), encoding="utf-8")
    set_value(workspace.config_path, "taxonomy", "path", "my-taxonomy.json")
    workspace.reload_config()
    add_prompts(workspace, PROMPTS)
    run_rewrite(workspace)
    taxonomy = load_taxonomy(str(workspace.root / "my-taxonomy.json"))
    for variant in workspace.store.iter("variant"):
        assert variant["taxonomy"] == {"name": "tiny-test", "version": "0.1.0", "hash": taxonomy.hash}
        assert not {"dim_0_0", "dim_1_0"} <= set(variant["dimensions"])
        assert all(f"odd {d[4]}{d[6]}" in variant["text"] for d in variant["dimensions"])
