"""The generate stage end to end on tiny Stable Diffusion and Flux pipelines built and loaded from folders."""

from __future__ import annotations

import io
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from curation.app.status import summary
from curation.core.contracts import validate_record
from curation.core.errors import InputError, WidespecError
from curation.core.ids import stable_id
from curation.core.pairs import iter_pairs
from curation.core.records import PIXEL_FIELDS
from curation.generate.models import LocatedModel, load_pipeline
from curation.generate.stage import generate, pending_generate
from tests.generate_fixtures import (
    BASE_PROMPTS,
    MakeWorkspace,
    configure,
    render_images,
    run_cli,
    start_cli,
)

pytestmark = pytest.mark.slow  # every test builds and runs the tiny diffusion models

PER_MODEL = len(BASE_PROMPTS) * 3  # one base render and two variant renders per base prompt


def test_pairs_share_seed_settings_and_one_base_render(make_workspace: MakeWorkspace) -> None:
    ws = make_workspace(models=["builtin:tiny-sd", "builtin:tiny-flux"])
    assert summary(ws)["pending"]["generate"] == 2 * PER_MODEL
    result = generate(ws)
    assert (result.ok, result.failed) == (2 * PER_MODEL, 0)
    renders = list(ws.store.iter("render"))
    assert len(renders) == 2 * PER_MODEL
    for render in renders:
        validate_record("render", render)
        assert render["generator"]["random_weights"] is True
        assert render["generator"]["revision"].startswith("sha256:")
        png = ws.images.read(render["image_sha256"])
        assert Image.open(io.BytesIO(png)).size == (64, 64)
    pairs = list(iter_pairs(ws.store))
    assert len(pairs) == 2 * len(BASE_PROMPTS) * 2
    for pair in pairs:
        assert pair.base_render["prompt_id"] == pair.base["id"] == pair.variant["base_id"]
        for key in ("pairing_key", "seed", "steps", "guidance", "width", "height"):
            assert pair.base_render[key] == pair.anti_render[key]
        for field in PIXEL_FIELDS:
            assert pair.base_render["generator"][field] == pair.anti_render["generator"][field]
        assert pair.base_render["image_sha256"] != pair.anti_render["image_sha256"]
    # Both variants of a base prompt pair with the same base render.
    base_renders = {p.base_render["id"] for p in pairs}
    assert len(base_renders) == 2 * len(BASE_PROMPTS)
    runs = ws.store.runs(stage="generate")  # one ledger run per model
    assert [(r["status"], r["counts"]["ok"], r["counts"]["failed"]) for r in runs] == [("ok", PER_MODEL, 0)] * 2
    assert pending_generate(ws) == 0
    again = generate(ws)
    assert (again.ok, again.failed, again.pending_before) == (0, 0, 0)

    # A fresh process on a fresh workspace makes byte-identical images.
    other = make_workspace("other", models=["builtin:tiny-sd", "builtin:tiny-flux"])
    other.close()
    done = run_cli(other.root, "generate", "--json")
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(other.root / "widespec.db") as conn:
        theirs = dict(conn.execute("SELECT id, json_extract(data, '$.image_sha256') FROM render"))
    assert theirs == render_images(ws)


def test_batch_size_never_changes_an_image(make_workspace: MakeWorkspace) -> None:
    one = make_workspace("one", models=["builtin:tiny-flux", "builtin:tiny-sd"], batch_size=1)
    four = make_workspace("four", models=["builtin:tiny-flux", "builtin:tiny-sd"], batch_size=4)
    generate(one)
    generate(four)
    assert render_images(one) == render_images(four)
    assert None not in render_images(one).values()
    assert {r["runtime"]["batch_size"] for r in four.store.iter("render")} == {4}


def test_injected_failure_fails_only_its_render(make_workspace: MakeWorkspace) -> None:
    ws = make_workspace(models=["builtin:tiny-sd"], batch_size=4, batch_mode="batched")
    poisoned = ws.store.iter("variant").__next__()

    def loader(located: LocatedModel, **options: Any) -> Any:
        pipeline = load_pipeline(located, **options)

        class Failing(type(pipeline)):  # type: ignore[misc]
            def __call__(self, *args: Any, **kwargs: Any) -> Any:
                if poisoned["text"] in kwargs["prompt"]:
                    raise RuntimeError("CUDA error: an illegal memory access was encountered")
                if BASE_PROMPTS[2] in kwargs["prompt"]:
                    output = super().__call__(*args, **kwargs)
                    output.images[kwargs["prompt"].index(BASE_PROMPTS[2])][:] = np.nan
                    return output
                return super().__call__(*args, **kwargs)

        pipeline.__class__ = Failing
        return pipeline

    result = generate(ws, loader=loader)
    assert (result.ok, result.failed) == (PER_MODEL - 2, 2)
    failed = {r["prompt_id"]: r for r in ws.store.iter("render", status="failed")}
    assert "illegal memory access" in failed[poisoned["id"]]["error"]
    nan_base = next(b["id"] for b in ws.store.iter("base_prompt") if b["text"] == BASE_PROMPTS[2])
    assert "NaN" in failed[nan_base]["error"]
    assert all(r["image_sha256"] is None and r["seconds"] is not None for r in failed.values())
    stored = {p.name.removesuffix(".png") for p in (ws.root / "images").rglob("*.png")}
    assert stored == {r["image_sha256"] for r in ws.store.iter("render", status="ok")}
    # The poisoned variant and both variants of the NaN base have no pair; the rest do.
    assert len(list(iter_pairs(ws.store))) == len(BASE_PROMPTS) * 2 - 3
    # A rerun leaves failures alone; --retry-failed renders them again with the real pipeline.
    assert generate(ws).pending_before == 0
    retried = generate(ws, retry_failed=True)
    assert (retried.ok, retried.failed) == (2, 0)
    assert len(list(iter_pairs(ws.store))) == len(BASE_PROMPTS) * 2


