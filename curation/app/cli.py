"""The `widespec` command line: a thin layer over the library."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from curation import __version__
from curation.app import cli_annotate, cli_audit, cli_export, cli_generate, cli_judge, cli_rewrite, cli_score
from curation.app.common import EXECUTOR_HELP, STAGES, WORKSPACE, emit_json, opened, state
from curation.core.console import err_console, out_console, settings
from curation.core.errors import InputError, WidespecError
from curation.core.workspace import init_workspace

app = typer.Typer(
    name="widespec",
    help="Build wide-spectrum aesthetics datasets: anti-aesthetic rewrites, paired images, CLIP filters, "
    "human rounds, versioned Hugging Face releases.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
prompts_app = typer.Typer(help="Import and inspect base prompts.", no_args_is_help=True)
app.add_typer(prompts_app, name="prompts", rich_help_panel=STAGES)


def _version(value: bool) -> None:
    if value:
        out_console.print(f"widespec {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    workspace: Annotated[
        Path, typer.Option("--workspace", "-w", envvar="WIDESPEC_WORKSPACE", help="Workspace folder.")
    ] = Path("."),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or progress messages.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    state.workspace = workspace
    settings.quiet = quiet


@app.command(rich_help_panel=WORKSPACE)
def init(directory: Annotated[Path, typer.Argument(help="Folder to create the workspace in.")]) -> None:
    """Create a workspace: widespec.toml, widespec.db, images/, exports/."""
    ws = init_workspace(directory)
    ws.close()
    out_console.print(f"Created workspace {directory} (config: {directory / 'widespec.toml'})", highlight=False)


@prompts_app.command("add")
def prompts_add(
    source: Annotated[
        str | None, typer.Argument(help="File (.txt .csv .tsv .jsonl .parquet) or hf://owner/name[:split].")
    ] = None,
    builtin: Annotated[str | None, typer.Option(help="A prompt set shipped with widespec: starter.")] = None,
    column: Annotated[str | None, typer.Option(help="Column holding the prompt (default: prompts.column).")] = None,
    category: Annotated[str | None, typer.Option(help="Category for every imported prompt.")] = None,
    sample: Annotated[int | None, typer.Option(min=1, help="Import a reproducible random sample of N rows.")] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="Seed for --sample (default: project.seed).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Import base prompts; re-importing the same rows adds nothing."""
    from curation.prompts.importing import import_prompts

    if (source is None) == (builtin is None):
        raise InputError("give exactly one of SOURCE or --builtin NAME")
    spec = source if source is not None else f"builtin:{builtin}"
    with opened() as ws:
        result = import_prompts(ws, spec, column=column, category=category, sample=sample, seed=seed)
    if as_json:
        emit_json(result.as_dict())
        return
    out_console.print(
        f"imported {result.imported}, duplicate {result.duplicates}, skipped {result.skipped}, "
        f"rejected {result.rejected}",
        highlight=False,
    )
    if result.report:
        out_console.print(f"rejected rows: {result.report}", highlight=False)


