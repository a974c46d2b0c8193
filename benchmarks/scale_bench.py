"""Scale benchmark: how `widespec status`, `filter`, `export` and `report` grow from a small to a large workspace.

    python benchmarks/scale_bench.py [--sizes 2000 20000] [--image-size 32] [--profile]

1. For each size N builds a workspace of N complete, scored, CLIP-accepted pairs with small real PNGs (the export
   benchmark's builder, in its own process; not timed), with their generator in `generator.models` and
   `export.rows = "accepted"` so that export has rows to write.
2. Runs, in each workspace and in this order, `widespec status --json`, `widespec filter`,
   `widespec export --version 0.1.0` and `widespec report`, each in a fresh Python process as a curator runs them
   from the shell (interpreter start and imports count), and prints each command's seconds at both sizes, their
   ratio, and the export process's peak RSS at both sizes.
3. Prints the import time of the modules `status` needs (best of 3 fresh processes), and `status --json` at the
   larger size split into imports and work. `--profile` adds the slowest imports (-X importtime) and the top 10
   cumulative entries of a cProfile of that work (imports paid before profiling).

The goals (from the scale issue, for 2,000 and 20,000 pairs) are printed next to the figures: status under 2 s at
the larger size, every command's large/small ratio at most 1.2x the size ratio (12 for 10x), and export's peak
RSS at the larger size at most 1.5x that at the smaller.

Peak RSS is the child's ru_maxrss from wait4. This process imports none of widespec (the workspaces are built in
children), so the floor a child inherits from its parent's address space at exec is this small interpreter's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    "status --json": ["status", "--json"],
    "filter": ["filter"],
    "export --version 0.1.0": ["export", "--version", "0.1.0"],
    "report": ["report"],
}
EXPORT = "export --version 0.1.0"
STATUS_GOAL_S = 2.0
RSS_RATIO_GOAL = 1.5
RATIO_SLACK = 1.2  # a command may grow 1.2x faster than the workspace: 12 for 2,000 -> 20,000 pairs


def child_env() -> dict[str, str]:
    """This checkout's code first on the path for every child, and no network."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    return env


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mb: float
    stdout: str
    stderr: str


def run_python(args: list[str]) -> Run:
    """Run `python ARGS` in a fresh process; its wall seconds and its own peak RSS (wait4's ru_maxrss)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, *args], stdout=out, stderr=err, env=child_env(), cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        run = Run(
            seconds, usage.ru_maxrss / 1024, out.read().decode(errors="replace"), err.read().decode(errors="replace")
        )
        if proc.returncode != 0:
            sys.exit(f"python {' '.join(args)} exited {proc.returncode}:\n{run.stderr}")
        return run


def widespec(root: Path, args: list[str]) -> Run:
    """One `widespec` command as the entry point runs it."""
    return run_python(["-m", "curation.app.cli", "--workspace", str(root), *args])


def build(root: Path, pairs: int, image_size: int) -> float:
    """A workspace of `pairs` accepted pairs, built in a child process; the seconds it took."""
    code = (
        "from pathlib import Path; "
        "from benchmarks.export_bench import build_workspace; "
        "from benchmarks.synthetic_releases import GENERATOR; "
        "from curation.core.config import set_value; "
        f"config = build_workspace(Path({str(root)!r}), {pairs}, {image_size}) / 'widespec.toml'; "
        "set_value(config, 'generator', 'models', [GENERATOR['model']]); "
        "set_value(config, 'export', 'rows', 'accepted')"
    )
    return run_python(["-c", code]).seconds


def start_seconds(code: str, tries: int = 3) -> float:
    """Best of `tries` fresh processes running `code`, e.g. an import (interpreter start included)."""
    return min(run_python(["-c", code]).seconds for _ in range(tries))


# Runs `widespec status --json` in one process, timing the imports the command needs apart from the work; with
# PROFILE set, profiles the work and prints the top 10 cumulative entries after a line `--- profile`.
# (The status run is the workspace's fifth command: after filter, export and report.)
STATUS_SPLIT = """
import io, os, sys, time
started = time.perf_counter()
import curation.app.cli as cli
import curation.app.status, curation.app.text_context
imported = time.perf_counter()
out, sys.stdout = sys.stdout, io.StringIO()
def work():
    try:
        cli.app(["--workspace", sys.argv[1], "status", "--json"])
    except SystemExit as exc:
        assert not exc.code, exc.code
