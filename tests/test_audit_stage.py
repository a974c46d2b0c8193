"""`widespec audit` end to end on real stores and releases: tiny reward models, records, resumes, failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from curation.app.cli import app
from curation.app.report import write_report
from curation.audit.population import WORKSPACE, workspace_units
from curation.audit.specs import resolve_names
from curation.audit.stage import AuditOptions, Scoring, audit
from curation.audit.summary import summarise
from curation.core.clip import resolve_source
from curation.core.config import set_value
from curation.core.errors import InputError, WidespecError
from curation.core.scorer import scorer_state
from curation.core.workspace import Workspace
from exports.export import export_version
from tests.dataset_fixtures import noise_png, populate

pytestmark = pytest.mark.slow


def cli(ws: Workspace, *args: str) -> Any:
    return CliRunner().invoke(app, ["-w", str(ws.root), "-q", *args])


def stored(ws: Workspace) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "created_at"} for r in ws.store.iter("audit")]


def test_audit_of_a_release_scores_every_row_four_ways_and_prints_the_table(workspace: Workspace) -> None:
    populate(workspace, 10)
    release = export_version(workspace, "1.0.0")
    out = cli(workspace, "audit", "--version", "1.0.0", "--models", "tiny-clip,tiny-aesthetic", "--json")
    assert out.exit_code == 0, out.output
    figures = json.loads(out.stdout)
    population = figures["population"]
    assert population.startswith("v1.0.0@")
    records = list(workspace.store.iter("audit", population=population))
    assert len(records) == 2 * release.rows and all(r["status"] == "ok" for r in records)
    clip, aesthetic = figures["models"]
    assert clip["pairs"] == aesthetic["pairs"] == release.rows
    assert clip["model"].startswith("clip:builtin:tiny-clip@")
    # The aesthetic model reads no prompt: each image scores the same under both prompts, and no tokens are counted.
    for record in workspace.store.iter("audit", model=aesthetic["model"]):
        s = record["scores"]
        assert s["anti_image_anti_prompt"] == s["anti_image_base_prompt"]
        assert s["base_image_anti_prompt"] == s["base_image_base_prompt"]
        assert record["prompt_tokens"] == {"anti_prompt": None, "base_prompt": None}
    # The figures are the stored scores' figures.
    deltas = [
        r["scores"]["anti_image_anti_prompt"] - r["scores"]["base_image_anti_prompt"]
        for r in workspace.store.iter("audit", model=clip["model"])
    ]
    decided = [d for d in deltas if d != 0]
    assert clip["overall"]["accuracy"]["value"] == pytest.approx(sum(d > 0 for d in decided) / len(decided))
    assert clip["overall"]["mean_delta"]["value"] == pytest.approx(sum(deltas) / len(deltas))
    low, high = clip["overall"]["accuracy"]["low"], clip["overall"]["accuracy"]["high"]
    assert low <= clip["overall"]["accuracy"]["value"] <= high
    assert set(clip["breakdowns"]) == {"generator", "family", "dimension", "intensity"}
    assert sum(g["pairs"] for g in clip["breakdowns"]["intensity"].values()) == release.rows

    table = cli(workspace, "audit", "--version", "1.0.0", "--models", "tiny-clip", "--by", "intensity")
    assert table.exit_code == 0, table.output
    assert "reward models on v1.0.0@" in table.stdout and "tiny-clip by intensity" in table.stdout
    assert len(list(workspace.store.iter("audit"))) == 2 * release.rows  # nothing scored twice

    report = write_report(workspace).read_text()
    section = report[report.index("<h2>Reward-model audits</h2>") : report.index("<h2>Spend</h2>")]
    assert f"<h3>{population}</h3>" in section and clip["model"] in section and aesthetic["model"] in section
    accuracy = clip["overall"]["accuracy"]
    assert f"{accuracy['value']:.3f} [{accuracy['low']:.3f}, {accuracy['high']:.3f}]" in section


def configure(ws: Workspace, **values: object) -> None:
    for key, value in values.items():
        set_value(ws.config_path, "audit", key, value)
    ws.reload_config()


def test_a_killed_audit_resumes_to_the_records_of_an_uninterrupted_one(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(workspace, 9)
    configure(workspace, batch_size=2)
    (spec,) = resolve_names("tiny-pickscore", {})
    options = AuditOptions(spec)
    original = Scoring.output
    calls = {"n": 0}

    def dies_on_the_third_batch(self: Scoring, units: Any, batch: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, units, batch)

    monkeypatch.setattr(Scoring, "output", dies_on_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        audit(workspace, options)
    assert workspace.store.count("audit") == 4  # two batches of two pairs committed
    assert workspace.store.runs(stage="audit")[0]["status"] == "interrupted"
    monkeypatch.setattr(Scoring, "output", original)
    resumed = audit(workspace, options)
    assert resumed.counts["pairs_audited"] == 5
    assert audit(workspace, options).nothing_to_do
    after_resume = stored(workspace)

    workspace.store.delete("audit", [r["id"] for r in after_resume])
    assert audit(workspace, options).counts["pairs_audited"] == 9
    assert stored(workspace) == after_resume  # an uninterrupted run writes the same records, byte for byte

    workspace.store.delete("audit", [r["id"] for r in after_resume])
    configure(workspace, batch_size=32)  # other batches: the same scores up to float32 rounding
    audit(workspace, options)
    for one, other in zip(stored(workspace), after_resume, strict=True):
        assert one["id"] == other["id"]
        assert one["scores"] == pytest.approx(other["scores"], abs=1e-4)


def test_a_missing_image_is_a_failed_audit_and_is_scored_once_it_is_back(workspace: Workspace) -> None:
    populate(workspace, 4)
    (spec,) = resolve_names("tiny-blip", {})
    options = AuditOptions(spec)
    pair = next(iter(workspace_units(workspace)))
    image = Path(pair.anti_image.path)
    kept = image.read_bytes()
    image.unlink()
    result = audit(workspace, options)
    assert (result.counts["pairs_audited"], result.counts["pairs_failed"]) == (3, 1)
    (failed,) = workspace.store.iter("audit", status="failed")
    assert failed["subject_id"] == pair.pair_id and failed["scores"] is None
    assert "the anti image is missing" in failed["error"]
    summary = summarise(workspace, options, failed["model"])
    assert (summary.pairs, summary.failed) == (3, 1)

    image.write_bytes(kept)
    again = audit(workspace, options)
    assert (again.counts["pairs_audited"], again.counts["pairs_failed"]) == (1, 0)
    assert workspace.store.count("audit", status="ok") == 4 and workspace.store.count("audit", status="failed") == 0


def test_decided_by_restricts_the_population_and_the_filter_scorer_is_flagged_circular(workspace: Workspace) -> None:
    populate(workspace, 6)  # every other pair has a human verdict; every pair a CLIP decision
    (clip,) = resolve_names("tiny-clip", {})
    source = resolve_source("builtin:tiny-clip", "", root=workspace.root, models_dir=workspace.runtime_dir / "models")
    for key, value in scorer_state(workspace.settings.scorer, source.scorer_id).items():
        workspace.store.state_put(key, value)  # the workspace's pairs were filtered by this very model
    human = AuditOptions(clip, deciders=("human",))
    result = audit(workspace, human)
    assert result.counts["pairs_audited"] == 3
    summary = summarise(workspace, human, str(result.details["model"]))
    assert summary.population == WORKSPACE and summary.pairs == 3 and summary.circular
    (aesthetic,) = resolve_names("tiny-aesthetic", {})
    other = audit(workspace, AuditOptions(aesthetic))
    assert not summarise(workspace, AuditOptions(aesthetic), str(other.details["model"])).circular
    with pytest.raises(InputError, match="--decided-by judge: no pair of this population was decided by it"):
        audit(workspace, AuditOptions(clip, deciders=("judge",)))


def test_an_edited_release_and_unknown_models_are_refused_in_one_line(workspace: Workspace) -> None:
    populate(workspace, 3)
    release = export_version(workspace, "1.0.0")
    unknown = cli(workspace, "audit", "--models", "no-such-model")
    assert isinstance(unknown.exception, InputError)
    assert "unknown reward model 'no-such-model'" in str(unknown.exception)
    blocked = cli(workspace, "audit", "--models", "imagereward")
    assert isinstance(blocked.exception, WidespecError)
    assert "cannot be installed in widespec's environment (image-reward 1.5 pins" in str(blocked.exception)
    shard = next((release.path / "data").glob("*.parquet"))
    shard.chmod(0o644)
    shard.write_bytes(shard.read_bytes() + b"x")
    edited = cli(workspace, "audit", "--version", "1.0.0", "--models", "tiny-clip")
    assert isinstance(edited.exception, WidespecError) and "must not be edited" in str(edited.exception)
    assert workspace.store.count("audit") == 0


def test_export_with_audit_carries_the_audit_of_exactly_its_rows(workspace: Workspace) -> None:
    populate(workspace, 10)
    out = cli(workspace, "export", "--version", "1.0.0", "--with-audit", "tiny-clip,tiny-aesthetic", "--json")
    assert out.exit_code == 0, out.output
    release = json.loads(out.stdout)
    folder = Path(release["path"])
    summary = json.loads((folder / "audit" / "summary.json").read_text())
    assert summary["rows"] == release["rows"]
    table = pq.read_table(folder / "audit" / "tiny-clip.parquet").to_pylist()
    rows = pq.read_table(next((folder / "data").glob("*.parquet")), columns=["id"]).column("id").to_pylist()
    assert [r["id"] for r in table] == sorted(rows) and all(r["status"] == "ok" for r in table)
    card = (folder / "README.md").read_text()
    assert "## Reward-model audit" in card and "| tiny-clip (`clip:builtin:tiny-clip@" in card
    assert (folder / "audit" / "accuracy.png").read_bytes()[:4] == b"\x89PNG"

    # The same rows audited as the release give the same scores, hence the same figures.
    again = cli(workspace, "audit", "--version", "1.0.0", "--models", "tiny-clip,tiny-aesthetic", "--json")
    assert again.exit_code == 0, again.output
    for attached, direct in zip(summary["models"], json.loads(again.stdout)["models"], strict=True):
        assert attached["pairs"] == direct["pairs"] == release["rows"]
        assert attached["overall"]["accuracy"]["value"] == pytest.approx(direct["overall"]["accuracy"]["value"])
        assert attached["overall"]["auroc"]["value"] == pytest.approx(direct["overall"]["auroc"]["value"], abs=1e-6)
    taken = cli(workspace, "export", "--version", "1.0.0", "--with-audit", "tiny-clip")
    assert isinstance(taken.exception, InputError)


def test_outside_images_are_placed_against_the_populations_images(workspace: Workspace, tmp_path: Path) -> None:
    populate(workspace, 6)
    folder = tmp_path / "art"
    folder.mkdir()
    for i in range(2):
        (folder / f"work{i}.png").write_bytes(noise_png(100 + i, 40))
    (folder / "prompts.csv").write_text("image,prompt\nwork0.png,a starry night\nwork1.png,a scream\n")
    args = ["audit", "images", str(folder), "--prompts", str(folder / "prompts.csv"), "--models", "tiny-clip"]
    out = cli(workspace, *args, "--json")
    assert out.exit_code == 0, out.output
    (entry,) = json.loads(out.stdout)["models"]
    assert entry["population"] == WORKSPACE and entry["reference_pairs"] == 6
    records = list(workspace.store.iter("audit", model=entry["model"]))
    base = [r["scores"]["base_image_base_prompt"] for r in records]
    anti = [r["scores"]["anti_image_anti_prompt"] for r in records]
    for placed in entry["images"]:
        below = sum(b < placed["score"] for b in base) + 0.5 * sum(b == placed["score"] for b in base)
        assert placed["base_percentile"] == pytest.approx(100 * below / len(base))
        pooled = base + anti
        mean = sum(pooled) / len(pooled)
        std = (sum((v - mean) ** 2 for v in pooled) / (len(pooled) - 1)) ** 0.5
        assert placed["z"] == pytest.approx((placed["score"] - mean) / std)
    (folder / "bad.csv").write_text("image,prompt\nwork0.png,fine\nmissing.png,a prompt\n")
    bad = cli(workspace, "audit", "images", str(folder), "--prompts", str(folder / "bad.csv"), "--models", "tiny-clip")
    assert isinstance(bad.exception, InputError) and "row 3: image 'missing.png' is not in" in str(bad.exception)