@app.command(rich_help_panel=WORKSPACE)
def status(as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """Counts per record kind and status, pending work per stage, the latest runs."""
    from curation.app.status import executor_line, summary
    from curation.app.text_context import text_context_line

    with opened() as ws:
        data = summary(ws)
    if as_json:
        emit_json(data)
        return
    records = Table(title=f"workspace {data['workspace']}", title_justify="left")
    records.add_column("records")
    records.add_column("total", justify="right")
    records.add_column("by status")
    for kind, counts in data["records"].items():
        detail = ", ".join(f"{k} {v}" for k, v in counts.items() if k != "total")
        records.add_row(kind, str(counts["total"]), detail)
    out_console.print(records)
    out_console.print("pending: " + ", ".join(f"{k} {v}" for k, v in data["pending"].items()), highlight=False)
    for reason, count in data["not_released"].items():
        out_console.print(f"{count} pairs {reason}: not released", highlight=False)
    context = text_context_line(data["text_context"])
    if context:
        out_console.print(context, highlight=False)
    for row in data["spend"]:
        out_console.print(
            f"spend {row['stage']} {row['model']}: {row['calls']} calls, {row['prompt_tokens']} tokens in, "
            f"{row['completion_tokens']} out" + (f", ${row['cost']:.4f}" if row["cost"] is not None else ""),
            highlight=False,
        )
    if data["runs"]:
        runs = Table(title="latest runs", title_justify="left")
        for name in ("id", "stage", "status", "started", "executor", "counts"):
            runs.add_column(name)
        for run in data["runs"]:
            counts = ", ".join(f"{k} {v}" for k, v in run["counts"].items())
            where = executor_line(run["executor"])
            runs.add_row(str(run["id"]), run["stage"], run["status"], run["started_at"], where, counts)
        out_console.print(runs)


@app.command(rich_help_panel=WORKSPACE)
def verify(as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """Check the workspace, reading only: the database's integrity, every image against its sha256, every release
    folder against its manifest; exit code 1 on any damage."""
    from curation.app.verify import verify_workspace

    result = verify_workspace(state.workspace)
    if as_json:
        emit_json(result.as_dict())
    else:
        table = Table(title=f"workspace {result.workspace}", title_justify="left")
        for name in ("check", "what", "status", "detail"):
            table.add_column(name)
        for f in result.findings:
            colour = "green" if f.status == "ok" else "red"
            table.add_row(f.check, f.subject, f"[{colour}]{f.status}[/{colour}]", f.detail)
        out_console.print(table)
    if not result.clean:
        bad = [f for f in result.findings if f.status != "ok" and f.check != "images"]
        err_console.print(f"[red]damaged:[/red] {len(bad)} problem(s), first: {bad[0].subject}", highlight=False)
        raise typer.Exit(1)


@app.command(rich_help_panel=WORKSPACE)
def backup(
    destination: Annotated[Path, typer.Argument(help="A new or empty folder to copy the workspace into.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Copy the workspace consistently, also while a run writes: the database (SQLite's online backup), then the
    images and releases (hard links on the same filesystem), config and reports; not the .widespec runtime."""
    from curation.app.backup import backup_workspace

    result = backup_workspace(state.workspace, destination)
    if as_json:
        emit_json(result.as_dict())
        return
    out_console.print(
        f"backed up {state.workspace} to {result.destination}: widespec.db, {result.images} images, "
        f"{len(result.releases)} release(s); {result.linked} files linked, {result.copied} copied. "
        f"Check it with `widespec -w {result.destination} verify`",
        highlight=False,
    )


@app.command(rich_help_panel=WORKSPACE)
def report(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="HTML file (default: reports/report.html).")
    ] = None,
) -> None:
    """Write one self-contained HTML report: funnel, acceptance, CLIP metrics, rounds, spend, gallery."""
    from curation.app.report import write_report

    with opened() as ws:
        path = write_report(ws, output)
    out_console.print(f"report: {path}", highlight=False)


cache_app = typer.Typer(help="Caches: LLM and moderation answers, CLIP embeddings, model hashes.", no_args_is_help=True)
app.add_typer(cache_app, name="cache", rich_help_panel=WORKSPACE)


@cache_app.command("clear")
def cache_clear() -> None:
    """Delete every cache; nothing durable is lost, later commands only compute or call again."""
    import shutil

    with opened() as ws, ws.writing():
        answers = ws.store.cache_clear()
        embeddings = ws.runtime_dir / "embeddings"
        files = sum(1 for p in embeddings.rglob("*") if p.is_file()) if embeddings.exists() else 0
        shutil.rmtree(embeddings, ignore_errors=True)
    out_console.print(f"cleared {answers} cached answers and {files} embedding files", highlight=False)


@app.command("run", rich_help_panel=WORKSPACE)
def run_all(
    executor: Annotated[str | None, typer.Option(help=EXECUTOR_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Run every stage in order (rewrite, generate, score, filter, annotate push, export), skipping finished work."""
    with opened(executor) as ws, ws.writing():  # taken before the heavy imports: a second run is refused at once
        from curation.app.pipeline import StepResult, random_weight_models, run_pipeline
        from curation.app.report import write_report

        def show(step: StepResult) -> None:
            if not as_json:
                out_console.print(f"[bold]{step.name:<9}[/bold] {step.summary}", highlight=False)

        test_models = random_weight_models(ws)
        if test_models and not as_json:
            out_console.print(
                f"[yellow]note:[/yellow] {', '.join(test_models)} are built-in test models with random weights: "
                "their images and scores exercise the pipeline and are not research data.",
                highlight=False,
            )
        results = run_pipeline(ws, on_step=show)
        report_path = write_report(ws)
    if as_json:
        emit_json(
            {
                "steps": [
                    {"name": r.name, "work": r.work, "summary": r.summary, "skipped": r.skipped} for r in results
                ],
                "report": str(report_path),
                "random_weight_models": test_models,
            }
        )
        return
    out_console.print(f"[bold]report   [/bold] {report_path}", highlight=False)


# Stage and release commands, in pipeline order: each module owns its commands, added here explicitly.
for _commands in (
    cli_rewrite.app,
    cli_generate.app,
    cli_score.app,
    cli_judge.app,
    cli_annotate.app,
    cli_export.app,
    cli_audit.app,
):
    app.registered_commands.extend(_commands.registered_commands)
    app.registered_groups.extend(_commands.registered_groups)


def main() -> None:
    """Console entry point: one-line errors and exit codes 0 ok, 1 runtime failure, 2 usage or input error."""
    try:
        app()
    except WidespecError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted; finished batches are stored, rerun to continue", highlight=False)
        sys.exit(130)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
