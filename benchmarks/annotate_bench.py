"""Push 10,000 tasks and pull 10,000 annotations against a real local Label Studio, side by side with creating
tasks (and reading annotations) one request at a time; or, with --team, push 10,000 tasks with their 20,000
images to a team server (a separate Label Studio, local-files serving off), side by side with one request per
image and per task.

    python benchmarks/annotate_bench.py [--pairs 10000] [--sample 200]
    python benchmarks/annotate_bench.py --team [--pairs 10000] [--sample 200] [--image-px 64]
        [--concurrency 4] [--batch 50]

The one-by-one baselines are timed on a sample of `--sample` tasks in the same server and extrapolated linearly
to `--pairs` (stated in the output). HTTP requests are counted with an httpx event hook on the SDK's client.
Needs the server venv (bash annotation/server_venv.sh); uses a temporary workspace, removed at the end.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from label_studio_sdk import LabelStudio
from PIL import Image

from annotation import client, labeling, server, uploads, workflow
from curation.core.config import set_value
from curation.core.ids import content_hash, stable_id
from curation.core.images import ImageStore
from curation.core.pairs import iter_pairs, pair_id, put_renders
from curation.core.records import (
    LEXICON_REWRITER,
    base_prompt_id,
    base_prompt_record,
    decision_record,
    render_record,
    variant_record,
)
from curation.core.workspace import Workspace, init_workspace

NOW = "2026-11-27T12:00:00+00:00"
MODEL = "bench:tiny"


class RequestCounter:
    """Counts the requests an httpx client sends, and times its image uploads (first sent to last answered)."""

    def __init__(self) -> None:
        self.count = 0
        self.upload_window: list[float] = []

    def __call__(self, request: httpx.Request) -> None:
        self.count += 1
        if _is_upload(request) and not self.upload_window:
            self.upload_window.append(time.perf_counter())

    def answered(self, response: httpx.Response) -> None:
        if _is_upload(response.request):
            self.upload_window[1:] = [time.perf_counter()]

    def upload_seconds(self) -> float:
        return self.upload_window[-1] - self.upload_window[0] if len(self.upload_window) == 2 else 0.0

    def client(self) -> httpx.Client:
        hooks: dict[str, list[Callable[..., Any]]] = {"request": [self], "response": [self.answered]}
        return httpx.Client(timeout=600, follow_redirects=True, event_hooks=hooks)


def _is_upload(request: httpx.Request) -> bool:
    return request.method == "POST" and "commit_to_project=false" in str(request.url)


def _png(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (shade, 255 - shade, 128)).save(buffer, format="PNG")
    return buffer.getvalue()


def noise_png(index: int, px: int) -> bytes:
    """A distinct px-by-px PNG of seeded noise."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (px, px), random.Random(index).randbytes(px * px * 3)).save(buffer, format="PNG")
    return buffer.getvalue()


def build_store(ws: Workspace, n: int, image_px: int | None = None) -> None:
    """n complete pairs with accepted CLIP decisions, written in bulk; images shared (only paths matter) unless
    `image_px` asks for two distinct noise images of that size per pair."""
    distinct = image_px is not None
    shas = [ws.images.put(noise_png(i, image_px) if image_px else _png(i)) for i in range(2 * n if distinct else 32)]
    pick = (lambda i, k: shas[2 * i + k]) if distinct else (lambda i, k: shas[(i + k) % 32])
    taxonomy = {"name": "widespec-core", "version": "1.0.0", "hash": content_hash("taxonomy")}
    records: dict[str, list[dict[str, Any]]] = {k: [] for k in ("base_prompt", "variant", "render", "decision")}
    for i in range(n):
        text = f"a benchmark street scene {i}"
        base_id = base_prompt_id(text)
        variant_id = stable_id("variant", base_id, 0)
        records["base_prompt"].append(base_prompt_record(text, "bench", i + 1, created_at=NOW))
        records["variant"].append(
            variant_record(
                variant_id, base_id, 0, ["blurry", "decay"], "moderate", f"a blurry, decaying {text}",
                rewriter=LEXICON_REWRITER, taxonomy=taxonomy, created_at=NOW,
            )
        )  # fmt: skip
        for kind, prompt_id, sha in (("base", base_id, pick(i, 0)), ("variant", variant_id, pick(i, 1))):
            records["render"].append(
                render_record(
                    prompt_id, kind,
                    generator={"model": MODEL, "revision": None, "preset": None, "license": None}, seed=1,
                    settings=(2, 3.5, 16, 16), image_sha256=sha, seconds=0.01, created_at=NOW,
                )
            )  # fmt: skip
        pid = pair_id(variant_id, records["render"][-1]["pairing_key"])
        records["decision"].append(decision_record(pid, "clip", "accept", [], {}, created_at=NOW))
    for kind, batch in records.items():
        if kind == "render":
            put_renders(ws.store, batch)  # with the pairs they complete
        else:
            ws.store.put(kind, batch)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--team", action="store_true", help="push with images to a separate team server")
    parser.add_argument("--image-px", type=int, default=64, help="--team: side of each distinct noise PNG")
    parser.add_argument("--concurrency", type=int, default=4, help="--team: annotation.upload_concurrency")
    parser.add_argument("--batch", type=int, default=50, help="--team: annotation.upload_batch")
    args = parser.parse_args()
    n, sample = args.pairs, args.sample
    root = Path(tempfile.mkdtemp(prefix="widespec-annotate-bench-"))
    ws = init_workspace(root / "ws")
    configure(ws, pairs_per_round=n, gold_rate=0.0, rejected_rate=0.0, port=_free_port())
    try:
        if args.team:
            configure(ws, upload_concurrency=args.concurrency, upload_batch=args.batch)
            run_team(ws, root, n, sample, args.image_px)
            return
        build_store(ws, n)
        conn = server.start(ws)
        rows = run(ws, conn, n, sample)
    finally:
        server.stop(ws)
        ws.close()
        shutil.rmtree(root, ignore_errors=True)
    print(f"Label Studio {server.LS_VERSION}, {n:,} pairs; one-by-one figures timed on {sample} tasks and extrapolated")
    print_rows(rows)
    push, push_naive, pull, pull_naive = rows
    print(f"push speed-up: {push_naive[1] / push[1]:.1f}x time, {push_naive[2] / push[2]:.0f}x fewer requests")
    print(f"pull speed-up: {pull_naive[1] / pull[1]:.1f}x time, {pull_naive[2] / pull[2]:.0f}x fewer requests")


