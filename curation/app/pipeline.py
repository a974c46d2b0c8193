"""`widespec run`: every registered stage in order on one workspace, skipping finished work, stopping at the first
failure. Adding a stage to the pipeline is one module (the stage) and one line in PIPELINE."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from annotation import server
from annotation.workflow import PUSH, RoundOptions, current_round
from curation.app.scope import release_scope
from curation.core.errors import WidespecError
from curation.core.executor import execute
from curation.core.scorer import configured_scorer
from curation.core.stage import Stage
from curation.core.workspace import Workspace
from curation.filter.stage import FILTER
from curation.generate.stage import GENERATE
from curation.judge.stage import JUDGE
from curation.rewrite.stage import REWRITE
from curation.score.stage import SCORE, ScoreOptions, scored_subjects, variant_units
from exports.export import EXPORT, ExportOptions
from exports.pending import pending_export
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


@dataclass(frozen=True)
class Step:
    """A registered stage, the options `widespec run` gives it, and when the run leaves it out."""

    stage: Stage
    name: str = ""
    options: Callable[[Workspace], Any] = _no_options
    skip: Callable[[Workspace], str | None] = _never_skipped
    resume: str = ""
    pending: Callable[[Workspace], int] | None = None  # when the step does part of its stage's work

    def pending_count(self, ws: Workspace) -> int:
        return self.pending(ws) if self.pending is not None else self.stage.pending(ws)

    @property
    def label(self) -> str:
        return self.name or self.stage.name


def _judge_skip(ws: Workspace) -> str | None:
    return None if ws.settings.judge.configured else "off (judge.model is empty)"


def _annotate_skip(ws: Workspace) -> str | None:
    return None if ws.settings.run.annotate else "off (run.annotate = false)"


def _annotate_options(ws: Workspace) -> RoundOptions:
    if not ws.settings.annotation.url:
        server.start(ws)
    return RoundOptions(current_round(ws))


def next_version(latest: str | None, bump: str) -> str:
    """0.1.0 for a first release, else the latest with its minor (or patch) part raised."""
    if latest is None:
        return "0.1.0"
    major, minor, patch = parse_version(latest)
    return f"{major}.{minor + 1}.0" if bump == "minor" else f"{major}.{minor}.{patch + 1}"


def _export_pending(ws: Workspace) -> int:
    """Pairs the next release would add, within the configured generators."""
    return pending_export(ws, release_scope(ws))


def _export_skip(ws: Workspace) -> str | None:
    if not ws.settings.run.export:
        return "off (run.export = false)"
    if _export_pending(ws) == 0:
        latest = latest_release(ws.store)
        where = f"latest release v{latest['version']}" if latest else "nothing selected for export yet"
        return f"no new rows ({where})"
    return None


def _export_options(ws: Workspace) -> ExportOptions:
    latest = latest_release(ws.store)
    version = next_version(latest["version"] if latest else None, ws.settings.run.version_bump)
    return ExportOptions(version, "Exported by `widespec run`.", release_scope(ws))


def _configured_scorer(ws: Workspace) -> str:
    return configured_scorer(ws.store, ws.settings.scorer) or ""  # unresolved yet: no score is its


def _text_checks_pending(ws: Workspace) -> int:
    """Variants the score stage's text checks have not done yet, as the stage plans them."""
    return sum(u.pending for u in variant_units(ws.store, _configured_scorer(ws)))


def _text_decisions_pending(ws: Workspace) -> int:
    scored = scored_subjects(ws.store, "text_distance", _configured_scorer(ws), include_failed=True)
    return len(scored - {d["subject_id"] for d in ws.store.iter("decision", stage="text")})


# The text checks run before generation and gate it: a variant they reject is never rendered.
PIPELINE: list[Step] = [
    Step(REWRITE),
    Step(
        SCORE,
        "text checks",
        options=lambda ws: ScoreOptions(text_only=True),
        resume="widespec score --text-only",
        pending=_text_checks_pending,
    ),
    Step(FILTER, "text decisions", resume="widespec filter", pending=_text_decisions_pending),
    Step(GENERATE),
    Step(SCORE),
    Step(FILTER),
    Step(JUDGE, skip=_judge_skip, resume="widespec judge"),
    Step(PUSH, "annotate", _annotate_options, _annotate_skip, "widespec annotate push --round N"),
    Step(
        EXPORT,
        options=_export_options,
        skip=_export_skip,
        resume="widespec export --version X.Y.Z",
        pending=_export_pending,
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
                    done = execute(ws, step.stage, step.options(ws))
                except Exception as exc:
                    why = str(exc) if isinstance(exc, WidespecError) else f"{type(exc).__name__}: {exc}"
                    raise StageFailed(
                        f"{step.label} failed: {why} — finished work is stored; fix this and rerun `widespec run` "
                        f"(or `{step.resume or 'widespec ' + step.label}` alone)"
                    ) from exc
                result = StepResult(
                    step.label, step.stage.work_done(done), done.summary, done.as_dict(), done.nothing_to_do
                )
            results.append(result)
            if on_step:
                on_step(result)
    return results


def pending_work(ws: Workspace) -> dict[str, int]:
    """Each registered stage's own count of waiting work (for `widespec status`)."""
    return {step.label: step.pending_count(ws) for step in PIPELINE}


def random_weight_models(ws: Workspace) -> list[str]:
    """Configured generator and scorer models that are widespec's random-weight test models."""
    models = [*ws.settings.generator.models, ws.settings.scorer.model]
    return sorted({m for m in models if m.startswith("builtin:")})
