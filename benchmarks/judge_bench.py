"""Judge throughput against a local vision server with a fixed latency per request, and the cost of preparing
the images a request carries.

Measured side by side in one run:
1. widespec `judge` (both orders, `judge.max_concurrency` 32) over `--pairs` pairs of 256² PNGs (stored small, so
   they travel as their own bytes: this part measures the judge's pipeline, not PNG encoding), the vision
   stand-in serving from its own process and answering every request after 200 ms without decoding the images
   (`--default always_a`). Requests per second against concurrency / latency (the most `max_concurrency`
   requests in flight can give), the most requests in flight at once (counted on the client), and how often
   each image was prepared (every image once: both orders of a pair reuse it);
2. a plain sequential loop through the `openai` client on the first pairs: read both images, make the data URLs,
   call A/B then B/A, parse the answers; one request after another (timed on `--sample` calls);
3. the rerun: of the finished pass (nothing pending), and with the judgment records removed and the judge pointed
   at a port where nothing listens, so that every answer must come from the response cache (0 calls);
4. the preparation cost per pair for 1024² PNGs (gradient and noise, sized like generated images): each scaled to
   `max_side` 768 as PNG and as JPEG (best of `--repeat`), two images per pair, both orders reusing them.

Usage: python benchmarks/judge_bench.py [--pairs 320] [--latency 0.2] [--concurrency 32] [--sample 20]
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from openai import OpenAI
from openai.types.chat import ChatCompletion
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from benchmarks.rewrite_bench import post_all, serve, set_section  # noqa: E402
from benchmarks.synthetic_pairs import add_pair  # noqa: E402
from curation.core.console import settings as console_settings  # noqa: E402
from curation.core.judges import load_template  # noqa: E402
from curation.core.llm import ChatTransport  # noqa: E402
from curation.core.workspace import Workspace, init_workspace  # noqa: E402
from curation.judge.images import PreparedImages, data_url  # noqa: E402
from curation.judge.prompting import build_messages, interpret, response_format  # noqa: E402
from curation.judge.stage import JudgeOptions, JudgeUnit, pending_units, run_judge  # noqa: E402

KEY_ENV = "WIDESPEC_BENCH_JUDGE_KEY"
MODEL = "standin-vl"


class Textures:
    """Images that look like renders to an encoder (smooth colour fields with grain): a few noise fields made once,
    each image a distinct colour, wave and shift of them, so that making hundreds stays cheap."""

    def __init__(self, size: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.size = size
        self.fine = [rng.normal(0, 1, (size, size, 3)).astype(np.float32) for _ in range(4)]
        y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
        self.x, self.y = x, y

    def png(self, index: int, rough: bool) -> bytes:
        rng = np.random.default_rng(index)
        colour = rng.uniform(50, 190, 3).astype(np.float32)
        fx, fy = rng.uniform(0.5, 2.5, 2)
        wave = 60 * np.sin(2 * np.pi * (self.x * fx + self.y * fy))[..., None] * np.array([1, 0.7, 0.4], np.float32)
        grain = np.roll(self.fine[index % len(self.fine)], index * 37, axis=(0, 1)) * (12 if rough else 3)
        pixels = np.clip(colour + wave + grain, 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        return buffer.getvalue()


def start_standin(latency: float) -> tuple[subprocess.Popen[str], str]:
    """The vision stand-in in its own process (its request threads do not share this process's GIL), answering
    "A" without decoding the images."""
    return serve(["-m", "tests.vision_standin", "--latency", str(latency), "--default", "always_a"])


def configure(ws: Workspace, base_url: str, concurrency: int) -> None:
    values = {
        "base_url": base_url,
        "model": MODEL,
        "api_key_env": KEY_ENV,
        "max_concurrency": concurrency,
        "requests_per_minute": 10_000_000,
        "tokens_per_minute": 10_000_000_000,
        "timeout_s": 30,
        "max_attempts": 1,
        "orders": "both",
        "max_side": 768,
        "image_format": "png",
    }
    set_section(ws, "judge", values)


class Probe:
    """Counts, from inside this process, each image preparation (by sha256) and the requests in flight: the
    stage's own classes wrapped for the duration of a run, nothing else changed."""

    def __init__(self) -> None:
        self.prepared: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests = 0
        self.prepare_s = 0.0

    @contextmanager
    def watching(self) -> Iterator[Probe]:
        prepare: Callable[[PreparedImages, str], str] = PreparedImages._prepare
        complete: Any = ChatTransport._complete
        probe = self

        def counted_prepare(images: PreparedImages, sha256: str) -> str:
            started = time.perf_counter()
            url = prepare(images, sha256)
            probe.prepare_s += time.perf_counter() - started  # worker threads: += on a float under the GIL
            probe.prepared[sha256] += 1
            return url

        async def counted_complete(transport: ChatTransport, messages: list[dict[str, Any]], mode: Any) -> Any:
            probe.requests += 1
            probe.in_flight += 1
            probe.max_in_flight = max(probe.max_in_flight, probe.in_flight)
            try:
                return await complete(transport, messages, mode)
            finally:
                probe.in_flight -= 1

        PreparedImages._prepare = counted_prepare  # type: ignore[method-assign,assignment]
        ChatTransport._complete = counted_complete  # type: ignore[method-assign,assignment]
        try:
            yield self
        finally:
            PreparedImages._prepare = prepare  # type: ignore[method-assign,assignment]
            ChatTransport._complete = complete  # type: ignore[method-assign,assignment]


def distinct_images(ws: Workspace) -> set[str]:
    return {sha for unit in pending_units(ws, JudgeOptions())[1] for sha in (unit.anti_sha, unit.base_sha)}


def requests(ws: Workspace, calls: int) -> Iterator[tuple[JudgeUnit, dict[str, Any]]]:
    """The first pairs' requests as a plain loop makes them: per pair, read both images and make their data URLs,
    then the A/B and the B/A request."""
    section = ws.settings.judge
    template = load_template()
    for unit in pending_units(ws, JudgeOptions(limit=(calls + 1) // 2))[1]:
        anti, base = (
            data_url(ws.images.read(s), section.max_side, section.image_format) for s in (unit.anti_sha, unit.base_sha)
        )
        for first, second in ((anti, base), (base, anti)):
            messages = build_messages(template, unit.prompt, unit.qualities, first, second)
            yield (
                unit,
                {
                    "model": MODEL,
                    "messages": messages,
                    "temperature": 0.0,
                    "response_format": response_format("json_schema"),
                },
            )


def sequential_loop(ws: Workspace, base_url: str, sample: int) -> float:
    """Seconds per request for a plain loop: the requests made as they are sent, one after another, each answer
    parsed and checked."""
    client = OpenAI(base_url=base_url, api_key="bench", max_retries=0, timeout=30)
    calls = 0
    started = time.perf_counter()
    for unit, request in requests(ws, sample):
        response: ChatCompletion = client.chat.completions.create(**request)
        answer = {"content": response.choices[0].message.content, "refusal": None, "finish_reason": "stop"}
        assert interpret(answer, unit.qualities).status == "ok"
        calls += 1
    elapsed = time.perf_counter() - started
    client.close()
    return elapsed / calls


def client_alone(ws: Workspace, base_url: str, concurrency: int, count: int) -> float:
    """Requests per second of the bare `openai` async client at the same concurrency with the same request bodies
    (made beforehand), doing nothing else: the most any caller could get from this server, client and machine
    as loaded now."""
    return post_all(base_url, [body for _, body in requests(ws, count)], concurrency)


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process so far (Linux; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(ws: Workspace, args: argparse.Namespace, url: str, server_pid: int) -> None:
    """Parts 1 and 2."""
    configure(ws, url, args.concurrency)
    images = distinct_images(ws)
    per_call = sequential_loop(ws, url, args.sample)
    naive_rate = 1 / per_call
    bare_rate = client_alone(ws, url, args.concurrency, min(2 * args.pairs, args.bare))

    probe = Probe()
    with probe.watching():
        server_cpu = cpu_seconds(server_pid)
        started, cpu_started = time.perf_counter(), time.process_time()
        result = run_judge(ws)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        server_cpu = cpu_seconds(server_pid) - server_cpu
    counts = result.counts
    assert counts["ok"] == args.pairs and counts["calls"] == 2 * args.pairs, result.as_dict()
    rate = counts["calls"] / elapsed
    ideal = args.concurrency / args.latency
    times = Counter(probe.prepared.values())

    print(f"server latency {args.latency * 1000:.0f} ms per request; {args.pairs} pairs of 256² PNGs, both orders")
    print(
        f"sequential loop : {naive_rate:7.2f} requests/s (timed on {args.sample} calls, {per_call * 1000:.0f} ms "
        f"each; extrapolated to {counts['calls']}: {counts['calls'] * per_call:.0f} s)"
    )
    print(
        f"widespec c={args.concurrency:<3} : {rate:7.2f} requests/s, {args.pairs / elapsed:.2f} pairs/s "
        f"({counts['calls']} calls in {elapsed:.2f} s; CPU: this process {cpu / elapsed:.0%} of one core, the "
        f"stand-in {server_cpu / elapsed:.0%})"
    )
    print(f"ratio           : {rate / naive_rate:.1f}x the sequential loop")
    print(
        f"ideal           : {ideal:.0f} requests/s (concurrency / latency); reached {rate / ideal:.2f} of ideal "
        f"(goal >= 0.9); most requests in flight at once: {probe.max_in_flight} (concurrency {args.concurrency})"
    )
    print(
        f"reference       : the bare openai client at c={args.concurrency} with the same bodies, doing nothing else: "
        f"{bare_rate:.2f} requests/s ({bare_rate / ideal:.2f} of ideal); widespec reached {rate / bare_rate:.2f} of it"
    )
    print(
        f"images          : {len(images)} distinct, {sum(probe.prepared.values())} preparations "
        f"({', '.join(f'{n} prepared {k}x' for k, n in sorted(times.items()))}; "
        f"{len(images - set(probe.prepared))} never prepared) for {probe.requests} requests; "
        f"{probe.prepare_s / max(1, args.pairs) * 1000:.2f} ms of preparation per pair"
    )


def rerun(ws: Workspace, args: argparse.Namespace) -> None:
    """Part 3."""
    started = time.perf_counter()
    finished = run_judge(ws)
    finished_s = time.perf_counter() - started
    calls = finished.counts.get("calls", 0)
    print(f"rerun, finished : {finished_s:.2f} s, {calls} calls (nothing pending: {finished.nothing_to_do})")
    rows = ws.store.count("judgment")
    ws.store.delete("judgment", ws.store.ids("judgment"))
    configure(ws, "http://127.0.0.1:9/v1", args.concurrency)  # nothing listens there: any call would fail
    probe = Probe()
    with probe.watching():
        started = time.perf_counter()
        cached = run_judge(ws)
        cached_s = time.perf_counter() - started
    counts = cached.counts
    assert counts["ok"] == rows and counts.get("calls", 0) == 0, cached.as_dict()
    print(
        f"rerun, cached   : {rows} judgments rebuilt from the response cache in {cached_s:.2f} s, "
        f"{counts.get('calls', 0)} calls, {counts['cached']} cached answers, {probe.requests} requests sent, "
        f"{sum(probe.prepared.values())} images prepared"
    )


def best_of(repeat: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def preparation(args: argparse.Namespace) -> None:
    """Part 4: one image's data URL at `max_side` 768, as PNG and as JPEG, from a stored 1024² PNG."""
    textures = Textures(1024, seed=1)
    pngs = [textures.png(i, rough=i % 2 == 1) for i in range(args.large)]
    print(
        f"1024² PNGs      : {args.large}, {np.mean([len(p) for p in pngs]) / 1e6:.2f} MB each on average "
        f"(smooth {len(pngs[0]) / 1e6:.2f} MB, grainy {len(pngs[1]) / 1e6:.2f} MB)"
    )
    for fmt in ("png", "jpeg"):
        seconds = [best_of(args.repeat, functools.partial(data_url, png, 768, fmt)) for png in pngs]
        sizes = [len(data_url(p, 768, fmt)) for p in pngs]
        per_pair = 2 * float(np.mean(seconds))
        print(
            f"prepare {fmt:<4}    : {np.mean(seconds) * 1000:6.1f} ms per image (best of {args.repeat}; "
            f"{min(seconds) * 1000:.1f}-{max(seconds) * 1000:.1f}), {per_pair * 1000:6.1f} ms per pair (2 images, both "
            f"orders reuse them), data URL {np.mean(sizes) / 1e6:.2f} MB each; one core prepares "
            f"{1 / per_pair:.1f} pairs/s = {2 / per_pair:.0f} requests/s"
        )
    small = Textures(256).png(0, rough=True)
    passthrough = best_of(args.repeat * 10, lambda: data_url(small, 768, "png"))
    print(f"prepare 256² png: {passthrough * 1000:.2f} ms per image (fits max_side: sent as its own bytes, base64)")


def main() -> None:
    parser = argparse.ArgumentParser(description="judge throughput benchmark")
    parser.add_argument("--pairs", type=int, default=320)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sample", type=int, default=20, help="Calls timed for the sequential loop.")
    parser.add_argument("--bare", type=int, default=320, help="Requests sent by the bare client (reference).")
    parser.add_argument("--large", type=int, default=4, help="1024² PNGs timed for the preparation cost.")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ[KEY_ENV] = "bench-key"
    console_settings.quiet = True

    textures = Textures(256)
    started = time.perf_counter()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    print(
        f"machine         : {os.cpu_count()} cores, load average {load[0]:.1f} at the start (this run and the "
        "stand-in need about one core; other load lowers every figure below)"
    )
    server, url = start_standin(args.latency)
    try:
        with tempfile.TemporaryDirectory(prefix="widespec-judge-bench-") as tmp:
            ws = init_workspace(Path(tmp) / "ws")
            for i in range(args.pairs):
                base, anti = textures.png(2 * i, False), textures.png(2 * i + 1, True)
                text = f"street scene number {i}"
                add_pair(
                    ws,
                    text,
                    f"{text}, motion blur and film grain",
                    ["motion_blur"],
                    seed=i + 1,
                    base_image=base,
                    anti_image=anti,
                )
            print(f"setup           : {args.pairs} pairs written in {time.perf_counter() - started:.1f} s (not timed)")
            throughput(ws, args, url, server.pid)
            rerun(ws, args)
            ws.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    preparation(args)
    print(f"total           : {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