def configure(ws: Workspace, **values: Any) -> None:
    for key, value in values.items():
        set_value(ws.config_path, "annotation", key, value)
    ws.reload_config()


def print_rows(rows: list[tuple[str, float, int]]) -> None:
    print(f"{'step':<58} {'seconds':>9} {'requests':>9}")
    for name, seconds, requests in rows:
        print(f"{name:<58} {seconds:>9.1f} {requests:>9,}")


def run_team(ws: Workspace, root: Path, n: int, sample: int, image_px: int) -> None:
    """Start a team-like server (own data dir, local-files serving off), push, compare, rerun, print."""
    started = time.perf_counter()
    build_store(ws, n, image_px)
    built = time.perf_counter() - started
    host = init_workspace(root / "host")
    venv = server.venv_dir(host)
    data = server.ensure_data_dir(host, venv)
    env = server.server_env(venv, data) | {"LOCAL_FILES_SERVING_ENABLED": "false"}
    port = _free_port()
    proc = server.launch(venv, data, port, env)
    try:
        conn = server.Connection(f"http://127.0.0.1:{port}", server.admin_login(host).token)
        os.environ["WIDESPEC_BENCH_LS_TOKEN"] = conn.token
        configure(ws, url=conn.url, token_env="WIDESPEC_BENCH_LS_TOKEN")
        rows, uploads_per_s, naive_per_s = team_rows(ws, conn, n, sample)
    finally:
        server.terminate(proc.pid)
        host.close()
    size = sum(p.stat().st_size for p in (ws.root / "images").rglob("*.png")) / (2 * n)
    cfg = ws.settings.annotation
    print(
        f"Label Studio {server.LS_VERSION} team server (local-files serving off), {n:,} pairs = {2 * n:,} distinct "
        f"{image_px}x{image_px} PNGs (mean {size / 1024:.1f} KiB; store built in {built:.0f} s); uploads "
        f"{cfg.upload_batch} files a request, {cfg.upload_concurrency} at once; one-by-one figures timed on "
        f"{sample} tasks and extrapolated"
    )
    print_rows(rows)
    push, naive, rerun = rows
    print(f"uploads: {uploads_per_s:.0f} images/s (one by one: {naive_per_s:.0f} images/s)")
    print(f"push speed-up: {naive[1] / push[1]:.1f}x time, {naive[2] / push[2]:.0f}x fewer requests")
    print(f"rerun: {rerun[0]}")


