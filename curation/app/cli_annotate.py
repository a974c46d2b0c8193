"""`widespec annotate …`: the Label Studio server and human rounds (push, pull, resolve, report)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from curation.app.common import STAGES, emit_json, opened
from curation.core.console import info, out_console
from curation.core.intervals import interval_text

app = typer.Typer()  # its commands are added to the main app by curation.app.cli

annotate_app = typer.Typer(help="Human validation rounds in Label Studio.", no_args_is_help=True)
app.add_typer(annotate_app, name="annotate", rich_help_panel=STAGES)
gold_app = typer.Typer(help="Gold answers: pairs with a known choice, mixed into rounds to measure annotators.")
annotate_app.add_typer(gold_app, name="gold", no_args_is_help=True)

RoundOption = Annotated[int, typer.Option("--round", "-r", min=1, help="Round number (1, 2, …).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


@annotate_app.command("serve")
def serve(
    port: Annotated[int | None, typer.Option(min=1024, max=65535, help="Port (default: annotation.port).")] = None,
) -> None:
    """Start the workspace's Label Studio on 127.0.0.1 (data in .widespec/label-studio/) and print its login."""
    from annotation import server

    with opened() as ws:
        conn = server.start(ws, port)
        login = server.admin_login(ws)
        out_console.print(f"Label Studio: {conn.url}", highlight=False)
        out_console.print(f"login: {login.email}  password: {login.password}", highlight=False)
        out_console.print(f"stop it with `widespec annotate stop`; log: {server.log_path(ws)}", highlight=False)


@annotate_app.command("stop")
def stop() -> None:
    """Stop the workspace's Label Studio (its projects and annotations stay in the workspace)."""
    from annotation import server

    with opened() as ws:
        stopped = server.stop(ws)
    out_console.print("stopped Label Studio" if stopped else "no Label Studio was running", highlight=False)


@annotate_app.command("add-annotator")
def add_annotator(name: Annotated[str, typer.Argument(help="Account name (or e-mail address).")]) -> None:
    """Create an annotator account on the workspace's Label Studio and print its login (on a team server: print
    the sign-up link, read with the admin token in annotation.token_env)."""
    from annotation import server, team

    with opened() as ws:
        if ws.settings.annotation.url:
            out_console.print(team.signup_line(ws, name), highlight=False, soft_wrap=True)
            return
        login = server.add_annotator(ws, name)
        where = server.running(ws)
    url = f" at {where['url']}" if where else ""
    out_console.print(f"annotator login{url}: {login.email}  password: {login.password}", highlight=False)


@annotate_app.command("push")
def push(round_number: RoundOption, as_json: JsonOption = False) -> None:
    """Choose the round's pairs and import them as tasks (rerunning adds nothing)."""
    from annotation.workflow import push as push_round

    with opened() as ws:
        result = push_round(ws, round_number)
    if as_json:
        emit_json(result.__dict__)
        return
    info(f"round {result.round}: project {result.project_id} at {result.url}/projects/{result.project_id}")
    out_console.print(
        f"round {result.round}: {result.regular} pairs + {result.gold} gold tasks; imported {result.imported}, "
        f"already there {result.already_there}; images uploaded {result.uploaded}",
        highlight=False,
    )


@annotate_app.command("pull")
def pull(round_number: RoundOption, as_json: JsonOption = False) -> None:
    """Store the round's annotations (raw answers per annotator, A/B undone); rerunning changes nothing."""
    from annotation.workflow import pull as pull_round

    with opened() as ws:
        result = pull_round(ws, round_number)
    if as_json:
        emit_json(result.__dict__)
        return
    out_console.print(
        f"round {result.round}: {result.annotations} annotations from {result.annotators} annotators "
        f"({result.changed} new or changed)",
        highlight=False,
    )


