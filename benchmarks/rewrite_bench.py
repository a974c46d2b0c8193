"""Rewrite throughput against a local OpenAI-compatible server with a fixed latency per request.

Measured side by side in one run:
1. widespec `rewrite` (LLM rewriter, concurrency 32) over 2,000 base prompts, the server answering every
   request after 200 ms;
2. a plain sequential loop calling the same server with the `openai` client, one request after another
   (timed on a sample of 50 calls and extrapolated to 2,000, as stated in its output);
3. for reference, the bare `openai` async client at the same concurrency doing nothing else (800 requests);
4. a rerun over 10,000 rows: of the finished pass (nothing pending), and with the variant rows removed so
   that all 10,000 answers come from the response cache (no call may be made).

Usage: python benchmarks/rewrite_bench.py [--prompts 2000] [--latency 0.2] [--concurrency 32] [--cached-rows 10000]
       python benchmarks/rewrite_bench.py --rebuild-only   # part 4 alone, without the slow server
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI, OpenAI
from openai.types.chat import ChatCompletion

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from curation.core.config import set_value  # noqa: E402
from curation.core.console import settings as console_settings  # noqa: E402
from curation.core.workspace import Workspace, init_workspace  # noqa: E402
from curation.prompts.importing import import_prompts  # noqa: E402
from curation.rewrite.prompting import build_messages, load_template  # noqa: E402
from curation.rewrite.stage import requests_for, run_rewrite, view_pass  # noqa: E402

KEY_ENV = "WIDESPEC_BENCH_KEY"
SUBJECTS = [
    "an old fisherman", "a tabby cat", "a red bicycle", "a wooden rowing boat", "a street musician",
    "a bowl of ramen", "a lighthouse", "a vintage car", "a flock of pigeons", "a ballet dancer",
    "a stone bridge", "a wedding cake", "a mountain goat", "a greenhouse", "a chess player",
    "a yellow tram", "a sleeping dog", "a carousel", "a glass vase of tulips", "a windmill",
    "a pair of boots", "a beekeeper", "a steam locomotive", "a snowman", "a city bus",
]  # fmt: skip
PLACES = [
    "on a busy market square", "beside a frozen lake", "in a narrow alley", "on a sandy beach",
    "in a crowded train station", "on a rooftop terrace", "in a pine forest", "inside a village bakery",
    "on a foggy pier", "in a sunflower field", "under a motorway bridge", "in a museum hall",
    "on a mountain pass", "in a school gym", "beside a canal", "in a hotel lobby", "on a farm track",
    "in a desert canyon", "at a petrol station", "in a public library",
]  # fmt: skip
TIMES = [
    "at dawn", "at noon", "at dusk", "at midnight", "in light rain", "in heavy snow", "on a windy day",
    "under a full moon", "in autumn", "in spring", "during a heatwave", "after a storm", "in thick fog",
    "on a Sunday morning", "at closing time", "in late summer", "on new year's eve", "in the blue hour",
    "under grey clouds", "in harsh sunlight",
]  # fmt: skip


def prompts(n: int) -> list[str]:
    combos = itertools.product(TIMES, PLACES, SUBJECTS)
    return [f"{s[0].upper()}{s[1:]} {p} {t}." for t, p, s in itertools.islice(combos, n)]


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    """The stand-in server in its own process, so that its threads do not share this process's GIL."""
    return serve([str(REPO / "tests" / "openai_standin.py"), "--latency", str(latency)])


def serve(arguments: list[str]) -> tuple[subprocess.Popen[str], str]:
    """A stand-in started by `python <arguments>` from the repository root, which prints its port; its base URL."""
    process = subprocess.Popen([sys.executable, *arguments], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    port = int(process.stdout.readline())
    return process, f"http://127.0.0.1:{port}/v1"


def set_section(ws: Workspace, section: str, values: dict[str, Any]) -> None:
    for key, value in values.items():
        set_value(ws.config_path, section, key, value)
    ws.reload_config()


def configure(ws: Workspace, base_url: str, concurrency: int) -> None:
    values = {
        "kind": "llm",
        "base_url": base_url,
        "model": "standin",
        "api_key_env": KEY_ENV,
        "max_concurrency": concurrency,
        "requests_per_minute": 10_000_000,
        "tokens_per_minute": 10_000_000_000,
        "timeout_s": 30,
        "batch_size": 200,
    }
    set_section(ws, "rewriter", values)


def add_prompts(ws: Workspace, texts: list[str], folder: Path, name: str) -> None:
    path = folder / f"{name}.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    import_prompts(ws, str(path))


def sequential_loop(ws: Workspace, base_url: str, sample: int) -> float:
    """Seconds per request for a plain loop: build the messages, call, parse; one request at a time."""
    client = OpenAI(base_url=base_url, api_key="bench", max_retries=0, timeout=30)
    template = load_template()
    view = view_pass(ws)
    requests = requests_for(ws, view)[:sample]
    started = time.perf_counter()
    for _, request in requests:
        response = client.chat.completions.create(
            model="standin",
            messages=build_messages(template, request, 90),  # type: ignore[arg-type]
            temperature=0.1,
            response_format={"type": "json_object"},
        )
        assert response.choices[0].message.content
    elapsed = time.perf_counter() - started
    client.close()
    return elapsed / len(requests)


def client_alone(ws: Workspace, base_url: str, concurrency: int, count: int) -> float:
    """Requests per second of the bare `openai` async client at the same concurrency, doing nothing else:
    the most any caller could get from this server, client and machine."""
    template = load_template()
    bodies = [
        {
            "model": "standin",
            "messages": build_messages(template, request, 90),
            "response_format": {"type": "json_object"},
        }
        for _, request in requests_for(ws, view_pass(ws))[:count]
    ]
    return post_all(base_url, bodies, concurrency)


def post_all(base_url: str, bodies: list[dict[str, Any]], concurrency: int) -> float:
    """Requests per second of the bare `openai` async client posting `bodies` (chat completion requests) with
    `concurrency` in flight."""

    async def run() -> float:
        client = AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0, timeout=30)
        work = iter(bodies)

        async def worker() -> None:
            for body in work:
                await client.post("/chat/completions", cast_to=ChatCompletion, body=body)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        await client.close()
        return len(bodies) / elapsed

    return asyncio.run(run())


