"""Export: rows, shards, load_dataset round trip, determinism, immutability, card, diff and changelog."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from datasets import Image, load_dataset
from huggingface_hub import DatasetCard
from PIL import Image as PILImage
from typer.testing import CliRunner

from benchmarks.synthetic_releases import DIMENSIONS, GENERATOR, SCORER, PairSpec, add_pairs
from curation.app.cli import app
from curation.core.config import set_value
from curation.core.errors import InputError, RecordInvalid
from curation.core.ids import stable_id
from curation.core.pairs import iter_pairs
from curation.core.records import decision_record, verdict_record
from curation.core.workspace import Workspace
from curation.domain.evidence import PairRecords
from exports import card as card_module
from exports.diff import diff_versions, folder_content_hash
from exports.export import export_version
from exports.rows import build_row
from exports.writer import FEATURES

JUDGED = PairSpec(clip="review", verdict=(2, "anti", {"anti": 2, "base": 1}))
HUMAN_REJECT = PairSpec(clip="accept", verdict=(1, "base", {"base": 3}))


def _configure(ws: Workspace, **values: object) -> None:
    for key, value in values.items():
        set_value(ws.config_path, "export", key, value)
    ws.reload_config()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _decision(pair_id: str, stage: str, outcome: str) -> dict[str, object]:
    return decision_record(pair_id, stage, outcome, [], {"min_votes": 2})


@pytest.fixture
def planted(workspace: Workspace) -> dict[str, list[str]]:
    """Accepted, unscored, human-judged, CLIP-rejected, human-rejected and undecided pairs."""
    _configure(workspace, hard_negatives=True)
    return {
        "accepted": add_pairs(workspace, [PairSpec()] * 4),
        "unscored": add_pairs(workspace, [PairSpec(scored=False)], start=4),
        "judged": add_pairs(workspace, [JUDGED], start=5),
        "clip_rejected": add_pairs(workspace, [PairSpec(clip="reject")] * 2, start=6),
        "human_rejected": add_pairs(workspace, [HUMAN_REJECT], start=8),
        "undecided": add_pairs(workspace, [PairSpec(clip="review")], start=9),
    }


def test_row_builder_is_pure_and_validates(workspace: Workspace) -> None:
    add_pairs(workspace, [JUDGED])
    pair = next(iter_pairs(workspace.store))
    scores = list(workspace.store.iter("score", subject_id=pair.id))
    decisions = list(workspace.store.iter("decision", subject_id=pair.id))
    verdicts = list(workspace.store.iter("verdict", subject_id=pair.id))
    row = build_row(PairRecords(pair, scores, decisions, verdicts), license="cc-by-4.0", scorer=SCORER)
    assert row["id"] == pair.id
    assert row["probe"] == [0.01, 0.02] and len(row["probe"]) == len(row["dimensions"])
    assert (row["verdict"], row["verdict_round"], row["votes"]) == ("anti", 2, {"anti": 2, "base": 1, "tie": 0})
    assert row["agreement"] == pytest.approx(2 / 3)
    provenance = json.loads(row["provenance"])
    assert provenance["generator"]["revision"] == "abc123"
    assert provenance["thresholds"]["clip"]["min_fidelity"] == 0.0
    assert set(provenance) >= {"taxonomy", "rewriter", "scorer", "settings"}
    assert build_row(PairRecords(pair, scores, decisions, verdicts), license="cc-by-4.0", scorer=SCORER) == row
    assert provenance["scorer"] == [SCORER]
    # Scores of another scorer, newer ones included, never reach the row: every metric is the configured one's.
    other = [{**s, "id": "f" * 16, "scorer": "hf-hub:someone/other-clip", "value": 0.99} for s in scores]
    mixed = build_row(PairRecords(pair, [*scores, *other], decisions, verdicts), license="cc-by-4.0", scorer=SCORER)
    assert mixed == row
    alone = build_row(PairRecords(pair, other, decisions, verdicts), license="cc-by-4.0", scorer=SCORER)
    assert alone["fidelity"] is None and json.loads(alone["provenance"])["scorer"] == []

    unscored = build_row(PairRecords(pair, [], decisions, []), license="cc-by-4.0", scorer=SCORER)
    assert (unscored["fidelity"], unscored["probe"], unscored["verdict"], unscored["votes"]) == (
        None,
        [None, None],
        None,
        None,
    )

    bad_votes = [{**verdicts[0], "votes": {"anti": 1, "maybe": 2}}]
    with pytest.raises(RecordInvalid, match=r"verdict .*votes.*maybe"):
        build_row(PairRecords(pair, scores, decisions, bad_votes), license="cc-by-4.0", scorer=SCORER)
    with pytest.raises(RecordInvalid, match=rf"dataset_row {pair.id}: \$\.license"):
        build_row(PairRecords(pair, scores, decisions, verdicts), license="", scorer=SCORER)


@pytest.mark.slow
def test_load_dataset_round_trip(workspace: Workspace, planted: dict[str, list[str]]) -> None:
    result = export_version(workspace, "1.0.0")
    included = sorted(planted["accepted"] + planted["unscored"] + planted["judged"])
    negatives = sorted(planted["clip_rejected"] + planted["human_rejected"])
    assert (result.rows, result.hard_negatives) == (len(included), len(negatives))

    ds = load_dataset(str(result.path), split="train")
    assert ds.features == FEATURES
    assert ds["id"] == included
    by_id = {row["id"]: row for row in ds}
    judged = by_id[planted["judged"][0]]
    assert (judged["verdict"], judged["votes"], judged["clip_outcome"]) == (
        "anti",
        {"anti": 2, "base": 1, "tie": 0},
        "review",
    )
    unscored = by_id[planted["unscored"][0]]
    assert unscored["fidelity"] is None and unscored["verdict"] is None and unscored["agreement"] is None
    accepted = by_id[planted["accepted"][0]]
    assert accepted["fidelity"] == pytest.approx(0.2) and accepted["license"] == "cc-by-4.0"
    assert isinstance(accepted["image_anti"], PILImage.Image) and accepted["image_anti"].size == (16, 16)

    raw = ds.cast_column("image_base", Image(decode=False)).cast_column("image_anti", Image(decode=False))
    pairs = {p.id: p for p in iter_pairs(workspace.store)}
    for row in raw:
        pair = pairs[row["id"]]
        assert row["image_base"]["bytes"] == workspace.images.read(pair.base_render["image_sha256"])
        assert row["image_anti"]["bytes"] == workspace.images.read(pair.anti_render["image_sha256"])

    hard = load_dataset(str(result.path), "hard_negatives", split="train")
    assert hard["id"] == negatives
    assert hard.features == FEATURES


@pytest.mark.slow
def test_export_twice_gives_identical_shards(workspace: Workspace, planted: dict[str, list[str]]) -> None:
    first = export_version(workspace, "1.0.0")
    second = export_version(workspace, "1.0.1", notes="no data change")
    shards = [sorted((first.path / d).glob("*.parquet")) for d in ("data", "hard_negatives")]
    again = [sorted((second.path / d).glob("*.parquet")) for d in ("data", "hard_negatives")]
    assert [p.name for s in shards for p in s] == [p.name for s in again for p in s]
    assert [_sha(p) for s in shards for p in s] == [_sha(p) for s in again for p in s]
    assert first.content_hash == second.content_hash
    assert (second.diff.added, second.diff.removed, second.diff.changed) == ([], [], {})
    for plot in ("fidelity", "content_kept", "direction"):
        assert _sha(first.path / "plots" / f"{plot}.png") == _sha(second.path / "plots" / f"{plot}.png")


@pytest.mark.slow
def test_shards_are_capped_and_named(workspace: Workspace) -> None:
    _configure(workspace, max_shard_mb=1)
    ids = add_pairs(workspace, [PairSpec()] * 8, image_size=200)  # ~120 KB per PNG, ~240 KB per row
    result = export_version(workspace, "1.0.0")
    shards = sorted((result.path / "data").glob("*.parquet"))
    assert len(shards) >= 2
    assert [p.name for p in shards] == [f"train-{i:05d}-of-{len(shards):05d}.parquet" for i in range(len(shards))]
    assert all(p.stat().st_size <= 2**20 for p in shards)
    assert sorted(load_dataset(str(result.path), split="train")["id"]) == sorted(ids)


@pytest.mark.slow
def test_existing_lower_or_malformed_version_is_refused(workspace: Workspace, planted: dict[str, list[str]]) -> None:
    result = export_version(workspace, "1.2.0")
    before = {p: _sha(p) for p in result.path.rglob("*") if p.is_file()}
    with pytest.raises(InputError, match="already exists"):
        export_version(workspace, "v1.2.0")
    with pytest.raises(InputError, match=r"not above the latest release 1\.2\.0"):
        export_version(workspace, "1.1.9")
    with pytest.raises(InputError, match="semantic version"):
        export_version(workspace, "1.3")
    assert {p: _sha(p) for p in result.path.rglob("*") if p.is_file()} == before
    assert all(not p.stat().st_mode & 0o222 for p in before), "released files are read-only"
    assert [r["version"] for r in workspace.store.iter("release")] == ["1.2.0"]


@pytest.mark.slow
def test_failed_export_leaves_no_version(
    workspace: Workspace, planted: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("exports.export.build_card", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        export_version(workspace, "1.0.0")
    assert list(workspace.exports_dir.iterdir()) == []
    assert workspace.store.count("release") == 0
    assert workspace.store.runs(1, stage="export")[0]["status"] == "failed"
    monkeypatch.undo()
    assert export_version(workspace, "1.0.0").rows == 6
    assert [p.name for p in workspace.exports_dir.iterdir()] == ["v1.0.0"]


def test_empty_selection_is_refused(workspace: Workspace) -> None:
    add_pairs(workspace, [PairSpec(clip="review")])
    with pytest.raises(InputError, match="no pairs to export"):
        export_version(workspace, "1.0.0")
    assert list(workspace.exports_dir.iterdir()) == []


@pytest.mark.slow
def test_card_yaml_and_statistics(workspace: Workspace, planted: dict[str, list[str]]) -> None:
    _configure(workspace, gallery_size=2, pretty_name="Wide spectrum test set")
    # Round 2 asked two pairs (one left unresolved, so not in the release); resolve kept alpha with its interval.
    figures = {"alpha": {"choice": 0.412, "flags": None}, "alpha_interval": {"choice": [0.3, 0.52], "flags": None}}
    judged = next(workspace.store.iter("verdict", round=2))
    unresolved = {"label": "unresolved", "votes": {"anti": 1, "base": 1}, "agreement": 0.5, "annotators": 2, **figures}
    workspace.store.put("verdict", [{**judged, **figures}], on_conflict="replace")
    workspace.store.put("verdict", [verdict_record(planted["undecided"][0], 2, unresolved)])
    result = export_version(workspace, "1.0.0", notes="Initial curation.")
    card = DatasetCard.load(result.path / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "cc-by-4.0"
    assert data["pretty_name"] == "Wide spectrum test set"
    assert data["task_categories"] == ["text-to-image"] and "anti-aesthetic" in data["tags"]
    assert data["size_categories"] == ["n<1K"]
    assert [c["config_name"] for c in data["configs"]] == ["default", "hard_negatives", "preference", "sft"]
    infos = {info["config_name"]: info for info in data["dataset_info"]}
    assert infos["default"]["splits"][0]["num_examples"] == result.rows
    assert infos["hard_negatives"]["splits"][0]["num_examples"] == result.hard_negatives
    assert {f["name"] for f in infos["default"]["features"]} == set(FEATURES)

    rows = load_dataset(str(result.path), split="train")
    for dimension in DIMENSIONS:
        count = sum(dimension in dims for dims in rows["dimensions"])
        assert f"| {dimension} | {count} |" in card.text
    for intensity in set(rows["intensity"]):
        assert f"| {intensity} | {rows['intensity'].count(intensity)} |" in card.text
    mean = sum(v for v in rows["fidelity"] if v is not None) / sum(v is not None for v in rows["fidelity"])
    assert "`fidelity` — " in card.text and f"mean {mean:.4f}" in card.text
    assert (
        "round 2: 2 pairs asked, 1 rows here; alpha choice 0.412 [0.300, 0.520], qualities n/a, subject_kept n/a, "
        "flags n/a; mean winning-vote share 0.667" in card.text
    )
    assert "round 1: 1 pairs asked, 0 rows here; alpha choice n/a" in card.text  # resolved before alpha was kept
    assert "mean agreement" not in card.text
    assert "openrail++" in card.text and "Content warning" in card.text and "```bibtex" in card.text
    assert "Initial curation." in card.text and "First release: 6 rows." in card.text
    assert 'negatives = load_dataset("OWNER/NAME", "hard_negatives", revision="v1.0.0")' in card.text
    assert "random-weight" not in card.text
    for plot in ("fidelity", "content_kept", "direction"):
        assert f"](plots/{plot}.png)" in card.text
        assert PILImage.open(result.path / "plots" / f"{plot}.png").format == "PNG"
    gallery = sorted((result.path / "gallery").iterdir())
    assert len(gallery) == 4
    first = rows[0]["id"]
    pair = next(p for p in iter_pairs(workspace.store) if p.id == first)
    assert (result.path / "gallery" / f"{first}_anti.png").read_bytes() == workspace.images.read(
        pair.anti_render["image_sha256"]
    )


@pytest.mark.slow
def test_card_flags_builtin_test_models(workspace: Workspace) -> None:
    builtin = {"model": "builtin:tiny-sd", "revision": None, "preset": "tiny-sd", "license": None}
    add_pairs(workspace, [PairSpec()], generator=builtin, scorer="builtin:tiny-clip")
    result = export_version(workspace, "0.1.0")
    text = (result.path / "README.md").read_text()
    assert "Test data, not research data" in text and "random-weight" in text
    assert card_module.license_notes()["builtin"] in text


@pytest.mark.slow
def test_diff_and_changelog_on_planted_changes(workspace: Workspace, planted: dict[str, list[str]]) -> None:
    export_version(workspace, "1.0.0")
    added = add_pairs(workspace, [PairSpec()] * 2, start=20)
    removed = planted["accepted"][0]
    base_won = {"label": "base", "votes": {"base": 2}, "agreement": 1.0, "annotators": 2}
    workspace.store.put("verdict", [verdict_record(removed, 1, base_won)])
    rejudged = planted["judged"][0]
    verdict = next(workspace.store.iter("verdict", subject_id=rejudged))
    workspace.store.put("verdict", [{**verdict, "votes": {"anti": 3}, "agreement": 1.0}], on_conflict="replace")
    rescored = planted["accepted"][1]
    score = next(workspace.store.iter("score", subject_id=rescored, metric="fidelity"))
    workspace.store.put("score", [{**score, "value": 0.9}], on_conflict="replace")

    result = export_version(workspace, "1.1.0", notes="Second round folded in.")
    assert result.parent == "1.0.0"
    expected = {"added": sorted(added), "removed": [removed]}
    assert {"added": result.diff.added, "removed": result.diff.removed} == expected
    assert result.diff.changed == {rejudged: ["votes", "agreement"], rescored: ["fidelity"]}
    assert diff_versions(workspace.exports_dir, "v1.0.0", "1.1.0").as_dict() == result.diff.as_dict()

    release = workspace.store.get("release", stable_id("release", "1.1.0"))
    assert release is not None and release["parent"] == "1.0.0" and release["row_count"] == result.rows
    assert release["content_hash"] == folder_content_hash(result.path)[0]
    assert "2 rows added, 1 removed, 2 changed" in release["changelog"]
    assert "agreement (1), fidelity (1), votes (1)" in release["changelog"]
    card = (result.path / "README.md").read_text()
    assert card.index("### v1.1.0") < card.index("Second round folded in.") < card.index("### v1.0.0")

    out = CliRunner().invoke(app, ["-w", str(workspace.root), "diff", "v1.0.0", "v1.1.0", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == result.diff.as_dict()
    text = CliRunner().invoke(app, ["-w", str(workspace.root), "diff", "v1.0.0", "v1.1.0"])
    assert f"- {removed}" in text.stdout and f"~ {rescored}: fidelity" in text.stdout
    missing = CliRunner().invoke(app, ["-w", str(workspace.root), "diff", "v1.0.0", "v9.0.0"])
    assert isinstance(missing.exception, InputError) and "9.0.0 has not been exported" in str(missing.exception)


@pytest.mark.slow
def test_cli_export_reports_and_records_the_run(workspace: Workspace, planted: dict[str, list[str]]) -> None:
    set_value(workspace.config_path, "generator", "models", [GENERATOR["model"]])  # the CLI exports what is configured
    out = CliRunner().invoke(app, ["-w", str(workspace.root), "-q", "export", "--version", "1.0.0", "--json"])
    assert out.exit_code == 0, out.output
    reported = json.loads(out.stdout)
    assert (reported["rows"], reported["hard_negatives"], reported["added"]) == (6, 3, 6)
    run = workspace.store.runs(1, stage="export")[0]
    assert run["status"] == "ok" and run["counts"] == {
        "rows": 6,
        "hard_negatives": 3,
        "shards": 2,
        "added": 6,
        "removed": 0,
        "changed": 0,
        "out_of_scope": 0,
        "written": 1,
    }


@pytest.mark.slow
def test_status_counts_pairs_waiting_for_export(workspace: Workspace, planted: dict[str, list[str]]) -> None:
    from curation.app.status import summary

    assert summary(workspace)["pending"]["export"] == 0  # no configured generator made these pairs
    set_value(workspace.config_path, "generator", "models", [GENERATOR["model"]])
    workspace.reload_config()
    assert summary(workspace)["pending"]["export"] == 6
    export_version(workspace, "1.0.0")
    assert summary(workspace)["pending"]["export"] == 0
    add_pairs(workspace, [PairSpec()] * 2, start=30)
    assert summary(workspace)["pending"]["export"] == 2


@pytest.mark.slow
def test_leftovers_of_a_killed_export_are_cleared(workspace: Workspace, planted: dict[str, list[str]]) -> None:
    stale = workspace.exports_dir / ".tmp-v1.0.0-99999" / "data"
    stale.mkdir(parents=True)
    (stale / "train-00000-of-00001.parquet").write_bytes(b"half written")
    (stale / "train-00000-of-00001.parquet").chmod(0o444)
    result = export_version(workspace, "1.0.0")
    assert [p.name for p in workspace.exports_dir.iterdir()] == ["v1.0.0"]
    assert result.rows == 6


@pytest.mark.slow
def test_human_mode_exports_only_human_accepted_pairs(workspace: Workspace, planted: dict[str, list[str]]) -> None:
    _configure(workspace, rows="human")
    result = export_version(workspace, "1.0.0")
    assert load_dataset(str(result.path), split="train")["id"] == planted["judged"]
    assert 'export.rows = "human"' in (result.path / "README.md").read_text()


@pytest.mark.slow
def test_a_text_stage_rejection_of_the_variant_keeps_its_pairs_out(
    workspace: Workspace, planted: dict[str, list[str]]
) -> None:
    pairs = {p.id: p for p in iter_pairs(workspace.store)}
    accepted, rejected = planted["accepted"][0], planted["clip_rejected"][0]
    workspace.store.put(
        "decision", [_decision(pairs[pid].variant["id"], "text", "reject") for pid in (accepted, rejected)]
    )
    result = export_version(workspace, "1.0.0")
    assert accepted not in load_dataset(str(result.path), split="train")["id"]
    assert rejected not in load_dataset(str(result.path), "hard_negatives", split="train")["id"]
    assert (result.rows, result.hard_negatives) == (5, 2)


def test_scope_admits_configured_models_and_keeps_test_models_apart() -> None:
    from exports.scope import NOT_CONFIGURED, TEST_BESIDE_REAL, ReleaseScope

    mixed = ReleaseScope.of(["someone/real-model", "builtin:tiny-sd"])
    assert mixed.excluded("someone/real-model") is None
    assert mixed.excluded("builtin:tiny-sd") == TEST_BESIDE_REAL
    assert mixed.excluded("someone/old-model") == NOT_CONFIGURED
    assert ReleaseScope.of(["builtin:tiny-sd"]).excluded("builtin:tiny-sd") is None  # a test-only release
    assert ReleaseScope().excluded("anything") is None


@pytest.mark.slow
def test_a_release_holds_the_configured_generators_and_the_configured_scorer_only(workspace: Workspace) -> None:
    """After the demo a curator switches generator.models to a real model: the next release holds its pairs only."""
    from exports.scope import NOT_CONFIGURED, TEST_BESIDE_REAL

    real = {"model": "someone/real-model", "revision": "c0ffee", "preset": None, "license": "apache-2.0"}
    builtin = {"model": "builtin:tiny-sd", "revision": "sha256:" + "0" * 64, "preset": "tiny-sd", "license": None}
    old = {"model": "someone/old-model", "revision": "beef", "preset": None, "license": "apache-2.0"}
    test_pairs = add_pairs(workspace, [PairSpec()] * 3, generator=builtin)
    real_pairs = add_pairs(workspace, [PairSpec()] * 2, start=10, generator=real)
    old_pairs = add_pairs(workspace, [PairSpec()] * 2, start=20, generator=old)
    set_value(workspace.config_path, "generator", "models", ["someone/real-model", "builtin:tiny-sd"])

    def cli(*args: str) -> Any:
        out = CliRunner().invoke(app, ["-w", str(workspace.root), "-q", *args])
        assert out.exit_code == 0, out.output
        return json.loads(out.stdout)

    status = cli("status", "--json")
    assert status["not_released"] == {NOT_CONFIGURED: 2, TEST_BESIDE_REAL: 3}
    released = cli("export", "--version", "1.0.0", "--json")
    rows = load_dataset("parquet", data_files=str(workspace.exports_dir / "v1.0.0" / "data" / "*.parquet"))["train"]
    assert sorted(rows["id"]) == sorted(real_pairs) and released["rows"] == 2
    assert {json.loads(p)["generator"]["model"] for p in rows["provenance"]} == {"someone/real-model"}
    assert not set(test_pairs + old_pairs) & set(rows["id"])

    # A release of test models alone stays possible (and says so in its card).
    set_value(workspace.config_path, "generator", "models", ["builtin:tiny-sd"])
    cli("export", "--version", "1.1.0", "--json")
    card = (workspace.exports_dir / "v1.1.0" / "README.md").read_text()
    again = load_dataset("parquet", data_files=str(workspace.exports_dir / "v1.1.0" / "data" / "*.parquet"))["train"]
    assert sorted(again["id"]) == sorted(test_pairs) and "Test data, not research data" in card


@pytest.mark.slow
def test_pairs_flagged_by_annotators_stay_out_of_every_release_and_the_card_counts_them(
    workspace: Workspace,
) -> None:
    clean = add_pairs(workspace, [PairSpec(verdict=(1, "anti", {"anti": 3}), flags={"unsafe": 0})] * 2)
    unsafe = add_pairs(workspace, [PairSpec(verdict=(1, "anti", {"anti": 3}), flags={"unsafe": 1})], start=5)
    broken = add_pairs(workspace, [PairSpec(verdict=(1, "anti", {"anti": 3}), flags={"broken_image": 2})], start=6)
    result = export_version(workspace, "1.0.0")
    rows = load_dataset("parquet", data_files=str(result.path / "data" / "*.parquet"))["train"]
    assert sorted(rows["id"]) == sorted(clean)
    card = (result.path / "README.md").read_text()
    assert "Left out of this release**: 1 pairs flagged broken_image by annotators; 1 pairs flagged unsafe" in card

    # The rule is configurable: two votes needed, or flags only counted.
    set_value(workspace.config_path, "export", "flag_min_votes", 2)
    workspace.reload_config()
    second = load_dataset("parquet", data_files=str(export_version(workspace, "1.1.0").path / "data" / "*.parquet"))
    assert sorted(second["train"]["id"]) == sorted(clean + unsafe)
    set_value(workspace.config_path, "export", "exclude_flags", [])
    workspace.reload_config()
    third = load_dataset("parquet", data_files=str(export_version(workspace, "1.2.0").path / "data" / "*.parquet"))
    assert sorted(third["train"]["id"]) == sorted(clean + unsafe + broken)
