"""`widespec rewrite` and `widespec taxonomy`: the rewrite stage on the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from curation.app.common import STAGES, emit_json, opened, state
from curation.core.console import info, out_console, warn
from curation.core.taxonomy import Taxonomy, from_document, load_taxonomy, read_document
from curation.core.workspace import is_workspace, open_workspace

app = typer.Typer()  # its commands are added to the main app by curation.app.cli

taxonomy_app = typer.Typer(help="Inspect and check anti-aesthetic taxonomies.", no_args_is_help=True)
app.add_typer(taxonomy_app, name="taxonomy", rich_help_panel=STAGES)


def _taxonomy_rows(taxonomy: Taxonomy) -> list[dict[str, Any]]:
    families = dict(taxonomy.families)
    return [
        {
            "family": families[d.family],
            "id": d.id,
            "mild": d.intensities["mild"],
            "moderate": d.intensities["moderate"],
            "extreme": d.intensities["extreme"],
            "probe_anti": d.probe_anti,
            "probe_clean": d.probe_clean,
            "paper_dimension": d.paper_dimension,
        }
        for d in taxonomy.dimensions.values()
    ]


@taxonomy_app.command("show")
def taxonomy_show(
    file: Annotated[
        str | None, typer.Option("--file", help="A taxonomy file or builtin:NAME (default: the workspace's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Print the taxonomy as a table: family, dimension, intensity wording, CLIP probes."""
    if file is None and is_workspace(state.workspace):
        with open_workspace(state.workspace) as ws:
            taxonomy = load_taxonomy(ws.settings.taxonomy.path, ws.root)
    else:
        taxonomy = load_taxonomy(file or "builtin:widespec-core")
    rows = _taxonomy_rows(taxonomy)
    if as_json:
        emit_json(
            {
                **taxonomy.provenance(),
                "incompatible": sorted(sorted(p) for p in taxonomy.incompatible),
                "dimensions": rows,
            }
        )
        return
    table = Table(
        title=f"{taxonomy.name} {taxonomy.version}: {len(taxonomy.families)} families, {len(rows)} dimensions "
        f"(hash {taxonomy.hash[:12]})",
        title_justify="left",
    )
    for column in ("family", "dimension", "mild", "moderate", "extreme", "probe: anti / clean"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["family"], row["id"], row["mild"], row["moderate"], row["extreme"],
            f"{row['probe_anti']} / {row['probe_clean']}",
        )  # fmt: skip
    out_console.print(table)
    if taxonomy.incompatible:
        pairs = ", ".join(" + ".join(sorted(p)) for p in sorted(taxonomy.incompatible, key=sorted))
        out_console.print(f"never combined: {pairs}", highlight=False)


@taxonomy_app.command("validate")
def taxonomy_validate(file: Annotated[Path, typer.Argument(help="Taxonomy JSON file to check.")]) -> None:
    """Check a taxonomy file against the schema, unique ids and incompatible pairs."""
    taxonomy = from_document(read_document(file), str(file))
    out_console.print(
        f"{file}: valid taxonomy {taxonomy.name} {taxonomy.version}, {len(taxonomy.families)} families, "
        f"{len(taxonomy.dimensions)} dimensions, hash {taxonomy.hash}",
        highlight=False,
    )


def _print_plan(rewriter_kind: str, view: Any, as_json: bool) -> None:
    from curation.rewrite.plan import coverage

    dimensions, intensities, sizes = coverage(view.plan)
    done, _, _ = coverage(v for v in view.plan if v.id in view.stored)
    families = dict(view.taxonomy.families)
    data = {
        "rewriter": rewriter_kind,
        "taxonomy": view.taxonomy.provenance(),
        "planned": len(view.plan),
        "stored": len(view.stored),
        "pending": len(view.pending),
        "dimensions": {d: dimensions.get(d, 0) for d in view.taxonomy.dimensions},
        "intensities": dict(sorted(intensities.items())),
        "dimensions_per_variant": {str(k): v for k, v in sorted(sizes.items())},
    }
    if as_json:
        emit_json(data)
        return
    table = Table(title=f"rewrite plan: {data['planned']} variants", title_justify="left")
    for column in ("family", "dimension", "planned", "stored"):
        table.add_column(column, justify="right" if column in ("planned", "stored") else "left")
    for dimension in view.taxonomy.dimensions.values():
        table.add_row(
            families[dimension.family],
            dimension.id,
            str(dimensions.get(dimension.id, 0)),
            str(done.get(dimension.id, 0)),
        )
    out_console.print(table)
    out_console.print(
        f"intensities: {', '.join(f'{k} {v}' for k, v in data['intensities'].items())}; dimensions per variant: "
        + ", ".join(f"{k}: {v}" for k, v in data["dimensions_per_variant"].items()),
        highlight=False,
    )
    out_console.print(
        f"planned {data['planned']}, stored {data['stored']}, pending {data['pending']} "
        f"(rewriter {data['rewriter']}, taxonomy {view.taxonomy.name} {view.taxonomy.version})",
        highlight=False,
    )


@app.command(rich_help_panel=STAGES)
def rewrite(
    plan: Annotated[bool, typer.Option("--plan", help="Show the plan and its coverage; call nothing.")] = False,
    estimate: Annotated[
        bool, typer.Option("--estimate", help="Print calls, tokens and cost of the pending work; call nothing.")
    ] = False,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Ignore cached answers for the variants made now (re-cached).")
    ] = False,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Also redo variants stored as failed.")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Rewrite at most N pending variants.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Rewrite base prompts into anti-aesthetic variants (lexicon offline, or any OpenAI-compatible LLM)."""
    from curation.rewrite.stage import estimate_pass, run_rewrite, view_pass

    with opened() as ws:
        if plan:
            _print_plan(ws.settings.rewriter.kind, view_pass(ws, retry_failed=retry_failed, limit=limit), as_json)
            from curation.app.text_context import max_words_check

            if (warning := max_words_check(ws)) is not None:
                warn(warning)
            return
        if estimate:
            result = estimate_pass(ws, refresh=refresh, limit=limit)
            if as_json:
                emit_json(result)
                return
            cost = "unknown (set rewriter.prices)" if result["cost"] is None else f"${result['cost']:.4f}"
            out_console.print(
                f"{result['variants']} variants pending ({result['kind']}): {result['calls']} calls, "
                f"{result['cached']} cached, ~{result['prompt_tokens']} tokens in, "
                f"~{result['completion_tokens']} tokens out at most, cost {cost}",
                highlight=False,
            )
            return
        summary = run_rewrite(ws, refresh=refresh, limit=limit, retry_failed=retry_failed)
    data = summary.as_dict()
    if as_json:
        emit_json(data)
        return
    if data["blocked_prompts"]:
        info(f"{data['blocked_prompts']} base prompts blocked by the safety screen")
    out_console.print(
        ("rewrite: nothing to do; " if data["run_id"] is None else f"rewrite run {data['run_id']}: ")
        + f"ok {data['ok']}, failed {data['failed']}, refused {data['refused']}, "
        + f"blocked {data['blocked']} ({data['calls']} calls, {data['cached']} from cache); "
        + f"{data['stored_before']} of {data['planned']} planned were already stored",
        highlight=False,
    )