def throughput(ws: Workspace, folder: Path, texts: list[str], args: argparse.Namespace, slow_url: str) -> None:
    """Parts 1 to 3: widespec against the slow server, beside the sequential loop and the bare client."""
    configure(ws, slow_url, args.concurrency)
    add_prompts(ws, texts[: args.prompts], folder, "first")

    per_call = sequential_loop(ws, slow_url, args.sample)
    bare_rate = client_alone(ws, slow_url, args.concurrency, min(args.prompts, 800))
    sequential_rate = 1 / per_call

    started = time.perf_counter()
    summary = run_rewrite(ws)
    elapsed = time.perf_counter() - started
    assert summary.counts["ok"] == args.prompts, summary.as_dict()
    rate = args.prompts / elapsed
    ideal = args.concurrency / args.latency

    print(f"server latency {args.latency * 1000:.0f} ms per request; {args.prompts} prompts")
    print(
        f"sequential loop : {sequential_rate:7.2f} prompts/s (timed on {args.sample} calls, "
        f"{per_call * 1000:.0f} ms each; extrapolated to {args.prompts}: {args.prompts * per_call:.0f} s)"
    )
    print(
        f"widespec c={args.concurrency:<3} : {rate:7.2f} prompts/s ({args.prompts} prompts in {elapsed:.1f} s, "
        f"{summary.counts['calls']} calls)"
    )
    print(f"ratio           : {rate / sequential_rate:.1f}x the sequential loop")
    print(f"ideal           : {ideal:.0f} prompts/s (concurrency / latency); reached {rate / ideal:.2f} of ideal")
    print(
        f"reference       : the bare openai client at c={args.concurrency} on this server and machine, doing "
        f"nothing else: {bare_rate:.2f} requests/s ({bare_rate / ideal:.2f} of ideal); widespec reached "
        f"{rate / bare_rate:.2f} of it"
    )


def rebuild(ws: Workspace, folder: Path, texts: list[str], first: int, args: argparse.Namespace, fast_url: str) -> None:
    """Part 4: fill the pass up to --cached-rows rows against a zero-latency server, then time the reruns."""
    configure(ws, fast_url, args.concurrency)
    add_prompts(ws, texts[first : args.cached_rows], folder, "rest")
    filled = run_rewrite(ws)
    assert filled.counts["ok"] == args.cached_rows - first, filled.as_dict()
    rows = ws.store.count("variant")
    started = time.perf_counter()
    finished = run_rewrite(ws)
    rerun_s = time.perf_counter() - started
    assert sum(finished.counts.values()) == 0
    ws.store.delete("variant", ws.store.ids("variant"))
    configure(ws, "http://127.0.0.1:9/v1", args.concurrency)  # nothing listens there: any call would fail
    started, cpu_started = time.perf_counter(), time.process_time()
    cached = run_rewrite(ws)
    cached_s, cached_cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    assert cached.counts["cached"] == rows and cached.counts["calls"] == 0, cached.as_dict()
    print(f"rerun of the finished pass, {rows} rows: {rerun_s:.2f} s (0 calls)")
    print(
        f"rerun with every answer from the response cache, {rows} rows: {cached_s:.2f} s "
        f"({rows / cached_s:.0f} rows/s, 0 calls; goal < 2 s; {cached_cpu_s:.2f} s of CPU in this process)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="rewrite throughput benchmark")
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sample", type=int, default=50, help="Calls timed for the sequential loop.")
    parser.add_argument("--cached-rows", type=int, default=10_000)
    parser.add_argument(
        "--rebuild-only",
        action="store_true",
        help="Skip parts 1 to 3 (the slow server): fill the pass at zero latency and time only the reruns.",
    )
    args = parser.parse_args()
    os.environ[KEY_ENV] = "bench-key"
    console_settings.quiet = True
    texts = prompts(max(args.prompts, args.cached_rows))
    # Part 4 imports its prompts after part 1's. With --rebuild-only all of them arrive in one import: two
    # imports within the same second would tie on created_at, and the arrival order (so the plan) would then
    # differ between the fill and the rebuild.
    first = 0 if args.rebuild_only else args.prompts
    servers = [start_server(0.0)] + ([] if args.rebuild_only else [start_server(args.latency)])
    try:
        with tempfile.TemporaryDirectory(prefix="widespec-bench-") as tmp:
            folder = Path(tmp)
            ws = init_workspace(folder / "ws")
            if not args.rebuild_only:
                throughput(ws, folder, texts, args, servers[1][1])
            rebuild(ws, folder, texts, first, args, servers[0][1])
            ws.close()
    finally:
        for server, _ in servers:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