def team_rows(
    ws: Workspace, conn: server.Connection, n: int, sample: int
) -> tuple[list[tuple[str, float, int]], float, float]:
    rows: list[tuple[str, float, int]] = []
    counter = RequestCounter()
    start = time.perf_counter()
    pushed = workflow.push(ws, 1, http=counter.client())
    seconds = time.perf_counter() - start
    assert (pushed.imported, pushed.uploaded) == (n, 2 * n), pushed
    rows.append((f"widespec push ({n:,} tasks, {pushed.uploaded:,} images uploaded)", seconds, counter.count))
    uploads_per_s = pushed.uploaded / counter.upload_seconds()

    # Baseline: each image in its own upload request, then one POST /api/tasks per task; sampled, extrapolated.
    plan = ws.store.state_get("annotation:round:1")
    assert plan is not None
    pairs = {p.id: p for p in iter_pairs(ws.store)}
    names, images = labeling.dimension_names(ws), ImageStore((ws.root / "images").resolve())
    payloads = [workflow.pair_payload(pairs[p], order, names) for p, _gold, order in plan["tasks"][:sample]]
    admin = LabelStudio(base_url=conn.url, api_key=conn.token, timeout=600)
    image_project = client.create_project(admin, "one-by-one images", uploads.IMAGES_CONFIG, 1, "")
    task_project = client.create_project(admin, "one-by-one baseline", labeling.label_config(), 1, "")

    upload_seconds = [0.0]

    def one_by_one(http: httpx.Client) -> None:
        uploader = uploads.Uploader(conn, image_project, http, concurrency=1, batch=1)
        ls = client.open_client(conn, http)
        for payload in payloads:
            urls: dict[str, str] = {}
            for field in labeling.IMAGE_FIELDS:
                began = time.perf_counter()
                for done in uploader.upload([(payload[field], images.path_for(payload[field]))]):
                    urls |= done
                upload_seconds[0] += time.perf_counter() - began
            ls.tasks.create(project=task_project, data=labeling.with_urls(payload, urls))

    _, seconds, requests = timed(one_by_one)
    rows.append(
        ("one by one: upload per image, tasks.create per task (extrap.)", seconds * n / sample, requests * n // sample)
    )
    naive_per_s = 2 * len(payloads) / upload_seconds[0]

    again, seconds, requests = timed(lambda http: workflow.push(ws, 1, http=http))
    assert (again.uploaded, again.imported) == (0, 0), again
    rows.append((f"rerun push ({again.uploaded} uploaded, {again.imported} imported)", seconds, requests))
    return rows, uploads_per_s, naive_per_s


def timed(action: Callable[[httpx.Client], Any]) -> tuple[Any, float, int]:
    """Run `action` with a fresh request-counting HTTP client: (its result, seconds, requests)."""
    counter = RequestCounter()
    start = time.perf_counter()
    result = action(counter.client())
    return result, time.perf_counter() - start, counter.count


def run(ws: Workspace, conn: server.Connection, n: int, sample: int) -> list[tuple[str, float, int]]:
    rows: list[tuple[str, float, int]] = []
    pushed, seconds, requests = timed(lambda http: workflow.push(ws, 1, http=http))
    assert pushed.imported == n, pushed
    rows.append((f"widespec push ({pushed.imported:,} tasks, chunks of 1,000)", seconds, requests))

    # Baseline: one POST /api/tasks per task, into a separate project; timed on a sample, extrapolated.
    plan = ws.store.state_get("annotation:round:1")
    assert plan is not None
    payloads = _payloads(ws, plan)
    admin = LabelStudio(base_url=conn.url, api_key=conn.token, timeout=600)
    project = client.create_project(admin, "one-by-one baseline", labeling.label_config(), 1, "")

    def create_one_by_one(http: httpx.Client) -> None:
        ls = client.open_client(conn, http)
        for payload in payloads[:sample]:
            ls.tasks.create(project=project, data=payload)

    _, seconds, requests = timed(create_one_by_one)
    rows.append(("one by one: tasks.create per task (extrap.)", seconds * n / sample, requests * n // sample))

    # Pull: give every task of the round one annotation (setup, not timed), then pull them all.
    admin.tasks.delete_all_tasks(id=pushed.project_id)
    annotated = [{"data": data, "annotations": [{"result": [_choice("a")], "completed_by": 1}]} for data in payloads]
    for chunk in range(0, n, 1000):
        admin.projects.import_tasks(id=pushed.project_id, request=annotated[chunk : chunk + 1000])  # type: ignore[arg-type]
    pulled, seconds, requests = timed(lambda http: workflow.pull(ws, 1, http=http))
    assert pulled.annotations == n, pulled
    rows.append((f"widespec pull ({pulled.annotations:,} annotations, one export)", seconds, requests))

    # Baseline: one GET /api/tasks/{id}/annotations per task (plus listing the tasks at the default 100 a page).
    task_ids = list(client.task_pairs(admin, pushed.project_id).values())[:sample]

    def read_one_by_one(http: httpx.Client) -> None:
        ls = client.open_client(conn, http)
        for task_id in task_ids:
            ls.annotations.list(id=task_id)

    _, seconds, requests = timed(read_one_by_one)
    rows.append(
        ("one by one: annotations.list per task (extrap.)", seconds * n / sample, requests * n // sample + -(-n // 100))
    )
    return rows


def _payloads(ws: Workspace, plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The round's task data, as push builds it."""
    pairs = {p.id: p for p in iter_pairs(ws.store)}
    names, docroot = labeling.dimension_names(ws), server.document_root(ws)
    images = ImageStore((ws.root / "images").resolve())
    payloads = [workflow.pair_payload(pairs[pair], order, names) for pair, _gold, order in plan["tasks"]]
    shas = {p[field] for p in payloads for field in labeling.IMAGE_FIELDS}
    urls = {sha: labeling.image_url(images.path_for(sha), docroot) for sha in shas}
    return [labeling.with_urls(p, urls) for p in payloads]


def _choice(answer: str) -> dict[str, Any]:
    return {"from_name": "choice", "to_name": "image_a", "type": "choices", "value": {"choices": [answer]}}


if __name__ == "__main__":
    main()
