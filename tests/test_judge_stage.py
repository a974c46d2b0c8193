"""`widespec judge` end to end: the real `openai` client against a vision stand-in that decides from the images,
both A/B orders, failures as failure rows, the cache, the report, `widespec run`, and releases that rest on it."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image

from curation.app.cli import app
from curation.core.config import set_value
from curation.core.errors import InputError
from curation.core.records import decision_record, verdict_record
from curation.core.workspace import Workspace
from curation.judge.report import judge_report
from curation.judge.stage import run_judge
from exports.export import export_version
from tests.dataset_fixtures import populate
from tests.records import NOW
from tests.vision_standin import VisionStandin, expected_choice

pytestmark = pytest.mark.slow  # every test starts the vision stand-in server

KEY_ENV = "WIDESPEC_TEST_JUDGE_KEY"
KEY = "sk-judge-0123456789abcdef"
VOLATILE = {"created_at"}


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def smooth(i: int) -> bytes:
    return png(np.tile(np.linspace(40, 200, 48)[None, :, None], (48, 1, 3)) + i % 7)


def rough(i: int) -> bytes:
    return png(np.random.default_rng(i).integers(0, 256, (48, 48, 3)))


def image_for(i: int, kind: str) -> bytes:
    """Pairs 0, 3, 6, ...: the anti image is rough (the judge should pick it); 1, 4, ...: the base image is rough;
    2, 5, ...: both smooth (a tie)."""
    rough_side = {0: "variant", 1: "base", 2: None}[i % 3]
    return rough(2 * i + (kind == "variant")) if kind == rough_side else smooth(i)


@pytest.fixture
def standin() -> Iterator[VisionStandin]:
    with VisionStandin() as server:
        yield server


@pytest.fixture
def judged_ws(workspace: Workspace, standin: VisionStandin, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv(KEY_ENV, KEY)
    populate(workspace, 9, image=image_for)
    configure(workspace, base_url=standin.base_url, model="standin-vl", api_key_env=KEY_ENV, max_attempts=3)
    configure(workspace, backoff_s=0.01, max_backoff_s=0.05, timeout_s=5)
    return workspace


def configure(ws: Workspace, **values: Any) -> None:
    for key, value in values.items():
        set_value(ws.config_path, "judge", key, value)
    ws.reload_config()


def judgments(ws: Workspace) -> dict[str, dict[str, Any]]:
    return {r["subject_id"]: {k: v for k, v in r.items() if k not in VOLATILE} for r in ws.store.iter("judgment")}


def add_verdicts(ws: Workspace, labels: dict[str, str]) -> None:
    """Round-2 verdicts, unanimous, with these labels (round 1 of the fixture is older)."""
    resolved = {
        p: {"label": label, "votes": {label: 3}, "agreement": 1.0, "annotators": 3} for p, label in labels.items()
    }
    ws.store.put("verdict", [verdict_record(p, 2, r, created_at=NOW) for p, r in resolved.items()])


def expected_labels(ws: Workspace) -> dict[str, str]:
    from curation.core.pairs import iter_pairs

    found = {}
    for pair in iter_pairs(ws.store):
        anti = ws.images.read(pair.anti_render["image_sha256"])
        base = ws.images.read(pair.base_render["image_sha256"])
        found[pair.id] = {"A": "anti", "B": "base", "tie": "tie"}[expected_choice(anti, base)]
    return found


def test_every_pair_is_judged_from_its_images_in_both_orders(judged_ws: Workspace, standin: VisionStandin) -> None:
    verdicts_before = list(judged_ws.store.iter("verdict"))
    result = run_judge(judged_ws)
    assert result.counts["ok"] == 9 and standin.state.calls == 18
    expected = expected_labels(judged_ws)
    assert sorted(expected.values()).count("tie") == 3  # the fixture's design, checked from the pixels
    found = judgments(judged_ws)
    assert {pair: j["label"] for pair, j in found.items()} == expected
    for record in found.values():
        assert record["judge"] == "judge:standin-vl@unpinned" and record["status"] == "ok"
        assert [o["order"] for o in record["orders"]] == ["anti_first", "base_first"]
        choices = [o["choice"] for o in record["orders"]]
        assert choices in (["A", "B"], ["B", "A"], ["tie", "tie"])  # the same image, shown once as A, once as B
        if record["label"] != "tie":
            assert record["qualities"] and record["subject_kept"] is True
    # Every request carried the anti-aesthetic prompt, its qualities and both images as PNG data URLs.
    prompts = {r.prompt for r in standin.state.parsed}
    assert all(", " in p for p in prompts) and all(
        r.media_types == ("image/png", "image/png") for r in standin.state.parsed
    )
    assert list(judged_ws.store.iter("verdict")) == verdicts_before  # human verdicts are never touched
    from curation.audit.population import placed_by, workspace_units
    from curation.core.config import set_value

    # `widespec audit --decided-by judge`: the pairs the judge places (export.rows = "judged"), once no human and no
    # CLIP decision stands in its way: those where it chose the anti image in both orders; a tie decides nothing.
    set_value(judged_ws.config_path, "export", "rows", "judged")
    judged_ws.reload_config()
    judged_ws.store.delete("verdict", judged_ws.store.ids("verdict"))
    judged_ws.store.delete("decision", judged_ws.store.ids("decision", stage="clip"))
    by_judge = {p for p, label in expected.items() if label == "anti"}
    assert len(by_judge) < 9 and {u.pair_id for u in placed_by(workspace_units(judged_ws), ["judge"])} == by_judge
    assert KEY not in json.dumps(list(judged_ws.store.iter("judgment")))


def test_rerun_calls_nothing_and_another_judge_judges_again(judged_ws: Workspace, standin: VisionStandin) -> None:
    run_judge(judged_ws)
    first = judgments(judged_ws)
    assert run_judge(judged_ws).nothing_to_do and standin.state.calls == 18
    configure(judged_ws, image_format="jpeg")  # images as JPEG: another judge configuration, judged anew
    run_judge(judged_ws)
    assert standin.state.calls == 36 and judged_ws.store.count("judgment") == 18
    configure(judged_ws, image_format="png")  # back: its judgments are current again, nothing is called
    assert run_judge(judged_ws).nothing_to_do and standin.state.calls == 36
    configure(judged_ws, revision="2026-11-01")  # a pinned revision is a new source; its answers are new calls
    run_judge(judged_ws)
    assert standin.state.calls == 54
    assert {r["judge"] for r in judged_ws.store.iter("judgment")} == {
        "judge:standin-vl@unpinned",
        "judge:standin-vl@2026-11-01",
    }
    config = next(iter(first.values()))["config"]
    kept = {r["subject_id"]: r["label"] for r in judged_ws.store.iter("judgment") if r["config"] == config}
    assert kept == {p: r["label"] for p, r in first.items()}  # the first judge's records stay beside the others


def test_a_taxonomy_that_renames_a_quality_judges_again(judged_ws: Workspace, standin: VisionStandin) -> None:
    import json
    from importlib import resources

    run_judge(judged_ws)
    document = json.loads((resources.files("curation") / "data" / "taxonomy.json").read_text(encoding="utf-8"))
    document["families"][0]["dimensions"][0]["name"] += " (renamed)"  # what the judge is shown changes
    path = judged_ws.root / "taxonomy.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    set_value(judged_ws.config_path, "taxonomy", "path", str(path))
    judged_ws.reload_config()
    assert run_judge(judged_ws).counts["ok"] == 9 and judged_ws.store.count("judgment") == 18


def test_a_position_biased_judge_is_inconsistent_and_reported_so(judged_ws: Workspace, standin: VisionStandin) -> None:
    standin.state.default = "always_a"
    run_judge(judged_ws)
    assert {j["label"] for j in judgments(judged_ws).values()} == {"inconsistent"}
    report = judge_report(judged_ws)
    assert report["flips"]["flipped"] == report["flips"]["checked"] == 9
    assert report["success_rates"]["builtin:tiny-sd"]["inconsistent"] == 9
    assert report["success_rates"]["builtin:tiny-sd"]["rate"] is None  # no verdict: no rate, never 0


def test_failures_refusals_and_retries(judged_ws: Workspace, standin: VisionStandin) -> None:
    prompts = sorted({p["text"] for p in judged_ws.store.iter("variant")})
    standin.state.plan(prompts[0], "malformed", "malformed", "malformed", "malformed", "malformed", "malformed")
    standin.state.plan(prompts[1], "refusal")
    standin.state.plan(prompts[2], "429", "500", "schema_invalid")  # each retried, then answered
    standin.state.plan(prompts[3], "fenced", "unknown_quality")
    result = run_judge(judged_ws)
    statuses = {status: 0 for status in ("ok", "failed", "refused")}
    for record in judgments(judged_ws).values():
        statuses[record["status"]] += 1
    assert statuses == {"ok": 7, "failed": 1, "refused": 1} and result.counts["failed"] == 1
    failed = next(j for j in judgments(judged_ws).values() if j["status"] == "failed")
    assert (
        failed["label"] is None
        and "gave up after 3 attempt(s)" in failed["error"]
        and "not valid JSON" in failed["error"]
    )
    refused = next(j for j in judgments(judged_ws).values() if j["status"] == "refused")
    assert refused["label"] is None and refused["error"].startswith("model refused")
    assert standin.state.behaviours["429"] == 1 and standin.state.behaviours["500"] == 1
    unknown = [j for j in judgments(judged_ws).values() if j["status"] == "ok" and j["label"] in ("anti", "base")]
    requested = set().union(*(v["dimensions"] for v in judged_ws.store.iter("variant")))
    assert unknown and all(set(j["qualities"]) <= requested for j in unknown)  # no quality that was not requested
    calls = standin.state.calls
    assert run_judge(judged_ws).nothing_to_do and standin.state.calls == calls  # failures wait for --retry-failed
    again = run_judge(judged_ws, retry_failed=True)
    assert again.counts["ok"] == 1 and standin.state.calls == calls + 2  # both orders of the failed pair, once each
    assert again.counts["refused"] == 1  # the refusal is read back from the cache ...
    asked = run_judge(judged_ws, retry_failed=True, refresh=True)  # ... and asked again with --refresh
    assert asked.counts["ok"] == 1 and standin.state.calls == calls + 4


def test_a_missing_or_damaged_image_fails_its_pair_only(judged_ws: Workspace, standin: VisionStandin) -> None:
    from curation.core.pairs import iter_pairs
    from tests.test_image_integrity import flip_a_pixel

    lost, damaged = list(iter_pairs(judged_ws.store))[:2]
    judged_ws.images.path_for(lost.anti_render["image_sha256"]).unlink()
    sha = damaged.base_render["image_sha256"]
    flip_a_pixel(judged_ws.images.path_for(sha))  # still a PNG, but not the one judged under that hash
    result = run_judge(judged_ws)
    assert (result.counts["ok"], result.counts["failed"]) == (7, 2) and standin.state.calls == 14
    record = judgments(judged_ws)[lost.id]
    assert record["status"] == "failed" and "could not be read: FileNotFoundError" in record["error"]
    record = judgments(judged_ws)[damaged.id]
    assert record["status"] == "failed" and f"image {sha} is damaged" in record["error"]


def test_a_missing_key_stops_the_pass(judged_ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    from curation.judge.stage import estimate_judge

    configure(judged_ws, model="")
    with pytest.raises(InputError, match=r"judge.model is empty"):
        estimate_judge(judged_ws)
    configure(judged_ws, model="standin-vl")
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(InputError, match=f"judge.api_key_env: environment variable {KEY_ENV} is not set"):
        run_judge(judged_ws)
    (run,) = judged_ws.store.runs(stage="judge")
    assert run["status"] == "failed"


def test_a_partial_pass_resumes_to_the_same_records(
    judged_ws: Workspace, standin: VisionStandin, tmp_path: Any
) -> None:
    run_judge(judged_ws, limit=4)
    assert judged_ws.store.count("judgment") == 4
    run_judge(judged_ws)
    resumed = judgments(judged_ws)
    with judged_ws.store.transaction():
        judged_ws.store.delete("judgment", [r["id"] for r in judged_ws.store.iter("judgment")])
    run_judge(judged_ws)  # all from the cache: the same records as one uninterrupted pass
    assert judgments(judged_ws) == resumed and standin.state.calls == 18


def test_judge_report_against_humans(judged_ws: Workspace) -> None:
    run_judge(judged_ws)
    expected = expected_labels(judged_ws)
    pairs = sorted(expected)
    # Humans agree with the pixels on all but one pair, where they call a tie what the judge calls anti.
    disagree = next(p for p in pairs if expected[p] == "anti")
    labels = {p: ("tie" if p == disagree else expected[p]) for p in pairs}
    add_verdicts(judged_ws, labels)
    report = judge_report(judged_ws)
    figures = report["agreement"]
    assert figures["n"] == 9 and figures["accuracy"]["value"] == pytest.approx(8 / 9)
    assert figures["confusion"]["tie"]["anti"] == 1 and figures["confusion"]["anti"]["anti"] == 2
    from sklearn.metrics import cohen_kappa_score

    judge = [expected[p] for p in pairs]
    human = [labels[p] for p in pairs]
    assert figures["quadratic_kappa"]["value"] == pytest.approx(
        cohen_kappa_score(human, judge, labels=["base", "tie", "anti"], weights="quadratic")
    )
    rate = report["success_rates"]["builtin:tiny-sd"]
    assert (rate["anti"], rate["tie"], rate["base"], rate["judged"]) == (3, 3, 3, 9)
    from curation.core.judges import JudgeIdentity, standing

    gate = standing(judged_ws.store, JudgeIdentity.of(judged_ws))  # what export's gate measures
    assert (gate.overlap, gate.quadratic_kappa) == (figures["n"], pytest.approx(figures["quadratic_kappa"]["value"]))
    from curation.app.report import write_report

    html = write_report(judged_ws).read_text()
    section = html[html.index("<h2 id=judge>") : html.index("<h2>Reward-model audits")]
    assert "judge:standin-vl@unpinned" in section and "9 pairs: accuracy 0.889" in section
    assert "<td>builtin:tiny-sd</td><td class=n>0.333 [" in section


def test_a_release_rests_on_the_judge_only_when_it_agrees_with_humans(judged_ws: Workspace) -> None:
    run_judge(judged_ws)
    set_value(judged_ws.config_path, "export", "rows", "judged")
    configure(judged_ws, min_overlap=50)
    judged_ws.reload_config()
    with pytest.raises(
        InputError, match=r'export.rows = "judged": the judge may not decide rows: .* on \d+ overlapping'
    ):
        export_version(judged_ws, "1.0.0")
    assert not (judged_ws.exports_dir / "v1.0.0").exists()
    expected = expected_labels(judged_ws)
    alone = [p for p, label in sorted(expected.items()) if label == "anti"][:2]  # no human will see these two
    judged_ws.store.delete("verdict", [v["id"] for v in judged_ws.store.iter("verdict", subject_id=alone)])
    judged_ws.store.put(
        "decision", [decision_record(p, "clip", "review", [], {}) for p in alone], on_conflict="replace"
    )
    add_verdicts(judged_ws, {p: label for p, label in expected.items() if p not in alone})  # humans agree: kappa 1
    configure(judged_ws, min_overlap=7, min_kappa=0.6)
    export_version(judged_ws, "1.0.0")
    from datasets import load_dataset

    rows = load_dataset(str(judged_ws.exports_dir / "v1.0.0"), split="train")
    by_judge = [r for r in rows if r["decided_by"] == "judge"]
    assert sorted(r["id"] for r in by_judge) == alone
    assert all(r["judge_verdict"] == "anti" and r["verdict"] is None for r in by_judge)
    assert all(r["decided_by"] == "human" for r in rows if r["verdict"] is not None)
    card = (judged_ws.exports_dir / "v1.0.0" / "README.md").read_text()
    assert f"**Rows resting on the judge alone**: {len(by_judge)}" in card
    assert "judge:standin-vl@unpinned" in card and "quadratic-weighted kappa" in card


def test_widespec_run_judges_after_filter_when_configured(judged_ws: Workspace, standin: VisionStandin) -> None:
    from typer.testing import CliRunner

    set_value(judged_ws.config_path, "run", "annotate", False)
    set_value(judged_ws.config_path, "run", "export", False)
    runner = CliRunner()
    result = runner.invoke(app, ["-w", str(judged_ws.root), "judge", "--estimate", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["calls"] == 18 and standin.state.calls == 0
    result = runner.invoke(app, ["-w", str(judged_ws.root), "run"])
    assert result.exit_code == 0, result.output
    from curation.core.pairs import iter_pairs

    pairs = {pair.id for pair in iter_pairs(judged_ws.store)}  # the run rewrote and rendered more pairs
    assert "judge" in result.output and len(pairs) > 9
    assert {r["subject_id"] for r in judged_ws.store.iter("judgment")} == pairs
    result = runner.invoke(app, ["-w", str(judged_ws.root), "judge", "report"])
    assert result.exit_code == 0 and "success rate" in result.output and "builtin:tiny-sd" in result.output
