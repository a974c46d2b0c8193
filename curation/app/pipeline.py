"""`widespec run`: every registered stage in order on one workspace, skipping finished work, stopping at the first
failure. Adding a stage to the pipeline is one module (the stage) and one line in PIPELINE."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from curation.core.errors import WidespecError
from curation.core.executor import execute
from curation.core.secrets import redact
from curation.core.stage import Stage, StageResult
from curation.core.workspace import Workspace
from exports.versions import latest_release, parse_version


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


def _no_options(ws: Workspace) -> Any:
    return None


def _never_skipped(ws: Workspace) -> str | None:
    return None


def _load(reference: str) -> Any:
    """`package.module:NAME`, imported on first use: `widespec status` counts pending work without importing
    torch, diffusers or the Label Studio SDK."""
    module, name = reference.split(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Step:
    """A registered stage (imported when the step runs), its cheap count of pending work, the options `widespec
    run` gives it, and when the run leaves it out."""

    stage_ref: str
    pending: str  # `module:function(ws) -> int`, in a module that imports no model library
    options: Callable[[Workspace], Any] = _no_options
    skip: Callable[[Workspace], str | None] = _never_skipped
    resume: str = ""
    name: str = ""
    repeat: bool = False  # execute the stage again until it has nothing to do (generate: one model per execution)

    @property
    def stage(self) -> Stage:
        stage: Stage = _load(self.stage_ref)
        return stage

    def pending_count(self, ws: Workspace) -> int:
        count: int = _load(self.pending)(ws)
        return count

    @property
    def label(self) -> str:
        return self.name or self.stage_ref.split(":")[1].lower().replace("_", "-")


def _judge_skip(ws: Workspace) -> str | None:
    return None if ws.settings.judge.configured else "off (judge.model is empty)"


def _annotate_skip(ws: Workspace) -> str | None:
    return None if ws.settings.run.annotate else "off (run.annotate = false)"


def _annotate_options(ws: Workspace) -> Any:
    from annotation import server
    from annotation.workflow import RoundOptions, current_round

    if not ws.settings.annotation.url:
        server.start(ws)
    return RoundOptions(current_round(ws))


def next_version(latest: str | None, bump: str) -> str:
    """0.1.0 for a first release, else the latest with its minor (or patch) part raised."""
    if latest is None:
        return "0.1.0"
    major, minor, patch = parse_version(latest)
    return f"{major}.{minor + 1}.0" if bump == "minor" else f"{major}.{minor}.{patch + 1}"


def export_pending(ws: Workspace) -> int:
    """Rows the next release would add or remove, within the configured generators."""
    from curation.app.scope import release_scope
    from exports.pending import pending_export

    return pending_export(ws, release_scope(ws))


def _export_skip(ws: Workspace) -> str | None:
    if not ws.settings.run.export:
        return "off (run.export = false)"
    if export_pending(ws) == 0:
        latest = latest_release(ws.store)
        where = f"latest release v{latest['version']}" if latest else "nothing selected for export yet"
        return f"no rows to add or remove ({where})"
    return None


def _export_options(ws: Workspace) -> Any:
    from curation.app.scope import release_scope
    from exports.export import ExportOptions

    latest = latest_release(ws.store)
    version = next_version(latest["version"] if latest else None, ws.settings.run.version_bump)
    return ExportOptions(version, "Exported by `widespec run`.", release_scope(ws))


# The text checks run before generation and gate it: a variant they reject is never rendered.
PIPELINE: list[Step] = [
    Step("curation.rewrite.stage:REWRITE", "curation.rewrite.stage:pending_rewrite"),
    Step("curation.score.text_checks:TEXT_CHECKS", "curation.score.pending:pending_text_checks"),
    Step("curation.generate.stage:GENERATE", "curation.generate.stage:pending_generate", repeat=True),
    Step("curation.score.stage:SCORE", "curation.score.pending:pending_score"),
    Step("curation.filter.stage:FILTER", "curation.filter.stage:pending_filter"),
    Step(
        "curation.judge.stage:JUDGE", "curation.judge.pending:pending_judge", skip=_judge_skip, resume="widespec judge"
    ),
    Step(
        "annotation.workflow:PUSH",
        "annotation.progress:pending_pairs",
        _annotate_options,
        _annotate_skip,
        "widespec annotate push --round N",
        name="annotate",
    ),
    Step(
        "exports.export:EXPORT",
        "curation.app.pipeline:export_pending",
        _export_options,
        _export_skip,
        "widespec export --version X.Y.Z",
    ),
]


def run_pipeline(ws: Workspace, on_step: Callable[[StepResult], None] | None = None) -> list[StepResult]:
    """Run every stage in order under one workspace lock; a failing stage stops the run with how to resume."""
    results = []
    with ws.writing():
        for step in PIPELINE:
            reason = step.skip(ws)
            if reason is not None:
                result = StepResult(step.label, 0, reason, skipped=True)
            else:
                try:
                    executions = _executions(ws, step)
                except Exception as exc:
                    why = str(exc) if isinstance(exc, WidespecError) else f"{type(exc).__name__}: {exc}"
                    why = redact(why, ws.secrets())  # the message reaches the terminal and its logs
                    raise StageFailed(
                        f"{step.label} failed: {why} — finished work is stored; fix this and rerun `widespec run` "
                        f"(or `{step.resume or 'widespec ' + step.label}` alone)"
                    ) from exc
                result = _step_result(step, executions)
            results.append(result)
            if on_step:
                on_step(result)
    return results


def _executions(ws: Workspace, step: Step) -> list[StageResult]:
    """The stage executed once, or (a repeating step) until it has nothing left to do."""
    done = [execute(ws, step.stage, step.options(ws))]
    while step.repeat and not done[-1].nothing_to_do:
        done.append(execute(ws, step.stage, step.options(ws)))
    return done


def _step_result(step: Step, executions: list[StageResult]) -> StepResult:
    worked = [e for e in executions if not e.nothing_to_do] or executions[-1:]
    summary = "; ".join(e.summary for e in worked)
    details = worked[0].as_dict() if len(worked) == 1 else {"executions": [e.as_dict() for e in worked]}
    work = sum(step.stage.work_done(e) for e in executions)
    return StepResult(step.label, work, summary, details, all(e.nothing_to_do for e in executions))


def pending_work(ws: Workspace) -> dict[str, int]:
    """Each registered stage's own count of waiting work (for `widespec status`)."""
    return {step.label: step.pending_count(ws) for step in PIPELINE}


def random_weight_models(ws: Workspace) -> list[str]:
    """Configured generator and scorer models that are widespec's random-weight test models."""
    models = [*ws.settings.generator.models, ws.settings.scorer.model]
    return sorted({m for m in models if m.startswith("builtin:")})
