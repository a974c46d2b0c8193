"""`widespec audit`: reward models score both images of every pair under both prompts; the paper's table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from curation.app.common import RELEASES, emit_json, opened
from curation.core.console import info, out_console

if TYPE_CHECKING:
    from curation.audit.metrics import ModelAudit
    from curation.audit.population import ReleaseRef
    from curation.core.workspace import Workspace

app = typer.Typer()  # its commands are added to the main app by curation.app.cli
audit_app = typer.Typer(invoke_without_command=True, no_args_is_help=False)
app.add_typer(audit_app, name="audit", rich_help_panel=RELEASES)
MODELS_HELP = (
    "Reward models, comma-separated: built-in names (clip-l, pickscore, hpsv2.1, aesthetic, blip-itm, tiny-clip, "
    "...), names from \\[audit] models, or specs KIND:SOURCE\\[#EXTRA]."
)


def audit_table(audits: list[ModelAudit], title: str) -> Table:
    """The reward-model table: one row per model, 95% bootstrap intervals in brackets."""
    from curation.core.intervals import interval_text

    table = Table(
        title=title,
        caption="under the anti-aesthetic prompt: does the model rank the anti image first? (ties left out); "
        "control: the anti image wins under the base prompt",
    )
    for column in ("model", "pairs", "accuracy", "F1", "AUROC", "mean Δ", "ties", "control: wrong image wins"):
        table.add_column(column, justify="left" if column == "model" else "right")
    table.add_column("note")
    for audit in audits:
        f = audit.overall
        notes = [
            n for n, on in (("circular", audit.circular), (f"{audit.truncated} prompts cut", audit.truncated)) if on
        ]
        if audit.failed:
            notes.append(f"{audit.failed} failed")
        table.add_row(
            f"{audit.name}\n[dim]{audit.model}",
            str(audit.pairs),
            interval_text(f.accuracy),
            interval_text(f.f1),
            interval_text(f.auroc),
            interval_text(f.mean_delta, 4),
            str(f.ties),
            interval_text(f.wrong_image_wins),
            ", ".join(notes),
        )
    return table


def breakdown_table(audit: ModelAudit, facet: str) -> Table:
    from curation.core.intervals import interval_text

    table = Table(title=f"{audit.name} by {facet}")
    for column in (facet, "pairs", "accuracy", "AUROC", "mean Δ", "wrong image wins"):
        table.add_column(column, justify="left" if column == facet else "right")
    for group, f in audit.breakdowns.get(facet, {}).items():
        table.add_row(
            group,
            str(f.pairs),
            interval_text(f.accuracy),
            interval_text(f.auroc),
            interval_text(f.mean_delta, 4),
            interval_text(f.wrong_image_wins),
        )
    return table


@audit_app.callback()
def audit(
    ctx: typer.Context,
    models: Annotated[str | None, typer.Option("--models", help=MODELS_HELP)] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Audit this release (default: the workspace's current pairs).")
    ] = None,
    decided_by: Annotated[
        str | None, typer.Option("--decided-by", help="Only rows these decided: clip, human, judge (comma-separated).")
    ] = None,
    by: Annotated[
        str | None, typer.Option("--by", help="Also print breakdowns: generator, family, dimension, intensity.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Score both images of every pair under both prompts with each reward model; print the paper's table.
    `widespec audit images DIR` scores outside images against a population."""
    if ctx.invoked_subcommand is not None:
        return
    from curation.audit.metrics import BREAKDOWNS
    from curation.audit.publishing import CIRCULAR
    from curation.audit.specs import resolve_names
    from curation.audit.stage import AuditOptions
    from curation.audit.summary import audit_population
    from curation.core.errors import InputError

    facets = [f.strip() for f in by.split(",")] if by else []
    unknown = sorted(set(facets) - set(BREAKDOWNS))
    if unknown:
        raise InputError(f"--by: unknown {', '.join(unknown)} (known: {', '.join(BREAKDOWNS)})")
    deciders = tuple(d.strip() for d in decided_by.split(",") if d.strip()) if decided_by else None
    with opened() as ws:
        specs = resolve_names(models or "", ws.settings.audit.models)
        release = _release(ws, version)
        audits = []
        for spec in specs:
            result, summary = audit_population(ws, AuditOptions(spec, release, deciders))
            info(f"audit {spec.name}: {result.summary}")
            audits.append(summary)
    population = audits[0].population
    if as_json:
        emit_json({"population": population, "models": [a.as_dict() for a in audits]})
        return
    out_console.print(audit_table(audits, f"reward models on {population}"))
    if any(a.circular for a in audits):
        out_console.print(CIRCULAR.replace("**", ""), highlight=False)
    for audit_ in audits:
        for facet in facets:
            out_console.print(breakdown_table(audit_, facet))


def _release(ws: Workspace, version: str | None) -> ReleaseRef | None:
    """The release `--version` names, checked against its manifest; None for the workspace's pairs."""
    if version is None:
        return None
    from curation.audit.population import ReleaseRef
    from exports.integrity import checked_release

    record, folder = checked_release(ws, version)
    return ReleaseRef(record["version"], record["content_hash"], folder)


@audit_app.command("images")
def audit_images(
    folder: Annotated[Path, typer.Argument(help="Folder of the images.")],
    prompts: Annotated[Path, typer.Option("--prompts", help="CSV (image,prompt) or JSONL naming each image's prompt.")],
    models: Annotated[str, typer.Option("--models", help=MODELS_HELP)],
    version: Annotated[
        str | None, typer.Option("--version", help="Compare with this release (default: the workspace's pairs).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the placements as JSON.")] = False,
) -> None:
    """Score outside images under their prompts and place each against a population's images (z-score and
    percentiles among its base and anti-aesthetic images under the same model)."""
    from curation.audit.models import resolve
    from curation.audit.outside import place, read_prompts, reference_scores, score_images
    from curation.audit.specs import resolve_names
    from curation.audit.stage import AuditOptions, audit, load_context, population_units

    items = read_prompts(prompts, folder)
    results: list[dict[str, Any]] = []
    with opened() as ws:
        release = _release(ws, version)
        for spec in resolve_names(models, ws.settings.audit.models):
            options = AuditOptions(spec, release)
            model_id = str(audit(ws, options).details["model"])
            context = load_context(ws)
            model = resolve(spec, context).load(context)
            scores = score_images(model, items, ws.settings.audit.batch_size)
            base, anti = reference_scores(ws.store, options.population, model_id, population_units(ws, options))
            placements = place(items, scores, base, anti)
            results.append(
                {
                    "name": spec.name,
                    "model": model_id,
                    "population": options.population,
                    "reference_pairs": len(base),
                    "images": [p.as_dict() for p in placements],
                }
            )
    if as_json:
        emit_json({"models": results})
        return
    for entry in results:
        table = Table(title=f"{entry['name']} on {entry['population']} ({entry['reference_pairs']} pairs)")
        for column in ("image", "prompt", "score", "z", "percentile among base images", "among anti images"):
            table.add_column(column, justify="left" if column in ("image", "prompt") else "right")
        for p in entry["images"]:
            table.add_row(
                p["image"],
                p["prompt"][:60],
                f"{p['score']:.4f}",
                "—" if p["z"] is None else f"{p['z']:+.2f}",
                "—" if p["base_percentile"] is None else f"{p['base_percentile']:.1f}",
                "—" if p["anti_percentile"] is None else f"{p['anti_percentile']:.1f}",
            )
        out_console.print(table)
