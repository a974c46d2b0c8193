"""`widespec judge` and `widespec judge report`: the VLM judge on the command line."""

from __future__ import annotations

from typing import Annotated

import typer

from curation.app.common import STAGES, emit_json, opened
from curation.core.console import out_console

app = typer.Typer()  # its commands are added to the main app by curation.app.cli
judge_app = typer.Typer(
    help="Judge every pair with a vision-language model (both A/B orders), and measure the judge against humans.",
    invoke_without_command=True,
)
app.add_typer(judge_app, name="judge", rich_help_panel=STAGES)


@judge_app.callback()
def judge(
    context: typer.Context,
    estimate: Annotated[
        bool, typer.Option("--estimate", help="Print calls, tokens and cost of the pending pairs; call nothing.")
    ] = False,
    refresh: Annotated[bool, typer.Option("--refresh", help="Ignore cached answers (re-cached).")] = False,
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed",
            help="Also redo pairs judged as failed or refused (a cached refusal is asked again only with --refresh).",
        ),
    ] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Judge at most N pending pairs.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Judge every pending pair with the configured vision model ([judge] in widespec.toml)."""
    if context.invoked_subcommand is not None:
        return
    from curation.judge.stage import JUDGE, estimate_judge, run_judge

    with opened() as ws:
        if estimate:
            found = estimate_judge(ws, refresh=refresh, limit=limit)
            if as_json:
                emit_json(found)
                return
            cost = "unknown (set judge.prices)" if found["cost"] is None else f"${found['cost']:.4f}"
            out_console.print(
                f"{found['pairs']} pairs pending: {found['calls']} calls, {found['cached']} cached, "
                f"~{found['prompt_tokens']} tokens in, ~{found['completion_tokens']} tokens out, cost {cost}",
                highlight=False,
            )
            return
        result = run_judge(ws, refresh=refresh, retry_failed=retry_failed, limit=limit)
    if as_json:
        emit_json(result.as_dict())
        return
    run = "judge: nothing to do" if result.nothing_to_do else f"judge run {result.run_id}"
    out_console.print(f"{run}: {JUDGE.summary(result)}", highlight=False)


@judge_app.command("report")
def judge_report_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """The judge against human verdicts (accuracy, kappa, quadratic kappa, confusion, per dimension and
    intensity), its position bias, and each generator's success rate."""
    from curation.judge.report import judge_report, report_lines

    with opened() as ws:
        report = judge_report(ws)
    if as_json:
        emit_json(report)
        return
    for line in report_lines(report):
        out_console.print(line, highlight=False)
