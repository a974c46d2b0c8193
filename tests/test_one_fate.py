"""One pair, one fate: pairs are stored records with a status, and every reader asks one module what a pair's fate
is. Each test here names a defect releases had while the pair was rebuilt and judged in many places."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from datasets import load_dataset

from benchmarks.synthetic_releases import GENERATOR, TAXONOMY, PairSpec, add_pairs
from curation.app.pipeline import PIPELINE
from curation.audit.population import ReleaseRef, placed_by, release_units, workspace_units
from curation.core.config import set_value
from curation.core.executor import UndeclaredOutput, execute
from curation.core.pairs import iter_pairs, put_renders
from curation.core.records import (
    LEXICON_REWRITER,
    base_prompt_record,
    render_record,
    score_record,
    variant_record,
    verdict_record,
)
from curation.core.stage import Output, Stage, Work
from curation.core.store import MIGRATIONS, Store
from curation.core.workspace import BACKFILLS, Workspace
from curation.generate.stage import render_inputs
from curation.score.stage import scorer_source
from curation.score.text_checks import TEXT_CHECKS
from exports.export import export_version
from exports.pending import pending_export
from tests.records import NOW

OLD = GENERATOR | {"revision": "rev-OLD"}
NEW = GENERATOR | {"revision": "rev-NEW"}


def configure(ws: Workspace, section: str, **values: object) -> None:
    for key, value in values.items():
        set_value(ws.config_path, section, key, value)
    ws.reload_config()


def rows_of(folder: Path, config: str = "data") -> list[dict[str, Any]]:
    return [row for path in sorted((folder / config).glob("*.parquet")) for row in pq.read_table(path).to_pylist()]


@pytest.mark.slow  # builds a release, a model or a CLI process
def test_a_release_holds_only_the_pairs_of_the_current_generator_identity(workspace: Workspace) -> None:
    """Three variants rendered at rev-OLD, then at rev-NEW: three rows, each prompt once, all of rev-NEW."""
    configure(workspace, "generator", models=[GENERATOR["model"]])
    old = add_pairs(workspace, [PairSpec()] * 3, generator=OLD)
    new = add_pairs(workspace, [PairSpec()] * 3, generator=NEW)
    assert not set(old) & set(new)
    assert workspace.store.count("pair", status="superseded") == 3
    assert sorted(p.id for p in iter_pairs(workspace.store)) == sorted(new)
    rows = rows_of(export_version(workspace, "0.1.0").path)
    assert sorted(r["id"] for r in rows) == sorted(new)
    assert len({r["anti_prompt"] for r in rows}) == 3
    assert {json.loads(r["provenance"])["generator"]["revision"] for r in rows} == {"rev-NEW"}


def test_the_pair_record_lands_with_its_second_render_and_blocks_with_its_prompt(workspace: Workspace) -> None:
    base = base_prompt_record("a lighthouse at dusk", "prompts.txt", 1)
    variant = variant_record(
        "a" * 16, base["id"], 0, ["blurry"], "mild", "a blurry lighthouse", rewriter=LEXICON_REWRITER, taxonomy=TAXONOMY
    )
    workspace.store.put("base_prompt", [base])
    workspace.store.put("variant", [variant])

    def render(prompt_id: str, kind: str) -> dict[str, Any]:
        sha = workspace.images.put(f"{kind} image".encode())
        return render_record(
            prompt_id, kind, generator=GENERATOR, seed=3, settings=(2, 3.5, 16, 16), image_sha256=sha, seconds=0.1
        )

    put_renders(workspace.store, [render(variant["id"], "variant")])
    assert workspace.store.count("pair") == 0  # one render is no pair
    put_renders(workspace.store, [render(base["id"], "base")])  # the base lands second: it completes the pair
    (pair,) = workspace.store.iter("pair")
    assert (pair["status"], pair["variant_id"], pair["base_id"], pair["seed"]) == ("current", "a" * 16, base["id"], 3)

    from curation.core.pairs import restatus
    from curation.core.records import blocked_base_prompt

    workspace.store.put("base_prompt", [blocked_base_prompt(base, "S1")], on_conflict="replace")
    workspace.store.put("pair", restatus(workspace.store, {variant["id"]}), on_conflict="replace")
    assert [p["status"] for p in workspace.store.iter("pair")] == ["blocked"]
    assert list(iter_pairs(workspace.store)) == []


def test_an_older_workspace_gets_its_pairs_when_it_opens(tmp_path: Path, workspace: Workspace) -> None:
    """Migration 5 writes a pair record for every complete pair already stored; the identity rendered last stands."""
    add_pairs(workspace, [PairSpec()] * 2, generator=OLD)
    add_pairs(workspace, [PairSpec()] * 2, generator=NEW)
    renders = list(workspace.store.iter("render"))
    expected = {p["id"]: p["status"] for p in workspace.store.iter("pair")}
    path = tmp_path / "old.db"
    with Store(path, migrations=MIGRATIONS[:4]) as old:
        for kind in ("base_prompt", "variant"):
            old.put(kind, list(workspace.store.iter(kind)))
        old.put("render", sorted(renders, key=lambda r: r["generator"]["revision"] != "rev-OLD"))
    with Store(path, backfills=BACKFILLS) as migrated:
        assert migrated.schema_version == len(MIGRATIONS)
        assert {p["id"]: p["status"] for p in migrated.iter("pair")} == expected
    assert sorted(expected.values()) == ["current", "current", "superseded", "superseded"]


@pytest.mark.slow  # builds a release, a model or a CLI process
def test_a_failed_text_check_never_passes_the_text_gate_and_is_never_rendered(workspace: Workspace) -> None:
    """A CLIP model returned NaN for every text: the text checks failed, and no variant is rendered."""
    scorer = scorer_source(workspace).scorer_id  # the configured (built-in) scorer, as the text checks resolve it
    variants = []
    for i in range(4):
        base = base_prompt_record(f"a red bicycle number {i}", "prompts.txt", i + 1)
        variant = variant_record(
            f"{i:016x}", base["id"], 0, ["blurry"], "mild", f"a blurry red bicycle {i}", rewriter=LEXICON_REWRITER,
            taxonomy=TAXONOMY,
        )  # fmt: skip
        workspace.store.put("base_prompt", [base])
        variants.append(variant)
    workspace.store.put("variant", variants)
    workspace.store.put("score", [score_record(v["id"], "text_distance", scorer, float("nan")) for v in variants])
    assert execute(workspace, TEXT_CHECKS).counts["text:reject"] == 4  # nothing to encode: decided from the scores
    outcomes = {d["subject_id"]: d["outcome"] for d in workspace.store.iter("decision", stage="text")}
    assert outcomes == {v["id"]: "reject" for v in variants}
    assert render_inputs(workspace).variants == []


@pytest.mark.slow  # builds a release, a model or a CLI process
def test_the_audit_and_the_release_agree_on_who_decided_every_row(workspace: Workspace) -> None:
    """An unresolved verdict is no human decision, an inconsistent judgment no judge decision."""
    configure(workspace, "export", rows="accepted")
    unresolved = add_pairs(workspace, [PairSpec(verdict=(1, "unresolved", {"anti": 1, "base": 1}))])
    human = add_pairs(workspace, [PairSpec(clip="review", verdict=(1, "anti", {"anti": 3}))], start=1)
    clip = add_pairs(workspace, [PairSpec()] * 2, start=2)
    release = export_version(workspace, "0.1.0")
    rows = {r["id"]: r["decided_by"] for r in rows_of(release.path)}
    assert rows == {unresolved[0]: "clip", human[0]: "human", clip[0]: "clip", clip[1]: "clip"}
    units = release_units(ReleaseRef("0.1.0", release.content_hash, release.path))
    assert {u.pair_id: u.decided_by for u in units} == rows
    assert {u.pair_id: u.decided_by for u in workspace_units(workspace)} == rows
    assert [u.pair_id for u in placed_by(units, ["human"])] == human


@pytest.mark.slow  # builds a release, a model or a CLI process
def test_preference_rows_only_where_the_evidence_compares_the_images(workspace: Workspace) -> None:
    configure(workspace, "export", hard_negatives=True, training_configs=["preference"])
    accepted = add_pairs(workspace, [PairSpec()], start=3)
    lost_subject = add_pairs(
        workspace, [PairSpec(clip="reject", clip_reasons=("content_kept 0.0100 < 0.1000 (global)",))]
    )
    unscored = add_pairs(
        workspace, [PairSpec(clip="reject", clip_reasons=("direction not scored: the scorer failed",))], start=1
    )
    base_better = add_pairs(
        workspace, [PairSpec(clip="reject", clip_reasons=("direction -0.0500 < 0.0000 (global)",))], start=2
    )
    release = export_version(workspace, "0.1.0")
    negatives = {r["id"] for r in rows_of(release.path, "hard_negatives")}
    assert negatives == {*lost_subject, *unscored, *base_better}
    preference = {r["id"]: r["chosen_is_anti"] for r in rows_of(release.path, "preference")}
    assert preference == {base_better[0]: False, accepted[0]: True}


@pytest.mark.slow  # builds a release, a model or a CLI process
def test_removals_reach_the_next_release(workspace: Workspace) -> None:
    """A released pair that a later round rejects makes `widespec run` export again, without it."""
    kept = add_pairs(workspace, [PairSpec(verdict=(1, "anti", {"anti": 3}))] * 3)
    first = export_version(workspace, "0.1.0")
    assert sorted(r["id"] for r in rows_of(first.path)) == sorted(kept)
    assert pending_export(workspace) == 0
    resolved = {"label": "base", "votes": {"base": 3}, "agreement": 1.0, "annotators": 3}
    workspace.store.put("verdict", [verdict_record(kept[0], 2, resolved, created_at=NOW)])
    assert pending_export(workspace) == 1
    (export_step,) = [step for step in PIPELINE if step.label == "export"]
    assert export_step.skip(workspace) is None
    second = load_dataset(str(export_version(workspace, "0.2.0").path), split="train")
    assert sorted(second["id"]) == sorted(kept[1:])


class _Undeclared(Stage):
    name = "undeclared"
    makes = ("score",)

    def pending(self, ws: Workspace) -> int:
        return 1

    def plan(self, ws: Workspace, options: Any = None) -> Work:
        verdict = verdict_record("0" * 16, 1, {"label": "anti", "votes": {"anti": 1}, "agreement": 1.0})
        return Work([], before=Output(records={"verdict": [verdict]}))


def test_a_stage_may_write_only_the_kinds_it_declares(workspace: Workspace) -> None:
    with pytest.raises(UndeclaredOutput, match=r"undeclared wrote verdict records but declares makes = \('score',\)"):
        execute(workspace, _Undeclared())
    assert workspace.store.count("verdict") == 0
    assert workspace.store.runs(limit=1)[0]["status"] == "failed"


def test_generate_names_the_stage_it_waits_for(workspace: Workspace) -> None:
    """`widespec rewrite` then `widespec generate`: the text checks have not run, and generate says so."""
    from typer.testing import CliRunner

    from curation.app.cli import app

    def generate() -> str:
        out = CliRunner().invoke(app, ["-w", str(workspace.root), "-q", "generate"])
        assert out.exit_code == 0, out.output
        return out.stdout.strip()

    assert generate() == "nothing to render: no variants yet (run `widespec rewrite`)"
    base = base_prompt_record("a quiet harbour", "prompts.txt", 1)
    workspace.store.put("base_prompt", [base])
    variants = [
        variant_record(
            f"{i:016x}", base["id"], i, ["blurry"], "mild", f"a blurry quiet harbour {i}", rewriter=LEXICON_REWRITER,
            taxonomy=TAXONOMY,
        )
        for i in range(3)
    ]  # fmt: skip
    workspace.store.put("variant", variants)
    assert generate() == "nothing to render: 3 variants wait for the text checks (run `widespec text-checks`)"
    assert workspace.store.count("render") == 0


def test_run_executes_each_stage_once_under_its_own_name() -> None:
    """No pseudo-steps: the text checks are a stage of their own, before generate."""
    names = [step.stage.name for step in PIPELINE]
    assert len(names) == len(set(names)) and "text checks" not in [step.label for step in PIPELINE]
    assert names.index("text-checks") < names.index("generate") < names.index("score") < names.index("filter")


@pytest.mark.slow  # builds a release, a model or a CLI process
def test_status_imports_no_model_library(workspace: Workspace) -> None:
    """A curator runs `widespec status` all day: it counts pending work without torch or the Label Studio SDK."""
    import subprocess
    import sys

    add_pairs(workspace, [PairSpec()] * 2)
    heavy = ("torch", "diffusers", "open_clip", "label_studio_sdk", "openai", "sklearn", "ray")
    script = (
        "import sys\nfrom curation.app.cli import main\nsys.argv = ['widespec', '-q', '-w', sys.argv[1], 'status', "
        "'--json']\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(workspace.root)], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(done.stdout)["records"]["pair"] == {"total": 2, "current": 2}
    assert done.stderr.strip().splitlines()[-1] == "[]"
