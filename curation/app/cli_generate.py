"""`widespec generate`: paired reference images for every variant."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from curation.app.common import EXECUTOR_HELP, STAGES, emit_json, opened
from curation.core.console import out_console
from curation.core.contracts import load_schema
from curation.core.errors import InputError

app = typer.Typer()  # its commands are added to the main app by curation.app.cli

DEVICE_PATTERN: str = load_schema("config")["properties"]["generator"]["properties"]["device"]["pattern"]


@app.command(rich_help_panel=STAGES)
def generate(
    shard: Annotated[
        str | None, typer.Option(help="Render only shard I of N (I/N), e.g. one process per GPU: 0/4 … 3/4.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Render at most N images this run.")] = None,
    device: Annotated[
        str | None, typer.Option(help="Device for this run, overriding generator.device (e.g. cuda:1 for shard 1).")
    ] = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Render failed images again.")] = False,
    executor: Annotated[str | None, typer.Option(help=EXECUTOR_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Render the base and variant image of every pair (same seed and settings); reruns render only what is missing."""
    from curation.generate.seeds import parse_shard
    from curation.generate.stage import generate as run_generate

    shard_range = parse_shard(shard) if shard else (0, 1)
    if device is not None and not re.fullmatch(DEVICE_PATTERN, device):
        raise InputError(f"--device {device!r}: expected auto, cpu, cuda, cuda:N or mps")
    with opened(executor) as ws:
        result = run_generate(ws, shard=shard_range, limit=limit, retry_failed=retry_failed, device=device)
    if as_json:
        emit_json(result.as_dict())
        return
    if result.waiting and not result.models:
        out_console.print(result.waiting, highlight=False)
        return
    out_console.print(
        f"rendered {result.ok} ok, {result.failed} failed in {result.seconds:.1f} s "
        f"({result.images_per_second:.2f} images/s)",
        highlight=False,
    )
    for model in result.models:
        note = " (random weights: test images, not research data)" if model["random_weights"] else ""
        out_console.print(
            f"  {model['model']} @ {model['revision']}: {model['ok']} ok, {model['failed']} failed{note}",
            highlight=False,
        )
    if result.failed:
        out_console.print("failed renders keep their error; `widespec generate --retry-failed` tries them again")
