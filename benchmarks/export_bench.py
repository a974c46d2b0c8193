"""Export benchmark: widespec's streamed export against the naive `datasets` way, and widespec's memory growth.

    python benchmarks/export_bench.py [--pairs 10000] [--small 1000] [--image-size 32]

1. Builds a workspace of N accepted pairs with small noise PNGs (not timed).
2. Times, side by side in this process, on the same pairs:
   - widespec: `export_version` (select, build and validate rows, stream parquet shards with the original PNG
     bytes, card, plots, gallery);
   - naive: the same rows with the PNGs opened as PIL images (as a generator hands them over), then
     `Dataset.from_list(rows, features)` and `to_parquet`;
   both end to end (store reads and row building included, identical in both) and the writing stage alone.
3. Measures widespec's peak RSS exporting N pairs and `--small` pairs, each in a fresh subprocess.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def build_workspace(root: Path, pairs: int, image_size: int) -> Path:
    from benchmarks.synthetic_releases import PairSpec, add_pairs
    from curation.core.console import settings
    from curation.core.workspace import init_workspace

    settings.quiet = True
    ws = init_workspace(root)
    for start in range(0, pairs, 1000):
        add_pairs(ws, [PairSpec()] * min(1000, pairs - start), start=start, image_size=image_size)
    ws.close()
    return root


def widespec_export(root: Path, version: str) -> int:
    from curation.core.console import settings
    from curation.core.workspace import open_workspace
    from exports.export import export_version

    settings.quiet = True
    with open_workspace(root) as ws:
        return export_version(ws, version).rows


def selected_rows(root: Path) -> list[dict[str, object]]:
    """The rows an export selects, images as sha256 references (the part both contenders share)."""
    from curation.core.scorer import configured_scorer
    from curation.core.workspace import open_workspace
    from curation.domain.evidence import pair_records
    from exports.rows import build_row

    with open_workspace(root) as ws:
        _, records = pair_records(ws.store)
        mode, license_id = ws.settings.export.rows, ws.settings.project.license
        scorer = configured_scorer(ws.store, ws.settings.scorer)
        return [build_row(r, license=license_id, scorer=scorer) for r in records if r.fate(mode).placement == "train"]


def naive_write(root: Path, rows: list[dict[str, object]], out: Path) -> None:
    """The usual way: PIL images in a list of rows, Dataset.from_list, to_parquet."""
    from datasets import Dataset
    from PIL import Image

    from curation.core.images import ImageStore
    from exports.writer import FEATURES, IMAGE_COLUMNS

    images = ImageStore(root / "images")
    with_pil = [
        {**row, **{c: Image.open(io.BytesIO(images.read(row[c]["bytes"]))) for c in IMAGE_COLUMNS}}  # type: ignore[index]
        for row in rows
    ]
    Dataset.from_list(with_pil, features=FEATURES).to_parquet(str(out))


def widespec_write(root: Path, rows: list[dict[str, object]], out: Path) -> None:
    """widespec's shard writer alone: original PNG bytes streamed into capped parquet shards."""
    from curation.core.images import ImageStore
    from exports.writer import ShardWriter

    writer = ShardWriter(out, "data", ImageStore(root / "images").read, 500 * 2**20)
    for row in rows:
        writer.add(row)
    writer.close()


def naive_export(root: Path, out: Path) -> int:
    """The naive export end to end: select and build the same rows, then `naive_write`."""
    rows = selected_rows(root)
    naive_write(root, rows, out)
    return len(rows)


def peak_rss_mb() -> float:
    """This process's peak RSS in MB.

    On Linux VmHWM is read: ru_maxrss survives exec, so a child started by a large parent would report the parent's
    peak; VmHWM belongs to the child's own address space.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_peak(root: Path, version: str) -> float:
    """Peak RSS (MB) of a fresh Python process that runs one widespec export."""
    code = (
        f"import sys; sys.argv = ['x']; sys.path.insert(0, {str(ROOT)!r}); "
        "from benchmarks.export_bench import widespec_export, peak_rss_mb; "
        f"widespec_export(__import__('pathlib').Path({str(root)!r}), {version!r}); print(peak_rss_mb())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="widespec-export-bench-") as tmp:
        tmpdir = Path(tmp)
        started = time.perf_counter()
        big = build_workspace(tmpdir / "big", args.pairs, args.image_size)
        small = build_workspace(tmpdir / "small", args.small, args.image_size)
        print(
            f"built workspaces of {args.pairs} and {args.small} pairs ({args.image_size}x{args.image_size} PNGs) "
            f"in {time.perf_counter() - started:.1f} s"
        )
        for path in (big / "images").rglob("*.png"):  # warm the page cache for both contenders
            path.read_bytes()

        import datasets  # noqa: F401  (imports paid before timing, for both contenders)
        import matplotlib.pyplot  # noqa: F401

        import exports.export  # noqa: F401

        started = time.perf_counter()
        rows = widespec_export(big, "1.0.0")
        widespec_s = time.perf_counter() - started
        started = time.perf_counter()
        naive_rows = naive_export(big, tmpdir / "naive.parquet")
        naive_s = time.perf_counter() - started
        assert rows == naive_rows == args.pairs, (rows, naive_rows)
        print(
            f"end to end, {rows} pairs (same store reads and row building in both): widespec export "
            f"{widespec_s:.2f} s (with card, plots, gallery, diff), naive {naive_s:.2f} s, "
            f"speed-up {naive_s / widespec_s:.1f}x (goal >= 5x)"
        )

        prepared = selected_rows(big)
        started = time.perf_counter()
        widespec_write(big, prepared, tmpdir / "shards")
        write_s = time.perf_counter() - started
        started = time.perf_counter()
        naive_write(big, prepared, tmpdir / "naive-write.parquet")
        naive_write_s = time.perf_counter() - started
        print(
            f"writing stage only, same {len(prepared)} prepared rows: widespec shard writer {write_s:.2f} s, "
            f"naive Dataset.from_list(PIL) + to_parquet {naive_write_s:.2f} s, speed-up "
            f"{naive_write_s / write_s:.1f}x (goal >= 5x)"
        )

        peak_small = child_peak(small, "2.0.0")
        peak_big = child_peak(big, "2.0.0")
        print(
            f"widespec peak RSS: {peak_small:.0f} MB at {args.small} pairs, {peak_big:.0f} MB at {args.pairs} pairs, "
            f"ratio {peak_big / peak_small:.2f} (goal <= 1.5)"
        )


if __name__ == "__main__":
    main()
