"""`widespec run`: every stage in order on one workspace, skipping finished work, stopping at the first failure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from curation.core.errors import InputError, WidespecError
from curation.core.workspace import Workspace


@dataclass
class StepResult:
    """What one stage did in this run: `work` counts records it added or changed (0 on a finished stage)."""

    name: str
    work: int
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False


class StageFailed(WidespecError):
    """A stage failed; the message says which, why, and how to resume."""


def _rewrite(ws: Workspace) -> StepResult:
    from curation.rewrite.stage import run_rewrite

    result = run_rewrite(ws)
    counts = dict(result.counts)
    work = sum(counts.values())
    return StepResult(
        "rewrite", work, ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing new", counts
    )


def _generate(ws: Workspace) -> StepResult:
    from curation.generate.stage import generate

    result = generate(ws)
    return StepResult(
        "generate", result.ok + result.failed, f"{result.ok} images, {result.failed} failed", result.as_dict()
    )


def _score(ws: Workspace) -> StepResult:
    from curation.score.stage import run_score

    result = run_score(ws)
    work = result.variants_scored + result.pairs_scored + result.pairs_failed
    summary = f"{result.pairs_scored} pairs scored, {result.pairs_failed} failed, {result.variants_scored} texts"
    return StepResult("score", work, summary, result.as_dict())


def _filter(ws: Workspace) -> StepResult:
    from curation.core.executor import execute
    from curation.filter.stage import FILTER

    result = execute(ws, FILTER)
    return StepResult("filter", result.written, result.summary, result.as_dict())


def current_round(ws: Workspace) -> int:
    """The first round that has not been resolved yet (round 1 on a new workspace)."""
    from annotation.workflow import ROUND_KEY

    number = 1
    while ws.store.state_get(ROUND_KEY.format(number)) is not None and ws.store.count("verdict", round=number):
        number += 1
    return number


def _annotate(ws: Workspace) -> StepResult:
    from annotation import server
    from annotation.workflow import push

    if not ws.config["run"]["annotate"]:
        return StepResult("annotate", 0, "off (run.annotate = false)", skipped=True)
    if not ws.config["annotation"]["url"]:
        server.start(ws)
    number = current_round(ws)
    try:
        result = push(ws, number)
    except InputError as exc:
        if "no pairs to ask about" not in str(exc):
            raise
        return StepResult("annotate", 0, f"round {number}: no pairs to ask about yet", skipped=True)
    summary = f"round {number}: {result.imported} tasks imported ({result.already_there} already there) at {result.url}"
    return StepResult("annotate", result.imported, summary, {"round": number, "url": result.url})


def next_version(latest: str | None, bump: str) -> str:
    """0.1.0 for a first release, else the latest with its minor (or patch) part raised."""
    from exports.versions import parse_version

    if latest is None:
        return "0.1.0"
    major, minor, patch = parse_version(latest)
    return f"{major}.{minor + 1}.0" if bump == "minor" else f"{major}.{minor}.{patch + 1}"


def _export(ws: Workspace) -> StepResult:
    from exports.export import export_version
    from exports.pending import pending_export
    from exports.versions import latest_release

    if not ws.config["run"]["export"]:
        return StepResult("export", 0, "off (run.export = false)", skipped=True)
    latest = latest_release(ws.store)
    if pending_export(ws) == 0:
        where = f"latest release v{latest['version']}" if latest else "nothing selected for export yet"
        return StepResult("export", 0, f"no new rows ({where})", skipped=True)
    version = next_version(latest["version"] if latest else None, ws.config["run"]["version_bump"])
    result = export_version(ws, version, "Exported by `widespec run`.")
    return StepResult("export", result.rows, f"v{version}: {result.rows} rows at {result.path}", result.as_dict())


STEPS: list[tuple[str, Callable[[Workspace], StepResult]]] = [
    ("rewrite", _rewrite),
    ("generate", _generate),
    ("score", _score),
    ("filter", _filter),
    ("annotate", _annotate),
    ("export", _export),
]

RESUME = {"annotate": "widespec annotate push --round N"}


def run_pipeline(ws: Workspace, on_step: Callable[[StepResult], None] | None = None) -> list[StepResult]:
    """Run every stage in order; a failing stage stops the run with its reason and the command to resume."""
    results = []
    for name, step in STEPS:
        try:
            result = step(ws)
        except Exception as exc:
            reason = str(exc) if isinstance(exc, WidespecError) else f"{type(exc).__name__}: {exc}"
            raise StageFailed(
                f"{name} failed: {reason} — finished work is stored; fix this and rerun `widespec run` "
                f"(or `{RESUME.get(name, 'widespec ' + name)}` alone)"
            ) from exc
        results.append(result)
        if on_step:
            on_step(result)
    return results


def random_weight_models(ws: Workspace) -> list[str]:
    """Configured generator and scorer models that are widespec's random-weight test models."""
    models = [*ws.config["generator"]["models"], ws.config["scorer"]["model"]]
    return sorted({m for m in models if m.startswith("builtin:")})
