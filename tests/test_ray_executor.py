"""The Ray backend of the executor on a real local Ray (2 CPUs): the same bytes and records as the local
backend, a driver killed mid-run that resumes, failures as failure rows, scoring on actors from the bytes the
units carry, the cluster in the ledger, and an unreachable cluster in one line."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from curation.core.config import defaults, set_value
from curation.core.errors import WidespecError
from curation.core.settings import ExecutorSettings
from curation.core.stage import Output, Stage
from curation.core.workspace import Workspace
from curation.generate.stage import generate
from curation.score.stage import run_score
from tests.generate_fixtures import MakeWorkspace, crash_once_loader, raising_loader, render_images, start_cli

pytestmark = pytest.mark.slow

VOLATILE = {"created_at", "seconds", "runtime"}


@pytest.fixture(scope="module")
def ray_of_this_module() -> Iterator[None]:
    import ray

    yield
    ray.shutdown()


@pytest.fixture
def local_ray(ray_of_this_module: None) -> None:
    """A local Ray with 2 CPUs, started from the tests' working directory (its workers import tests' helpers);
    started again after a test that shut it down."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")


def on_ray(ws: Workspace, **executor: Any) -> None:
    for key, value in {"kind": "ray", "batch_size": 2, "workers": 2, **executor}.items():
        set_value(ws.config_path, "executor", key, value)
    ws.reload_config()


def renders(ws: Workspace) -> dict[str, dict[str, Any]]:
    return {r["id"]: {k: v for k, v in r.items() if k not in VOLATILE} for r in ws.store.iter("render")}


def test_ray_renders_the_same_bytes_and_records_as_the_local_executor(
    make_workspace: MakeWorkspace, local_ray: None
) -> None:
    local = make_workspace("local", models=["builtin:tiny-sd"], batch_size=2, batch_mode="exact")
    remote = make_workspace("ray", models=["builtin:tiny-sd"], batch_size=2, batch_mode="exact")
    # One actor holding both cores: it still computes with executor.cpu_threads, as the local run does.
    on_ray(remote, workers=1, cpus_per_worker=2)
    generate(local)
    result = generate(remote)
    assert result.ok == len(render_images(local)) and result.failed == 0
    assert render_images(remote) == render_images(local)
    assert renders(remote) == renders(local)
    for sha in render_images(remote).values():
        assert sha is not None and remote.images.read(sha) == local.images.read(sha)
    (run,) = remote.store.runs(stage="generate")
    assert run["status"] == "ok"
    assert run["counts"]["cluster"] == {"nodes": 1, "cpus": 2.0, "gpus": 0.0, "ray": ray_version(), "address": "local"}
    assert "cluster" not in local.store.runs(stage="generate")[0]["counts"]
    assert generate(remote).pending_before == 0  # nothing dispatched twice

    run_score(local)
    scored = run_score(remote)  # the score stage's compute on actors too
    assert scored.pairs_scored == len(list(local.store.iter("score", metric="fidelity")))
    values = {(r["subject_id"], r["metric"]): r["value"] for r in remote.store.iter("score")}
    assert values == {(r["subject_id"], r["metric"]): r["value"] for r in local.store.iter("score")}