if os.environ.get("PROFILE"):
    import cProfile, pstats
    profile = cProfile.Profile()
    profile.runcall(work)
else:
    work()
done = time.perf_counter()
sys.stdout = out
print(imported - started, done - imported)
if os.environ.get("PROFILE"):
    print("--- profile")
    # The command's own calls: typer's dispatch frames and this script's are left out.
    pstats.Stats(profile, stream=sys.stdout).sort_stats("cumulative").print_stats(r"^(?!.*(/typer/|<string>))", 10)
"""


def status_split(root: Path) -> tuple[float, float]:
    """`status --json` in one fresh process: seconds importing and seconds working."""
    imports, work = run_python(["-c", STATUS_SPLIT, str(root)]).stdout.split()
    return float(imports), float(work)


def status_profile(root: Path) -> str:
    """The top 10 cumulative entries of a cProfile of `status --json`'s work (imports paid before), in its own
    process (the profiler's overhead stays out of `status_split`)."""
    os.environ["PROFILE"] = "1"
    try:
        text = run_python(["-c", STATUS_SPLIT, str(root)]).stdout
    finally:
        os.environ.pop("PROFILE", None)
    return text.partition("--- profile\n")[2]


def slowest_imports(module: str, top: int = 10) -> list[tuple[int, str]]:
    """The `top` imports by cumulative microseconds in `python -X importtime -c "import MODULE"`."""
    found = []
    for line in run_python(["-X", "importtime", "-c", f"import {module}"]).stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            found.append((int(parts[1]), parts[2].rstrip()))
    return sorted(found, reverse=True)[:top]


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs=2, default=[2_000, 20_000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument(
        "--profile", action="store_true", help="Where status --json spends its time at LARGE: imports, cProfile."
    )
    args = parser.parse_args()
    small, large = sorted(args.sizes)
    scale = large / small
    ratio_goal = RATIO_SLACK * scale
    started = time.perf_counter()

    results: dict[int, dict[str, Run]] = {}
    with tempfile.TemporaryDirectory(prefix="widespec-scale-bench-") as tmp:
        roots = {n: Path(tmp) / f"ws-{n}" for n in (small, large)}
        for n, root in roots.items():
            seconds = build(root, n, args.image_size)
            print(f"built {n:,} pairs ({args.image_size}x{args.image_size} PNGs) in {seconds:.1f} s (not timed below)")
            results[n] = {name: widespec(root, command) for name, command in COMMANDS.items()}
            written = results[n][EXPORT].stdout.strip().splitlines()
            print(f"  export at {n:,}: {written[-1] if written else '(no output)'}")
        imports, work = status_split(roots[large])
        profile = status_profile(roots[large]) if args.profile else ""

    print()
    print(f"{'command':<24}{small:>10,}{large:>10,}   ratio (goal <= {ratio_goal:g})")
    for name in COMMANDS:
        a, b = results[small][name].seconds, results[large][name].seconds
        ratio = b / a
        print(f"{name:<24}{a:>9.2f}s{b:>9.2f}s{ratio:>8.2f}   {verdict(ratio <= ratio_goal)}")
    status_s = results[large]["status --json"].seconds
    print(
        f"status --json at {large:,} pairs: {status_s:.2f} s (goal < {STATUS_GOAL_S:g} s): {verdict(status_s < STATUS_GOAL_S)}"
    )
    rss_small, rss_large = results[small][EXPORT].peak_mb, results[large][EXPORT].peak_mb
    print(
        f"export peak RSS: {rss_small:.0f} MB at {small:,}, {rss_large:.0f} MB at {large:,}, ratio "
        f"{rss_large / rss_small:.2f} (goal <= {RSS_RATIO_GOAL:g}): {verdict(rss_large / rss_small <= RSS_RATIO_GOAL)}"
    )
    print()
    for code in ("pass", "import curation.app.status", "import curation.app.cli"):
        print(f"python -c '{code}': {start_seconds(code):.2f} s (best of 3)")
    print(f"status --json at {large:,} pairs in one process: imports {imports:.2f} s, work {work:.2f} s")
    if args.profile:
        print("\nslowest imports of curation.app.status (cumulative, -X importtime):")
        for micros, name in slowest_imports("curation.app.status"):
            print(f"{micros / 1e6:8.2f} s {name}")
        print(f"\ntop 10 cumulative, status --json work at {large:,} pairs:\n{profile.rstrip()}")
    print(f"\nwhole benchmark: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
