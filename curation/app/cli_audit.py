"""`widespec audit`: reward models score both images of every pair under both prompts; the paper's table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from curation.app.common import RELEASES, emit_json, opened
from curation.core.console import info, out_console

if TYPE_CHECKING:
    from curation.audit.metrics import ModelAudit

app = typer.Typer()  # its commands are added to the main app by curation.app.cli


def audit_table(audits: list[ModelAudit], title: str) -> Table:
    """The reward-model table: one row per model, 95% bootstrap intervals in brackets."""
    from curation.audit.publishing import interval_text

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
    from curation.audit.publishing import interval_text

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


@app.command(rich_help_panel=RELEASES)
def audit(
    models: Annotated[
        str,
        typer.Option(
            "--models",
            help="Reward models, comma-separated: built-in names (clip-l, pickscore, hpsv2.1, aesthetic, blip-itm, "
            "tiny-clip, ...), names from [audit] models, or specs KIND:SOURCE[#EXTRA].",
        ),
    ],
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
    """Score both images of every pair under both prompts with each reward model; print the paper's table."""
    from curation.audit.metrics import BREAKDOWNS
    from curation.audit.population import ReleaseRef
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
        specs = resolve_names(models, ws.settings.audit.models)
        release = None
        if version is not None:
            from exports.integrity import checked_release

            record, folder = checked_release(ws, version)
            release = ReleaseRef(record["version"], record["content_hash"], folder)
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