def test_resume_after_sigkill(make_workspace: MakeWorkspace) -> None:
    prompts = [*BASE_PROMPTS, "a lighthouse on a cliff at dusk", "a child's drawing of a house"]
    reference = make_workspace("reference", prompts=prompts, models=["builtin:tiny-sd"], batch_size=1)
    generate(reference)
    ws = make_workspace("killed", prompts=prompts, models=["builtin:tiny-sd"], batch_size=1)
    ws.close()
    process = start_cli(ws.root, "generate")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        with sqlite3.connect(ws.root / "widespec.db", timeout=30) as conn:
            if conn.execute("SELECT COUNT(*) FROM render").fetchone()[0] >= 3:
                break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    with sqlite3.connect(ws.root / "widespec.db", timeout=30) as conn:
        partial = dict(conn.execute("SELECT id, json_extract(data, '$.image_sha256') FROM render"))
    assert 3 <= len(partial) < len(prompts) * 3, "the kill should land mid-run"
    for sha in partial.values():
        assert (ws.root / "images" / sha[:2] / f"{sha}.png").is_file()
    done = run_cli(ws.root, "generate")
    assert done.returncode == 0, done.stderr
    assert f"rendered {len(prompts) * 3 - len(partial)} ok, 0 failed" in done.stdout
    assert "builtin:tiny-sd @ sha256:" in done.stdout and "(random weights" in done.stdout
    with sqlite3.connect(ws.root / "widespec.db") as conn:
        final = dict(conn.execute("SELECT id, json_extract(data, '$.image_sha256') FROM render"))
        runs = conn.execute("SELECT status FROM run WHERE stage = 'generate' ORDER BY id").fetchall()
    assert final == render_images(reference)
    assert [r[0] for r in runs] == ["interrupted", "ok"]


def test_two_shards_render_everything_exactly_once(make_workspace: MakeWorkspace) -> None:
    ws = make_workspace(models=["builtin:tiny-sd"])
    ws.close()
    shards = [start_cli(ws.root, "generate", "--shard", f"{i}/2", "--json") for i in range(2)]
    outputs = [process.communicate(timeout=300) for process in shards]
    assert [p.returncode for p in shards] == [0, 0], [o[1] for o in outputs]
    import json

    counts = [json.loads(stdout)["ok"] for stdout, _ in outputs]
    assert all(counts) and sum(counts) == PER_MODEL
    with sqlite3.connect(ws.root / "widespec.db") as conn:
        assert (
            conn.execute("SELECT COUNT(*) FROM render WHERE json_extract(data, '$.status') = 'ok'").fetchone()[0]
            == PER_MODEL
        )


def test_unreachable_model_fails_fast_with_a_clear_error(make_workspace: MakeWorkspace) -> None:
    ws = make_workspace(models=["widespec-tests/no-such-model"])
    started = time.monotonic()
    with pytest.raises(WidespecError, match=r"cannot load 'widespec-tests/no-such-model'.*HF_HUB_OFFLINE"):
        generate(ws)
    assert time.monotonic() - started < 30
    assert ws.store.count("render") == 0
    assert ws.store.runs(stage="generate")[0]["status"] == "failed"
    ws.close()
    done = run_cli(ws.root, "generate")
    assert done.returncode == 1
    assert "error: generator.models: cannot load 'widespec-tests/no-such-model'" in done.stderr
    assert "Traceback" not in done.stderr


def test_limit_and_tiny_model_built_in_workspace(make_workspace: MakeWorkspace, tmp_path: Path) -> None:
    ws = make_workspace(models=["builtin:tiny-sd"])
    configure(ws, models_dir=".widespec/models")
    with pytest.raises(InputError, match="CUDA device"):
        generate(ws, device="cuda:99")
    assert ws.store.count("render") == 0
    result = generate(ws, limit=2)
    assert result.ok == 2 and pending_generate(ws) == PER_MODEL - 2
    assert (ws.root / ".widespec" / "models" / "tiny-sd" / "model_index.json").is_file()
    # Variants of a base prompt the safety screen blocked are not rendered (the limit rendered the first base).
    base = list(ws.store.iter("base_prompt"))[-1]
    ws.store.put("base_prompt", [{**base, "status": "blocked", "block_rule": "test rule"}], on_conflict="replace")
    assert pending_generate(ws) == PER_MODEL - 2 - 3


