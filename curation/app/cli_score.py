"""`widespec score` and `widespec filter`: CLIP fidelity scores, decisions and calibrated thresholds."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Annotated

import typer
from rich.table import Table

from curation.app.common import EXECUTOR_HELP, STAGES, emit_json, opened
from curation.core.console import out_console

app = typer.Typer()  # its commands are added to the main app by curation.app.cli


@app.command(name="text-checks", rich_help_panel=STAGES)
def text_checks(
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """The text gate: how far each variant moved from its base prompt, near duplicates, and each variant's text
    decision (only accepted variants are rendered); decisions follow the current thresholds on every run."""
    from curation.core.executor import execute
    from curation.score.text_checks import TEXT_CHECKS

    with opened() as ws:
        result = execute(ws, TEXT_CHECKS)
    if as_json:
        emit_json(result.as_dict())
        return
    out_console.print(TEXT_CHECKS.summary(result), highlight=False)


@app.command(rich_help_panel=STAGES)
def score(
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Score again pairs that failed.")] = False,
    executor: Annotated[str | None, typer.Option(help=EXECUTOR_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """CLIP fidelity, content kept, direction and probe scores for every pending pair; resumable."""
    from curation.score.stage import run_score

    with opened(executor) as ws:
        result = run_score(ws, retry_failed=retry_failed)
    if as_json:
        emit_json({**result.as_dict(), "images_per_second": round(result.images_per_second, 1)})
        return
    out_console.print(
        f"scorer {result.scorer}: {result.pairs_scored} pairs scored, {result.pairs_failed} failed; "
        f"{result.images_encoded} images encoded ({result.images_per_second:.1f} images/s), "
        f"{result.images_failed} unreadable, {result.texts_encoded} texts encoded",
        highlight=False,
    )


def _counts_table(result: object) -> Table:
    from curation.filter.stage import FilterResult

    assert isinstance(result, FilterResult)
    table = Table(title="clip decisions per dimension" + (" (dry run: nothing written)" if result.dry_run else ""))
    for column in ("dimension", "accept", "review", "reject"):
        table.add_column(column, justify="left" if column == "dimension" else "right")
    for dim, counts in sorted(result.per_dimension.items()):
        table.add_row(dim, *(str(counts.get(k, 0)) for k in ("accept", "review", "reject")))
    table.add_row("[bold]all pairs", *(f"[bold]{result.clip.get(k, 0)}" for k in ("accept", "review", "reject")))
    return table


def _calibration_table(calibration: object) -> Table:
    from curation.filter.calibration import Calibration

    assert isinstance(calibration, Calibration)
    rounds = ", ".join(str(r) for r in calibration.rounds)
    plural = "s" if len(calibration.rounds) > 1 else ""
    table = Table(
        title=f"thresholds fitted jointly to {calibration.used} human verdicts "
        f"(round{plural} {rounds}; scorer {calibration.scorer})",
        caption="(+) verdicts where humans chose the anti-aesthetic image; AUROC of the metric alone in that scope",
    )
    for column in ("metric", "scope", "verdicts (+)", "AUROC", "current", "fitted"):
        table.add_column(column, justify="left" if column in ("metric", "scope") else "right")
    table.add_column("action")
    fitted = calibration.fitted_values
    for f in calibration.fits:
        if f.scope != "global" and f.action.startswith("kept:") and "verdicts <" in f.action:
            continue  # listed below the table instead
        value = fitted.get((f.metric, f.scope))
        table.add_row(
            f.metric,
            f.scope,
            f"{f.n} ({f.positives})",
            "-" if f.auroc is None else f"{f.auroc:.2f}",
            "-" if f.current is None else f"{f.current.threshold:.4f}",
            "-" if value is None else f"{value:.4f}",
            "[green]write[/green]" if value is not None else f"[dim]{f.action}[/dim]",
        )
    return table


def _rule_table(calibration: object) -> Table:
    """The whole decision rule (a pair passes every gate) against the verdicts: as configured, as fitted, held out."""
    from curation.filter.calibration import Calibration

    assert isinstance(calibration, Calibration)
    table = Table(
        title="the decision rule (a pair must pass every gate) against the human verdicts",
        caption="bal.acc = mean recall over accepted and rejected pairs; P / R = precision / recall of accepting; "
        "AUROC of the rule's slack; held-out: fitted on the other folds, applied to each fold in turn",
    )
    for column in ("thresholds", "verdicts", "bal.acc", "P", "R", "AUROC"):
        table.add_column(column, justify="left" if column == "thresholds" else "right")
    held_out = "not enough verdicts of each kind for 2 folds"
    rows = [
        ("current (in-sample)", calibration.current_rule),
        ("fitted (in-sample)", calibration.fitted_rule),
        (
            f"fitted (held-out, {calibration.folds}-fold)" if calibration.folds else f"held-out: {held_out}",
            calibration.held_out_rule,
        ),
    ]
    for name, rule in rows:
        if rule is None:
            table.add_row(name, "-", "-", "-", "-", "-")
            continue
        auroc = "-" if rule.auroc is None else f"{rule.auroc:.2f}"
        table.add_row(
            name, str(rule.n), f"{rule.balanced_accuracy:.2f}", f"{rule.precision:.2f}", f"{rule.recall:.2f}", auroc
        )
    return table


def _too_few(calibration: object) -> str | None:
    """One line naming the dimensions that keep the global thresholds for want of verdicts."""
    from curation.filter.calibration import Calibration

    assert isinstance(calibration, Calibration)
    few = {f.scope: f.n for f in calibration.fits if f.scope != "global" and "verdicts <" in f.action}
    if not few:
        return None
    listed = ", ".join(f"{dim} ({n})" for dim, n in sorted(few.items()))
    return f"too few verdicts to fit per dimension (global thresholds apply): {listed}"


@app.command("filter", rich_help_panel=STAGES)
def filter_pairs(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print counts per dimension for the thresholds; write nothing.")
    ] = False,
    calibrate: Annotated[
        bool, typer.Option("--calibrate", help="Fit thresholds to human verdicts and write them to widespec.toml.")
    ] = False,
    round_number: Annotated[
        int | None, typer.Option("--round", min=1, help="Calibrate on this round's verdicts only (default: all).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Accept / reject / review every scored pair from the thresholds in widespec.toml (global and per dimension)."""
    from curation.domain.gates import Thresholds
    from curation.filter.calibration import fit_thresholds, fitted_thresholds, write_thresholds
    from curation.filter.stage import run_filter

    with opened() as ws, nullcontext() if dry_run else ws.writing():  # fit, write and decide under one lock
        calibration = None
        thresholds = None
        if calibrate:
            calibration = fit_thresholds(ws, round_number=round_number)
            if dry_run:
                thresholds = fitted_thresholds(Thresholds.from_config(ws.settings.filter), calibration)
            else:
                write_thresholds(ws, calibration)
        result = run_filter(ws, dry_run=dry_run, thresholds=thresholds)
    if as_json:
        emit_json({"filter": result.as_dict(), "calibration": calibration.as_dict() if calibration else None})
        return
    if calibration is not None:
        out_console.print(_calibration_table(calibration))
        out_console.print(_rule_table(calibration))
        if (few := _too_few(calibration)) is not None:
            out_console.print(few, highlight=False)
        if calibration.written:
            out_console.print("wrote to widespec.toml: " + ", ".join(calibration.written), highlight=False)
        elif not dry_run:
            out_console.print("no threshold written: see the action column", highlight=False)
    out_console.print(_counts_table(result))
    if result.unscored_pairs:
        out_console.print(
            f"{result.unscored_pairs} pairs have no scores from {result.scorer} yet: run `widespec score`",
            highlight=False,
        )