@annotate_app.command("resolve")
def resolve(round_number: RoundOption, as_json: JsonOption = False) -> None:
    """Majority verdict per pair, alpha per question, annotator accuracy; unresolved pairs go to the next round."""
    from annotation.workflow import resolve as resolve_round

    with opened() as ws:
        result = resolve_round(ws, round_number)
    _print_result(round_number, result, as_json)


@annotate_app.command("report")
def report(round_number: RoundOption, as_json: JsonOption = False) -> None:
    """Print the round's table: labels, Krippendorff's alpha per question, kappa pairs, annotators, exclusions."""
    from annotation.workflow import round_result

    with opened() as ws:
        result = round_result(ws, round_number)
    _print_result(round_number, result, as_json)


@gold_app.command("add")
def gold_add(
    file: Annotated[Path, typer.Argument(help="CSV (with a header) or JSONL: pair_id or base + variant, expected.")],
) -> None:
    """Import gold answers (expected: anti, base or tie); a bad row stores nothing."""
    from annotation.gold import add_file

    with opened() as ws:
        added = add_file(ws, file)
    out_console.print(f"gold answers: {added.added} added or changed, {added.unchanged} unchanged", highlight=False)


@gold_app.command("from-round")
def gold_from_round(round_number: Annotated[int, typer.Argument(min=1, help="A resolved round.")]) -> None:
    """Make the round's pairs resolved with agreement ≥ annotation.gold_min_agreement gold answers."""
    from annotation.gold import from_round

    with opened() as ws:
        added = from_round(ws, round_number)
    out_console.print(f"gold answers: {added.added} added or changed, {added.unchanged} unchanged", highlight=False)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _interval(value: Any) -> str:
    """A figure with its 95% interval, or '-' when undefined."""
    return interval_text(value, missing="-")


def _json_interval(value: Any) -> dict[str, float | None] | None:
    return None if value is None else {"value": value.value, "low": value.low, "high": value.high}


def _print_result(round_number: int, result: object, as_json: bool) -> None:
    from annotation.agreement import RoundResult

    assert isinstance(result, RoundResult)
    labels: dict[str, int] = {}
    for verdict in result.verdicts:
        labels[verdict["label"]] = labels.get(verdict["label"], 0) + 1
    if as_json:
        emit_json(
            {
                "round": round_number,
                "labels": labels,
                "alpha": {q: _json_interval(v) for q, v in result.alpha.items()},
                "kappa": [k.__dict__ for k in result.kappa],
                "annotators": [
                    {**a.__dict__, "gold_accuracy": a.gold_accuracy, "gold_interval": _json_interval(a.gold_interval)}
                    for a in result.annotators
                ],
                "excluded": [{"annotator": a.annotator, "reason": a.reason} for a in result.excluded],
            }
        )
        return
    out_console.print(
        f"round {round_number}: {len(result.verdicts)} pairs; "
        + ", ".join(f"{label} {n}" for label, n in sorted(labels.items())),
        highlight=False,
    )
    out_console.print(
        "Krippendorff's alpha (95% CI): " + ", ".join(f"{q} {_interval(v)}" for q, v in result.alpha.items()),
        highlight=False,
    )
    for pair in result.kappa:
        out_console.print(
            f"Cohen's kappa {pair.first} / {pair.second}: {_fmt(pair.kappa)} on {pair.shared} shared tasks",
            highlight=False,
        )
    table = Table(title=f"round {round_number} annotators", title_justify="left")
    for name in ("annotator", "answers", "gold", "gold accuracy (95% CI)", "agrees with majority", "excluded"):
        table.add_column(name, justify="left" if name == "annotator" else "right")
    for a in result.annotators:
        table.add_row(
            a.annotator,
            str(a.answers),
            f"{a.gold_correct}/{a.gold_answers}",
            _interval(a.gold_interval),
            _fmt(a.agreement_with_majority),
            "yes" if a.excluded else "",
        )
    out_console.print(table)
    for a in result.excluded:
        out_console.print(f"excluded {a.annotator}: {a.reason}", highlight=False)