def test_hub_id_loads_from_the_hugging_face_cache_and_records_the_commit(
    make_workspace: MakeWorkspace, tiny_models_dir: Path
) -> None:
    import shutil

    from huggingface_hub import constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = Path(constants.HF_HUB_CACHE) / "models--widespec-tests--cached-tiny-sd"
    shutil.copytree(tiny_models_dir / "tiny-sd", repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    ws = make_workspace(models=["widespec-tests/cached-tiny-sd"])
    assert generate(ws, limit=3).ok == 3
    generators = [r["generator"] for r in ws.store.iter("render")]
    assert (
        generators
        == [
            {
                "model": "widespec-tests/cached-tiny-sd",
                "revision": commit,
                "preset": None,
                "license": "unknown",
                "random_weights": False,
                "pipeline": "StableDiffusionPipeline",
                "scheduler": "EulerDiscreteScheduler",
                "dtype": "float32",
                "batch_mode": "exact",
                "batch_size": None,
                "call_kwargs": {},
                "cpu_threads": 1,  # executor.cpu_threads: a CPU image's sums split over that many threads
            }
        ]
        * 3
    )
    generate(ws)
    first = {p.id: p for p in iter_pairs(ws.store)}
    assert len(first) == 2 * len(BASE_PROMPTS) and pending_generate(ws) == 0

    # The Hub's main moves to a new commit: every image is rendered anew and pairs only with its own kind.
    moved = "fedcba9876543210fedcba9876543210fedcba98"
    shutil.copytree(repo / "snapshots" / commit, repo / "snapshots" / moved)
    (repo / "refs" / "main").write_text(moved)
    assert pending_generate(ws) == len(BASE_PROMPTS) * 3
    assert generate(ws).ok == len(BASE_PROMPTS) * 3
    assert ws.store.count("render") == 2 * len(BASE_PROMPTS) * 3  # the old renders stay, as history
    # The old pairs are history: superseded, never scored, judged or released again.
    second = {p.id: p for p in iter_pairs(ws.store)}
    assert len(second) == len(first) and not set(first) & set(second)
    assert {p.id for p in iter_pairs(ws.store, status="superseded")} == set(first)
    for pair in second.values():
        assert pair.base_render["generator"]["revision"] == pair.anti_render["generator"]["revision"] == moved

    configure(ws, models=["widespec-tests/cached-tiny-sd@v2"])
    with pytest.raises(WidespecError, match="cannot load 'widespec-tests/cached-tiny-sd@v2'"):
        generate(ws)


def test_local_folder_model_records_its_content_hash(make_workspace: MakeWorkspace, tiny_models_dir: Path) -> None:
    ws = make_workspace(models=[str(tiny_models_dir / "tiny-sd")], batch_size=1)
    assert generate(ws, limit=1).ok == 1
    builtin = make_workspace("builtin", models=["builtin:tiny-sd"], batch_size=1)
    assert generate(builtin, limit=1).ok == 1
    (folder_render,) = ws.store.iter("render")
    (builtin_render,) = builtin.store.iter("render")
    assert folder_render["generator"]["model"] == (tiny_models_dir / "tiny-sd").resolve().as_posix()
    assert folder_render["generator"]["revision"] == builtin_render["generator"]["revision"]
    assert folder_render["generator"]["random_weights"] is False  # widespec cannot know that of a folder
    assert folder_render["image_sha256"] == builtin_render["image_sha256"]


def test_a_variant_the_text_checks_reject_is_never_rendered(make_workspace: MakeWorkspace) -> None:
    """`widespec run` runs the text checks before generation; a copy of its base prompt costs no GPU time."""
    from curation.core.executor import execute
    from curation.score.text_checks import TEXT_CHECKS

    ws = make_workspace(prompts=BASE_PROMPTS[:2])
    copy = next(v for v in ws.store.iter("variant") if v["index"] == 1)
    base = ws.store.get("base_prompt", copy["base_id"])
    assert base is not None
    ws.store.put("variant", [{**copy, "text": base["text"]}], on_conflict="replace")  # the rewrite changed nothing
    assert pending_generate(ws) == 2 * 3
    execute(ws, TEXT_CHECKS)
    text = ws.store.get("decision", stable_id("decision", copy["id"], "text"))
    assert text is not None and text["outcome"] == "reject" and "barely moved" in text["reasons"][0]
    assert pending_generate(ws) == 2 * 3 - 1
    assert generate(ws).ok == 5
    assert copy["id"] not in {r["prompt_id"] for r in ws.store.iter("render")}
