"""The Ray backend of the executor on a real local Ray (2 CPUs): the same bytes and records as the local
backend, failures as failure rows, scoring on actors, and an unreachable cluster in one line."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from curation.core.config import set_value
from curation.core.errors import WidespecError
from curation.core.workspace import Workspace
from curation.generate.stage import generate
from curation.score.stage import run_score
from tests.generate_fixtures import MakeWorkspace, crash_once_loader, render_images

pytestmark = pytest.mark.slow
__all__ = ["make_workspace", "tiny_models_dir"]  # fixtures used by name
from tests.generate_fixtures import make_workspace, tiny_models_dir  # noqa: E402

VOLATILE = {"created_at", "seconds", "runtime"}


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


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
    # One actor with this machine's two cores: torch then sums in the same order as the local run (a CPU image
    # depends on the number of threads that computed it; on a GPU it does not).
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
    assert generate(remote).pending_before == 0  # nothing dispatched twice

    run_score(local)
    scored = run_score(remote)  # the score stage's compute on actors too
    assert scored.pairs_scored == len(list(local.store.iter("score", metric="fidelity")))
    values = {(r["subject_id"], r["metric"]): r["value"] for r in remote.store.iter("score")}
    assert values == {(r["subject_id"], r["metric"]): r["value"] for r in local.store.iter("score")}


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


def test_the_executor_option_overrides_the_config_for_one_run(make_workspace: MakeWorkspace, local_ray: None) -> None:
    from typer.testing import CliRunner

    from curation.app.cli import app

    ws = make_workspace("cli", models=["builtin:tiny-sd"], batch_size=2, batch_mode="exact")
    out = CliRunner().invoke(app, ["-w", str(ws.root), "-q", "generate", "--executor", "ray", "--limit", "2", "--json"])
    assert out.exit_code == 0, out.output
    assert ws.store.count("render", status="ok") == 2
    assert 'kind = "ray"' not in ws.config_path.read_text()  # the override lasts one run
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