def test_the_executor_never_changes_a_cpu_image_under_default_settings(
    make_workspace: MakeWorkspace, local_ray: None
) -> None:
    """A CPU image depends on how many torch threads computed it. Left alone, this process computes with one
    thread per core (two here) and each Ray actor with one per CPU it holds (`cpus_per_worker` = 1): the same
    render ids would name other bytes. Both executors apply `executor.cpu_threads`, which the ids cover."""
    import torch

    local = make_workspace("local-defaults", models=["builtin:tiny-sd"], batch_size=2, batch_mode="exact")
    remote = make_workspace("ray-defaults", models=["builtin:tiny-sd"], batch_size=2, batch_mode="exact")
    set_value(remote.config_path, "executor", "kind", "ray")  # every other executor key at its default
    remote.reload_config()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # this process as torch starts it on two cores, whatever ran before
    try:
        generate(local)
        generate(remote)
        assert torch.get_num_threads() == 2  # the local executor gives the process its threads back
    finally:
        torch.set_num_threads(threads)
    assert render_images(remote) == render_images(local)
    for sha in render_images(remote).values():
        assert sha is not None and remote.images.read(sha) == local.images.read(sha)

    # Another thread count is another pixel identity: other ids, and still the same bytes on either executor.
    for ws in (local, remote):
        set_value(ws.config_path, "executor", "cpu_threads", 2)
        ws.reload_config()
    generate(local)
    generate(remote)
    assert render_images(remote) == render_images(local)
    shas: dict[int, set[str | None]] = {1: set(), 2: set()}
    for render in local.store.iter("render"):
        shas[render["generator"]["cpu_threads"]].add(render["image_sha256"])
    assert len(shas[2]) == len(shas[1]) and shas[2] != shas[1]  # two threads sum in another order


def ray_version() -> str:
    import ray

    return str(ray.__version__)


def test_a_driver_killed_mid_run_resumes_to_the_state_of_an_uninterrupted_run(
    make_workspace: MakeWorkspace, local_ray: None
) -> None:
    import ray

    prompts = [f"a {colour} teapot on a {thing}" for colour in ("red", "blue") for thing in ("table", "roof", "boat")]
    local = make_workspace(
        "uninterrupted", prompts=prompts, batch_size=2, models=["builtin:tiny-sd"], batch_mode="exact"
    )
    killed = make_workspace("killed", prompts=prompts, batch_size=2, models=["builtin:tiny-sd"], batch_mode="exact")
    generate(local)
    total = len(render_images(local))
    # The killed driver is another process that joins this test's Ray by its GCS address, as `ray start --head`
    # clusters are joined; one unit per chunk, so renders commit one group at a time.
    address = ray.get_runtime_context().gcs_address
    on_ray(killed, workers=1, cpus_per_worker=2, batch_size=1, address=address)
    driver = start_cli(killed.root, "generate")
    db = killed.root / "widespec.db"
    deadline = time.monotonic() + 180
    committed = 0
    while not committed and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            committed = conn.execute("SELECT count(*) FROM render WHERE status = 'ok'").fetchone()[0]
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    already = killed.store.count("render")
    assert 0 < already < total, "killed after its first commit, before its last"

    resumed = generate(killed)  # only what is pending is dispatched
    assert (resumed.ok, resumed.failed) == (total - already, 0)
    assert render_images(killed) == render_images(local)
    assert renders(killed) == renders(local)
    for sha in render_images(killed).values():
        assert sha is not None and killed.images.read(sha) == local.images.read(sha)
    last, first = killed.store.runs(stage="generate")
    assert (first["status"], last["status"]) == ("interrupted", "ok")
    assert (first["counts"]["ok"], last["counts"]["ok"]) == (already, total - already)
    assert first["counts"]["cluster"]["address"] == last["counts"]["cluster"]["address"] == "gcs address"


def test_an_unreachable_cluster_fails_in_one_line(make_workspace: MakeWorkspace) -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
    ws = make_workspace(models=["builtin:tiny-sd"])
    on_ray(ws, address="ray://127.0.0.1:1", connect_timeout_s=5)
    with pytest.raises(
        WidespecError, match=r"executor.address = 'ray://127.0.0.1:1': cannot reach the Ray cluster"
    ) as caught:
        generate(ws)
    assert "\n" not in str(caught.value)
    assert ws.store.count("render") == 0
    (run,) = ws.store.runs(stage="generate")
    assert run["status"] == "failed"


