"""Push 10,000 tasks and pull 10,000 annotations against a real local Label Studio, side by side with creating
tasks (and reading annotations) one request at a time.

    python benchmarks/annotate_bench.py [--pairs 10000] [--sample 200]

The one-by-one baselines are timed on a sample of `--sample` tasks in the same server and extrapolated linearly
to `--pairs` (stated in the output). HTTP requests are counted with an httpx event hook on the SDK's client.
Needs the server venv (bash annotation/server_venv.sh); uses a temporary workspace, removed at the end.
"""

from __future__ import annotations

import argparse
import io
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

from annotation import client, labeling, server, workflow
from curation.core.config import set_value
from curation.core.ids import content_hash, stable_id
from curation.core.images import ImageStore
from curation.core.pairs import iter_pairs, pair_id
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
    """Counts the requests an httpx client sends."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, request: httpx.Request) -> None:
        self.count += 1

    def client(self) -> httpx.Client:
        return httpx.Client(timeout=600, follow_redirects=True, event_hooks={"request": [self]})


def _png(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (shade, 255 - shade, 128)).save(buffer, format="PNG")
    return buffer.getvalue()


def build_store(ws: Workspace, n: int) -> None:
    """n complete pairs with accepted CLIP decisions, written in bulk (images shared: only paths matter here)."""
    shas = [ws.images.put(_png(s)) for s in range(32)]
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
        for kind, prompt_id, sha in (("base", base_id, shas[i % 32]), ("variant", variant_id, shas[(i + 1) % 32])):
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
        ws.store.put(kind, batch)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=200)
    args = parser.parse_args()
    n, sample = args.pairs, args.sample
    root = Path(tempfile.mkdtemp(prefix="widespec-annotate-bench-"))
    ws = init_workspace(root / "ws")
    for key, value in (("pairs_per_round", n), ("gold_rate", 0.0), ("rejected_rate", 0.0), ("port", _free_port())):
        set_value(ws.config_path, "annotation", key, value)
    ws.reload_config()
    try:
        build_store(ws, n)
        conn = server.start(ws)
        rows = run(ws, conn, n, sample)
    finally:
        server.stop(ws)
        ws.close()
        shutil.rmtree(root, ignore_errors=True)
    print(f"Label Studio {server.LS_VERSION}, {n:,} pairs; one-by-one figures timed on {sample} tasks and extrapolated")
    print(f"{'step':<50} {'seconds':>9} {'requests':>9}")
    for name, seconds, requests in rows:
        print(f"{name:<50} {seconds:>9.1f} {requests:>9,}")
    push, push_naive, pull, pull_naive = rows
    print(f"push speed-up: {push_naive[1] / push[1]:.1f}x time, {push_naive[2] / push[2]:.0f}x fewer requests")
    print(f"pull speed-up: {pull_naive[1] / pull[1]:.1f}x time, {pull_naive[2] / pull[2]:.0f}x fewer requests")


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
