"""`widespec score` and `widespec filter` end to end on a tiny open_clip model loaded through `local-dir:`."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from benchmarks.synthetic_pairs import add_pair, add_sample_pairs, png
from curation.app.cli import app
from curation.core import config as config_module
from curation.core.clip import TINY_CLIP_CONFIG, save_local_dir
from curation.core.errors import WidespecError
from curation.core.executor import execute
from curation.core.records import verdict_record
from curation.core.workspace import Workspace
from curation.filter.stage import run_filter
from curation.score.stage import run_score, scorer_source
from curation.score.text_checks import TEXT_CHECKS


@pytest.fixture
def tiny_clip_dir(tmp_path: Path) -> Path:
    """A tiny random-weight open_clip model saved the way a downloaded one is laid out."""
    from open_clip.model import CLIP

    torch.manual_seed(42)
    return save_local_dir(CLIP(**TINY_CLIP_CONFIG), TINY_CLIP_CONFIG, tmp_path / "tiny-clip-42", 64)


def use_model(ws: Workspace, model: str, **scorer: object) -> None:
    config_module.set_value(ws.config_path, "scorer", "model", model)
    for key, value in scorer.items():
        config_module.set_value(ws.config_path, "scorer", key, value)
    ws.reload_config()


def scores(ws: Workspace) -> dict[tuple[str, str], dict[str, object]]:
    return {(r["subject_id"], r["metric"]): r for r in ws.store.iter("score")}


def encode_alone(model_dir: Path, image: bytes, text: str) -> float:
    """cos(image, text) computed directly with open_clip, one image at a time."""
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{model_dir}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{model_dir}")
    model.eval()
    with torch.no_grad():
        pixels = preprocess(Image.open(io.BytesIO(image)).convert("RGB")).unsqueeze(0)
        a = model.encode_image(pixels, normalize=True)[0]
        b = model.encode_text(tokenizer([text]), normalize=True)[0]
    return float(a @ b)


@pytest.mark.slow
def test_score_then_filter_on_a_local_dir_model(workspace: Workspace, tiny_clip_dir: Path) -> None:
    use_model(workspace, f"local-dir:{tiny_clip_dir}", batch_size=4)
    made = add_sample_pairs(workspace, n=7)  # two base prompts have two variants sharing one base image
    result = run_score(workspace)
    assert result.scorer.startswith("local-dir:tiny-clip-42@")
    assert (result.pairs_scored, result.pairs_failed) == (7, 0)
    distinct_images = {sha for m in made for sha in (m.base_sha, m.anti_sha)}
    assert result.images_encoded == len(distinct_images) == 12
    # every distinct text once: 5 base texts, 7 variant texts, the probe poles of the 5 dimensions used
    assert result.texts_encoded == 5 + 7 + 2 * 5

    table = scores(workspace)
    first = made[1]  # dimensions noisy + blurry
    for metric in ("fidelity", "content_kept", "direction", "probe:noisy", "probe:blurry"):
        row = table[(first.pair_id, metric)]
        assert row["status"] == "ok" and row["scorer"] == result.scorer
        assert isinstance(row["value"], float)
    # The stored fidelity is what open_clip gives for this image and text (float16 storage tolerance).
    variant_text = workspace.store.get("variant", first.variant_id)["text"]  # type: ignore[index]
    direct = encode_alone(tiny_clip_dir, workspace.images.read(first.anti_sha), variant_text)
    assert table[(first.pair_id, "fidelity")]["value"] == pytest.approx(direct, abs=2e-3)
    # The text checks (a stage of their own) score every variant; the second of a base prompt has a sibling cosine.
    execute(workspace, TEXT_CHECKS)
    table = scores(workspace)
    assert all((m.variant_id, "text_distance") in table for m in made)
    assert (made[5].variant_id, "text_sibling_cosine") in table
    assert (made[0].variant_id, "text_sibling_cosine") not in table

    # Filter with a fidelity threshold at the median: decisions follow the stored values exactly.
    fidelity = sorted(float(table[(m.pair_id, "fidelity")]["value"]) for m in made)  # type: ignore[arg-type]
    threshold = round(fidelity[3], 4)
    for key, value in {"min_fidelity": threshold, "min_direction": -2.0, "review_margin": 0.0}.items():
        config_module.set_value(workspace.config_path, "filter", key, value)
    workspace.reload_config()
    dry = run_filter(workspace, dry_run=True)
    assert workspace.store.count("decision", stage="clip") == 0  # a dry run writes nothing
    outcome = run_filter(workspace)
    assert dict(outcome.clip) == dict(dry.clip)
    for m in made:
        decision = workspace.store.get("decision", _decision_id(m.pair_id))
        assert decision is not None
        value = float(table[(m.pair_id, "fidelity")]["value"])  # type: ignore[arg-type]
        assert decision["outcome"] == ("accept" if value >= threshold else "reject")
        assert decision["thresholds"]["fidelity"] == {"min": threshold, "from": "global"}
    assert sum(outcome.per_dimension["blurry"].values()) == 5  # pairs asking for blurry
    assert workspace.store.count("decision", stage="text") == 7


def _decision_id(subject_id: str, stage: str = "clip") -> str:
    from curation.core.ids import stable_id

    return stable_id("decision", subject_id, stage)


@pytest.mark.slow
def test_rerun_scores_nothing_new_and_reuses_stored_embeddings(workspace: Workspace) -> None:
    made = add_sample_pairs(workspace, n=4)
    first = run_score(workspace)  # builtin:tiny-clip, built into .widespec/models on first use
    assert first.scorer.startswith("builtin:tiny-clip@") and first.pairs_scored == 4
    assert (workspace.runtime_dir / "models" / "tiny-clip" / "open_clip_config.json").exists()
    before = scores(workspace)
    again = run_score(workspace)
    assert (again.pairs_scored, again.images_encoded, again.texts_encoded, again.variants_scored) == (0, 0, 0, 0)
    assert scores(workspace) == before
    # Lose one pair's scores (as if killed before its batch committed): only that pair is written again,
    # from the stored embeddings, with the same values.
    lost = [r["id"] for r in before.values() if r["subject_id"] == made[2].pair_id]
    workspace.store.delete("score", lost)
    resumed = run_score(workspace)
    assert (resumed.pairs_scored, resumed.images_encoded, resumed.texts_encoded) == (1, 0, 0)
    after = scores(workspace)
    assert {k: v["value"] for k, v in after.items()} == {k: v["value"] for k, v in before.items()}
    # The second run had nothing to do: under the stage contract that is a normal result with no ledger run.
    runs = workspace.store.runs(stage="score")
    assert [r["status"] for r in runs] == ["ok", "ok"]
    assert all(r["counts"]["pairs_scored"] for r in runs)


@pytest.mark.slow
def test_score_stage_plans_picklable_work_and_its_compute_never_touches_the_store(workspace: Workspace) -> None:
    """The contract: plan reads the store, the compute (loaded once) only yields outputs, the executor writes."""
    import pickle

    from curation.core.scorer import configured_scorer, scorer_state
    from curation.score.pending import pending_score
    from curation.score.stage import SCORE, PairImages, ScoreOptions

    made = add_sample_pairs(workspace, n=7)
    section = workspace.settings.scorer
    assert SCORE.pending(workspace) == pending_score(workspace) == 7
    assert configured_scorer(workspace.store, section) is None
    work = SCORE.plan(workspace, ScoreOptions())
    scorer = scorer_source(workspace).scorer_id
    assert work.details == {"scorer": scorer} and work.before is not None and work.compute is not None
    assert work.before.state == scorer_state(section, scorer)  # committed by the executor, not by the stage
    assert [u.pair_id for u in work.units if isinstance(u, PairImages)] == sorted(m.pair_id for m in made)
    assert work.total == 7
    compute = work.compute.__self__  # type: ignore[attr-defined]
    assert pickle.loads(pickle.dumps(compute)) == compute
    assert pickle.loads(pickle.dumps(list(work.units))) == list(work.units)

    with work.compute() as opened:
        outputs = list(opened.run(work.units))
    assert workspace.store.count("score") == 0 and configured_scorer(workspace.store, section) is None
    computed = {(r["subject_id"], r["metric"]): r["value"] for o in outputs for r in o.records.get("score", [])}
    totals = sum((o.counts for o in outputs), Counter())
    assert (totals["variants_scored"], totals["pairs_scored"], totals["images_encoded"]) == (0, 7, 12)
    assert sum(o.advance for o in outputs) == 7

    # Embeddings are now on disk, so the real run encodes nothing and stores exactly what the compute made.
    result = run_score(workspace)
    assert (result.pairs_scored, result.variants_scored, result.images_encoded, result.texts_encoded) == (7, 0, 0, 0)
    assert {k: v["value"] for k, v in scores(workspace).items()} == computed
    assert configured_scorer(workspace.store, section) == scorer
    assert SCORE.pending(workspace) == 0
    nothing = SCORE.plan(workspace, ScoreOptions())
    assert not nothing.units and nothing.before is None and nothing.details == {"scorer": scorer}
    [run] = workspace.store.runs(stage="score")
    assert run["status"] == "ok" and run["counts"]["pairs_scored"] == 7 and run["counts"]["images_failed"] == 0


@pytest.mark.slow
def test_a_corrupt_image_is_a_failure_row_not_a_crash(workspace: Workspace) -> None:
    use_model(workspace, "builtin:tiny-clip", num_workers=1)  # decoded in a DataLoader worker process
    good = add_pair(workspace, "a teapot", "a blurry teapot", ["blurry"], seed=3)
    broken = add_pair(workspace, "a kettle", "a noisy kettle", ["noisy"], seed=4, anti_image=b"\x89PNG\r\n\x1a\nbroken")
    result = run_score(workspace)
    assert (result.pairs_scored, result.pairs_failed, result.images_failed) == (1, 1, 1)
    table = scores(workspace)
    assert table[(good.pair_id, "fidelity")]["status"] == "ok"
    failed = table[(broken.pair_id, "fidelity")]
    assert failed["status"] == "failed" and failed["value"] is None
    assert "cannot be decoded" in str(failed["error"]) and broken.anti_sha[:12] in str(failed["error"])
    assert table[(broken.pair_id, "probe:noisy")]["status"] == "failed"
    # Failed pairs are not retried unless asked; then they fail the same way.
    assert run_score(workspace).pairs_failed == 0
    assert run_score(workspace, retry_failed=True).pairs_failed == 1
    run_filter(workspace)
    decision = workspace.store.get("decision", _decision_id(broken.pair_id))
    assert decision is not None and decision["outcome"] == "reject"
    assert decision["reasons"][0].startswith("direction not scored: image")  # the gate on by default


@pytest.mark.slow
def test_the_text_checks_flag_unchanged_and_duplicate_variants(workspace: Workspace) -> None:
    base = "a quiet harbour"
    add_pair(workspace, base, "a quiet harbour, grainy and noisy", ["noisy"], index=0)
    dup = add_pair(workspace, base, "a quiet harbour, grainy and noisy", ["noisy"], index=1)
    same = add_pair(workspace, "a bowl of fruit", "a bowl of fruit", ["blurry"], index=0, seed=2)
    result = execute(workspace, TEXT_CHECKS)
    assert (result.counts["variants_scored"], result.counts["text:accept"], result.counts["text:reject"]) == (3, 1, 2)
    assert workspace.store.count("score", metric="fidelity") == 0  # no image is read
    flagged = {d["subject_id"]: d for d in workspace.store.iter("decision", stage="text", outcome="reject")}
    assert set(flagged) == {dup.variant_id, same.variant_id}
    assert "near duplicate" in flagged[dup.variant_id]["reasons"][0]
    assert "barely moved" in flagged[same.variant_id]["reasons"][0]
    # Once images are scored, the pair of a text-rejected variant is rejected with those reasons.
    run_score(workspace)
    run_filter(workspace)
    decision = workspace.store.get("decision", _decision_id(dup.pair_id))
    assert decision is not None and decision["outcome"] == "reject"
    assert decision["reasons"][0].startswith("text: near duplicate")


def test_named_pretrained_tag_without_the_hub_fails_fast(workspace: Workspace) -> None:
    add_sample_pairs(workspace, n=1)
    use_model(workspace, "ViT-L-14", pretrained="openai")
    started = time.perf_counter()
    with pytest.raises(WidespecError, match=r"Hub is unreachable.*not in the local cache"):
        run_score(workspace)
    assert time.perf_counter() - started < 5
    assert workspace.store.count("score") == 0
    use_model(workspace, "ViT-L-14", pretrained="")
    with pytest.raises(WidespecError, match=r"scorer\.pretrained is empty"):
        run_score(workspace)


@pytest.mark.slow
def test_unreachable_hub_endpoint_fails_in_seconds_from_the_command_line(workspace: Workspace) -> None:
    """Without HF_HUB_OFFLINE, a Hub that does not answer is detected before any download retries."""
    add_sample_pairs(workspace, n=1)
    use_model(workspace, "hf-hub:laion/CLIP-ViT-L-14-laion2B-s32B-b82K")
    with socket.socket() as probe:  # a local port with nothing listening on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": f"http://127.0.0.1:{port}"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", "from curation.app.cli import main; main()", "-w", str(workspace.root), "score"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert "Hub is unreachable" in done.stderr and "local-dir:PATH" in done.stderr
    assert time.perf_counter() - started < 30  # mostly interpreter start-up and imports


@pytest.mark.slow
def test_cli_dry_run_and_calibrate(workspace: Workspace) -> None:
    """filter --calibrate fits a threshold planted in synthetic verdicts and writes it with a comment."""

    made = add_sample_pairs(workspace, n=10)
    runner = CliRunner()
    out = runner.invoke(app, ["-q", "-w", str(workspace.root), "score"])
    assert out.exit_code == 0, out.output
    table = scores(workspace)
    direction = {m.pair_id: float(table[(m.pair_id, "direction")]["value"]) for m in made}  # type: ignore[arg-type]
    ordered = sorted(direction.values())
    planted = (ordered[4] + ordered[5]) / 2
    verdicts = [
        verdict_record(
            pid,
            1,
            {
                "label": "anti" if value >= planted else "base",
                "votes": {"anti": 2, "base": 1} if value >= planted else {"anti": 1, "base": 2},
                "agreement": 2 / 3,
                "annotators": 3,
            },
        )
        for pid, value in direction.items()
    ]
    workspace.store.put("verdict", verdicts)
    config_module.set_value(workspace.config_path, "filter", "calibration_min_verdicts", 8)
    config_module.set_value(workspace.config_path, "filter", "review_margin", 0.0)
    dry = runner.invoke(app, ["-w", str(workspace.root), "filter", "--calibrate", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "thresholds fitted jointly to 10 human verdicts" in dry.output and "dry run" in dry.output
    assert "fitted (held-out, 5-fold)" in dry.output and "current (in-sample)" in dry.output
    assert workspace.store.count("decision") == 0
    assert "min_direction = 0.0" in workspace.config_path.read_text()

    done = runner.invoke(app, ["-w", str(workspace.root), "filter", "--calibrate"])
    assert done.exit_code == 0, done.output
    text = workspace.config_path.read_text()
    written = tomllib.loads(text)["filter"]["min_direction"]
    assert written == pytest.approx(planted, abs=1e-4)
    line = next(line for line in text.splitlines() if line.startswith("min_direction"))
    assert "calibrated" in line and "from round 1" in line and "10 verdicts" in line
    assert "all gates fitted jointly" in line and "held-out (5-fold)" in line
    assert "filter.min_direction" in done.output
    # With the calibrated threshold the direction gate agrees with every human verdict.
    for m in made:
        decision = workspace.store.get("decision", _decision_id(m.pair_id))
        assert decision is not None and decision["thresholds"]["direction"]["min"] == written
        direction_reasons = [r for r in decision["reasons"] if r.startswith("direction")]
        if direction[m.pair_id] >= planted:
            assert not direction_reasons
        else:
            assert decision["outcome"] == "reject" and direction_reasons[0].startswith("direction ")
    reports = list(workspace.reports_dir.glob("calibration-*.json"))
    assert len(reports) == 1


@pytest.mark.slow
def test_score_embeddings_are_float16_files(workspace: Workspace) -> None:
    add_sample_pairs(workspace, n=2)
    result = run_score(workspace)
    from curation.core.ids import stable_id

    folder = workspace.runtime_dir / "embeddings" / stable_id("scorer", result.scorer)
    from safetensors.numpy import load_file

    files = list((folder / "images").glob("*.safetensors"))
    assert files
    assert all(load_file(str(f))["embeddings"].dtype == np.float16 for f in files)
    assert scorer_source(workspace).scorer_id == result.scorer
    png(1)  # fixtures stay importable


def test_model_settings_errors_name_the_setting(workspace: Workspace, tmp_path: Path) -> None:
    from curation.core.errors import InputError

    empty = tmp_path / "empty-model"
    empty.mkdir()
    for model, message in [
        ("builtin:huge-clip", "unknown built-in model"),
        (f"local-dir:{tmp_path / 'nowhere'}", "no such folder"),
        (f"local-dir:{empty}", "has no open_clip_config.json"),
        ("ViT-Q-99", "not an open_clip model name"),
    ]:
        use_model(workspace, model)
        with pytest.raises(InputError, match=message):
            scorer_source(workspace)
    (empty / "open_clip_config.json").write_text("{}")
    use_model(workspace, f"local-dir:{empty}")
    with pytest.raises(InputError, match="has no weights"):
        scorer_source(workspace)
    use_model(workspace, "ViT-B-32", pretrained="no-such-tag")
    with pytest.raises(InputError, match="no such tag for ViT-B-32"):
        scorer_source(workspace)


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_scores(tmp_path: Path) -> None:
    """SIGKILL in the middle of `widespec score`, rerun: the same rows as one uninterrupted run."""
    import signal

    from curation.core.workspace import init_workspace

    def build(name: str) -> Workspace:
        ws = init_workspace(tmp_path / name)
        config_module.set_value(ws.config_path, "scorer", "batch_size", 1)
        ws.reload_config()
        add_sample_pairs(ws, n=30)
        return ws

    clean, killed = build("clean"), build("killed")
    run_score(clean)
    command = [sys.executable, "-c", "from curation.app.cli import main; main()", "-q", "-w", str(killed.root), "score"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while killed.store.count("score", metric="fidelity") < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = killed.store.count("score", metric="fidelity")
    assert 0 < partial < 30, "the run should have been stopped part way"
    resumed = run_score(killed)
    assert resumed.pairs_scored == 30 - partial
    values = {(r["subject_id"], r["metric"], r["status"]): r["value"] for r in killed.store.iter("score")}
    assert values == {(r["subject_id"], r["metric"], r["status"]): r["value"] for r in clean.store.iter("score")}
    clean.close()
    killed.close()


def _verdicts(labels: dict[str, str], round_number: int = 1) -> list[dict[str, object]]:
    resolved = {"votes": {}, "agreement": 1.0, "annotators": 2}
    return [
        verdict_record(pid, round_number, {**resolved, "label": label, "votes": {label: 2}})
        for pid, label in labels.items()
    ]


@pytest.mark.slow
def test_calibration_writes_a_per_dimension_threshold(workspace: Workspace) -> None:
    from curation.core.errors import InputError
    from curation.filter.calibration import fit_thresholds, write_thresholds

    made = add_sample_pairs(workspace, n=10)
    with pytest.raises(InputError, match="no resolved human verdicts"):
        fit_thresholds(workspace)
    workspace.store.put("verdict", _verdicts({m.pair_id: "anti" for m in made}))
    with pytest.raises(InputError, match="none has scores"):
        fit_thresholds(workspace)
    run_score(workspace)
    table = scores(workspace)
    direction = {m.pair_id: float(table[(m.pair_id, "direction")]["value"]) for m in made}  # type: ignore[arg-type]
    blurry = sorted(
        direction[m.pair_id] for m in made if "blurry" in workspace.store.get("variant", m.variant_id)["dimensions"]
    )  # type: ignore[index]
    cut = (blurry[2] + blurry[3]) / 2  # half of the blurry pairs on each side
    labels = {pid: ("anti" if value >= cut else "tie") for pid, value in direction.items()}
    # A later round overrides an earlier verdict on the same pair; unresolved verdicts are left out.
    workspace.store.put("verdict", _verdicts(labels, round_number=2))
    workspace.store.put("verdict", _verdicts({made[0].pair_id: "unresolved"}, round_number=3))
    config_module.set_value(workspace.config_path, "filter", "calibration_min_verdicts", len(blurry))
    workspace.reload_config()
    calibration = fit_thresholds(workspace)
    assert calibration.rounds == [2] and calibration.used == 10
    written = write_thresholds(workspace, calibration)
    assert "filter.dimensions.blurry.min_direction" in written
    below = max(v for v in blurry if v < cut)
    above = min(v for v in blurry if v >= cut)
    value = workspace.config["filter"]["dimensions"]["blurry"]["min_direction"]
    assert value == pytest.approx((below + above) / 2, abs=1e-4)
    assert "calibrated" in workspace.config_path.read_text().split("[filter.dimensions.blurry]")[1].splitlines()[1]
    # Dimensions with fewer verdicts than the minimum keep the global value.
    assert "noisy" not in workspace.config["filter"]["dimensions"]


@pytest.mark.slow
def test_status_counts_pending_score_and_filter_work(workspace: Workspace) -> None:
    from curation.app.status import summary

    add_sample_pairs(workspace, n=3)
    assert {k: summary(workspace)["pending"][k] for k in ("score", "filter")} == {"score": 3, "filter": 0}
    run_score(workspace)
    assert {k: summary(workspace)["pending"][k] for k in ("score", "filter")} == {"score": 0, "filter": 3}
    run_filter(workspace)
    assert {k: summary(workspace)["pending"][k] for k in ("score", "filter")} == {"score": 0, "filter": 0}


@pytest.mark.slow
def test_a_non_finite_embedding_is_a_failed_score_and_never_a_decision(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fp16 overflow on a GPU gives NaN embeddings; the CPU cannot overflow, so the real encoder's output for one
    image is overwritten with NaN, as a GPU would return it."""
    from curation.core.clip import ClipEncoder

    good = add_pair(workspace, "a teapot", "a blurry teapot", ["blurry"], seed=3)
    anti = png(4001)
    overflowed = add_pair(workspace, "a kettle", "a noisy kettle", ["noisy"], seed=4, anti_image=anti)
    real_encode = ClipEncoder.encode_images
    hit: list[int] = []

    def overflowing(self: ClipEncoder, pixels: torch.Tensor) -> object:
        vectors = real_encode(self, pixels)
        target = self.preprocess(Image.open(io.BytesIO(anti)).convert("RGB"))
        for i, row in enumerate(pixels):
            if torch.equal(row, target):
                vectors[i] = float("nan")
                hit.append(i)
        return vectors

    monkeypatch.setattr(ClipEncoder, "encode_images", overflowing)
    result = run_score(workspace)
    assert len(hit) == 1 and (result.pairs_scored, result.pairs_failed, result.images_failed) == (1, 1, 1)
    table = scores(workspace)
    assert table[(good.pair_id, "fidelity")]["status"] == "ok"
    failed = table[(overflowed.pair_id, "fidelity")]
    assert failed["status"] == "failed" and failed["value"] is None
    assert "not finite" in str(failed["error"]) and overflowed.anti_sha[:12] in str(failed["error"])
    run_filter(workspace)
    decision = workspace.store.get("decision", _decision_id(overflowed.pair_id))
    assert decision is not None and decision["outcome"] == "reject"