def test_the_executor_option_overrides_the_config_for_one_run(
    make_workspace: MakeWorkspace, local_ray: None, tiny_models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from curation.app.cli import app

    ws = make_workspace("cli", models=["builtin:tiny-sd"], batch_size=2, batch_mode="exact")
    # A workspace and models folder named relative to the working directory, as `widespec -w ws` in a shell:
    # the actors, which run elsewhere, still find the model.
    set_value(ws.config_path, "generator", "models_dir", os.path.relpath(tiny_models_dir, ws.root))
    monkeypatch.chdir(ws.root.parent)
    out = CliRunner().invoke(app, ["-w", "cli", "-q", "generate", "--executor", "ray", "--limit", "2", "--json"])
    assert out.exit_code == 0, out.output
    assert ws.store.count("render", status="ok") == 2
    assert 'kind = "ray"' not in ws.config_path.read_text()  # the override lasts one run
    shown = CliRunner().invoke(app, ["-w", str(ws.root), "status"], env={"COLUMNS": "250"})
    assert f"ray: 1 node, 2 CPUs, 0 GPUs (local, Ray {ray_version()})" in shown.output
    runs = json.loads(CliRunner().invoke(app, ["-w", str(ws.root), "status", "--json"]).output)["runs"]
    generated = next(r for r in runs if r["stage"] == "generate")
    assert generated["executor"] == {
        "kind": "ray",
        "nodes": 1,
        "cpus": 2.0,
        "gpus": 0.0,
        "ray": ray_version(),
        "address": "local",
    }
    assert "cluster" not in generated["counts"] and generated["counts"]["ok"] == 2
    assert {r["executor"]["kind"] for r in runs if r["stage"] != "generate"} == {"local"}
    bad = CliRunner().invoke(app, ["-w", str(ws.root), "generate", "--executor", "spark"])
    assert "--executor 'spark': expected local or ray" in str(bad.exception)


def test_a_worker_killed_mid_batch_is_retried_and_nothing_is_lost(
    make_workspace: MakeWorkspace, local_ray: None, tmp_path: Path
) -> None:
    local = make_workspace("local-crash", models=["builtin:tiny-sd"], batch_size=2, batch_mode="exact")
    remote = make_workspace("ray-crash", models=["builtin:tiny-sd"], batch_size=2, batch_mode="exact")
    on_ray(remote, workers=1, cpus_per_worker=2)
    marker = tmp_path / "crashed"
    generate(local)
    result = generate(remote, loader=partial(crash_once_loader, marker=str(marker)))
    assert marker.exists()  # the actor did die
    assert result.failed == 0 and render_images(remote) == render_images(local)


def test_a_model_that_raises_for_one_prompt_makes_failed_rows_on_ray(
    make_workspace: MakeWorkspace, local_ray: None
) -> None:
    ws = make_workspace("ray-raising", models=["builtin:tiny-sd"], batch_size=1, batch_mode="exact")
    on_ray(ws, workers=1, cpus_per_worker=2)
    poisoned = next(v for v in ws.store.iter("variant") if v["status"] == "ok")
    word = poisoned["text"]
    result = generate(ws, loader=partial(raising_loader, word=word))
    failed = list(ws.store.iter("render", status="failed"))
    assert result.failed == len(failed) >= 1 and result.ok > 0
    assert all("illegal memory access" in r["error"] and r["image_sha256"] is None for r in failed)
    assert {r["prompt_id"] for r in failed} == {poisoned["id"]}  # one prompt's renders; the rest of its group render
    assert (ws.store.runs(stage="generate")[0]["status"]) == "ok"


def on_hidden_images(ws: Workspace, stage: Stage, options: Any) -> list[dict[str, Any]]:
    """`stage`'s records computed on Ray from the units the driver sends, with the workspace's images/ folder
    renamed away first: the actors read nothing but the bytes the units carry."""
    from curation.core.ray_backend import connect, run_on_ray

    work = stage.plan(ws, options)
    assert work is not None and work.compute is not None and work.portable is not None
    travelling = work.portable(work.units)
    hidden = ws.root / "images-hidden"
    (ws.root / "images").rename(hidden)
    try:
        settings = ws.settings.executor
        outputs = list(run_on_ray(work.compute, travelling, settings, connect(settings)))
    finally:
        hidden.rename(ws.root / "images")
    return [r for output in outputs for r in output.records.get(stage.makes[0], [])]


def test_score_and_audit_units_travel_with_their_image_bytes(make_workspace: MakeWorkspace, local_ray: None) -> None:
    from curation.audit.specs import resolve_names
    from curation.audit.stage import AuditOptions, AuditStage, audit
    from curation.score.stage import SCORE, PairImages, ScoreOptions

    local = make_workspace("local-score", models=["builtin:tiny-sd"], batch_size=2)
    remote = make_workspace("ray-score", models=["builtin:tiny-sd"], batch_size=2)
    generate(local)
    generate(remote)
    # One chunk holds every unit, so the models see the batches the local run makes (a batch's composition moves
    # a float's last digit).
    on_ray(remote, workers=1, cpus_per_worker=2, batch_size=64)

    local_units = SCORE.plan(local).units  # the local executor sends nothing anywhere: paths only
    assert all(u.base_bytes is None for u in local_units if isinstance(u, PairImages))
    carried = [u for u in SCORE.plan(remote).portable(SCORE.plan(remote).units) if isinstance(u, PairImages)]
    assert carried and all(u.base_bytes == remote.images.read(u.base_sha) for u in carried)
    assert all(u.anti_bytes == remote.images.read(u.anti_sha) for u in carried)

    run_score(local)
    rows = on_hidden_images(remote, SCORE, ScoreOptions())
    assert {r["status"] for r in rows} == {"ok"}
    values = {(r["subject_id"], r["metric"]): r["value"] for r in rows}
    assert values == {(r["subject_id"], r["metric"]): r["value"] for r in local.store.iter("score")}

    # On a machine without the workspace the compute keeps its embeddings in a folder of its own, for the run.
    work = SCORE.plan(remote)
    elsewhere = remote.root.parent / "not-here" / ".widespec" / "embeddings" / "scorer"
    with replace(work.compute.__self__, folder=elsewhere).opened() as compute:
        rows = [r for output in compute.run(work.portable(work.units)) for r in output.records.get("score", [])]
    assert {(r["subject_id"], r["metric"]): r["value"] for r in rows} == values
    assert not (remote.root.parent / "not-here").exists()

    (spec,) = resolve_names("tiny-clip", {})
    audit(local, AuditOptions(spec))
    audited = on_hidden_images(remote, AuditStage(), AuditOptions(spec))
    assert {r["status"] for r in audited} == {"ok"}
    assert {r["id"]: r["scores"] for r in audited} == {r["id"]: r["scores"] for r in local.store.iter("audit")}


@dataclass(frozen=True)
class Echo:
    """A compute that hands back the units it was given."""

    @contextmanager
    def opened(self) -> Iterator[Echo]:
        yield self

    def run(self, units: Sequence[int]) -> Iterator[Output]:
        yield Output(counts=Counter(units=len(units)), advance=len(units), details={"units": list(units)})


def test_the_driver_holds_a_window_of_chunks_never_the_whole_run(local_ray: None) -> None:
    """Units are made portable (their images read into the driver) only as chunks are sent, and at most two
    chunks per actor are out at once: whatever the run's length, the driver holds a few chunks' inputs."""
    from curation.core.ray_backend import connect, run_on_ray

    table = defaults()["executor"] | {"kind": "ray", "workers": 2, "cpus_per_worker": 1, "batch_size": 3}
    settings = ExecutorSettings.from_table(table)
    window = 2 * 2 * 3  # two chunks in flight per actor, two actors, three units a chunk
    read: list[int] = []

    def portable(chunk: Sequence[int]) -> list[int]:
        read.extend(chunk)
        return [unit * 10 for unit in chunk]

    units = list(range(60))
    back: list[int] = []
    for output in run_on_ray(Echo().opened, units, settings, connect(settings), portable):
        back += output.details["units"]
        assert len(read) - len(back) <= window, f"{len(read)} units read, {len(back)} back"
    assert sorted(back) == [unit * 10 for unit in units] and sorted(read) == units
