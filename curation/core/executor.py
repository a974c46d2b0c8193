"""The one executor: runs a stage's work under the workspace lock and owns all of its bookkeeping.

Per stage execution: take the lock (or join the one `widespec run` holds), mark runs of dead processes as
interrupted, ask the stage for its work, open a ledger run, commit what comes before the compute, then commit
each output of the compute in its own transaction together with the run's partial counts, advancing the
progress bar. The ledger run ends `ok`, `failed` (with the error) or `interrupted`; a run whose process is
killed outright is found `interrupted` by the next command.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from curation.core.config import config_hash
from curation.core.console import progress_bar
from curation.core.errors import WidespecError
from curation.core.pause import pause_point
from curation.core.secrets import redact
from curation.core.stage import Output, Stage, StageResult, Work
from curation.core.threads import cpu_threads
from curation.core.workspace import MOVES_KEY, Workspace, finish_moves


class UndeclaredOutput(WidespecError):
    """A stage's output carries a record kind its `makes` does not declare (a defect in the stage)."""


def check_declared(stage: Stage | None, kinds: Iterable[str]) -> None:
    """Raise when `stage` makes a record kind it does not declare in `makes`."""
    if stage is None:
        return
    undeclared = sorted(set(kinds) - set(stage.makes))
    if undeclared:
        raise UndeclaredOutput(
            f"stage {stage.name} wrote {', '.join(undeclared)} records but declares makes = {stage.makes}; "
            "nothing of this batch was stored"
        )


def commit(
    ws: Workspace,
    output: Output,
    run_id: int | None,
    counts: Counter[str],
    ledger: Mapping[str, Any] | None = None,
    stage: Stage | None = None,
) -> int:
    """Write one output in one transaction (images first, outside it: they are content-addressed); the run's
    ledger row gets the counts so far and `ledger`'s entries (the cluster a Ray run computes on). The records
    `stage` derives from the output (the pairs its renders complete) join the same transaction, and every kind
    written must be one the stage declares in `makes`."""
    check_declared(stage, (kind for kind, records in output.records.items() if records))
    for data in output.images:
        ws.images.put(data)
    written = 0
    with ws.store.transaction():
        for kind, records in output.records.items():
            keep = kind in output.keep_existing
            written += ws.store.put(kind, records, on_conflict="ignore" if keep else "replace")
        if stage is not None:
            derived = stage.derive(ws.store, output)
            check_declared(stage, (kind for kind, records in derived.items() if records))
            for kind, records in derived.items():
                written += ws.store.put(kind, records, on_conflict="replace")
        for key, value in output.state.items():
            ws.store.state_put(key, value)
        counts.update(output.counts)
        counts["written"] += written
        if run_id is not None:
            ws.store.update_run(run_id, {**counts, **(ledger or {})})
        if output.moves:  # journaled with the records: once they commit, the moves are owed
            ws.store.state_put(MOVES_KEY, [[str(source), str(target)] for source, target in output.moves])
    if stage is not None:
        pause_point(ws.runtime_dir, stage.name, "journaled")
    finish_moves(ws)
    return written


def execute(ws: Workspace, stage: Stage, options: Any = None) -> StageResult:
    """Run `stage` once; "nothing to do" is a normal result (run_id None), never an error."""
    shard = stage.co_writer(options)
    with ws.writing("shared" if shard else "exclusive", shard):
        return _execute(ws, stage, options)


def _execute(ws: Workspace, stage: Stage, options: Any) -> StageResult:
    result = StageResult(stage.name)
    started = time.perf_counter()
    try:
        work = stage.plan(ws, options)
    except Exception as exc:  # a stage that cannot even plan (model missing, bad input) failed: say so in the ledger
        ws.store.finish_run(ws.store.start_run(stage.name, config_hash(ws.config)), "failed", {}, _reason(ws, exc))
        raise
    if work is None or (not work.units and work.before is None):
        result.details = dict(work.details) if work else {}
        result.summary = stage.summary(result)
        return result
    result.details = dict(work.details)
    run_id = ws.store.start_run(stage.name, config_hash(ws.config))
    result.run_id = run_id
    counts: Counter[str] = result.counts
    try:
        pause_point(ws.runtime_dir, stage.name, "started")
        if work.before is not None:
            result.written += commit(ws, work.before, run_id, counts, stage=stage)
        if work.units and work.compute is not None:
            _run_compute(ws, stage, work, run_id, result)
        pause_point(ws.runtime_dir, stage.name, "finishing")
    except KeyboardInterrupt:
        ws.store.finish_run(run_id, "interrupted", _ledger(result), "interrupted (Ctrl-C)")
        raise
    except BaseException as exc:
        ws.store.finish_run(run_id, "failed", _ledger(result), _reason(ws, exc))
        raise
    result.seconds = time.perf_counter() - started
    ws.store.finish_run(run_id, "ok", _ledger(result))
    result.summary = stage.summary(result)
    return result


def _reason(ws: Workspace, exc: BaseException) -> str:
    """The ledger's one-line error: secret values (configured tokens, local logins, key-shaped strings) redacted."""
    reason = str(exc) if isinstance(exc, WidespecError) else f"{type(exc).__name__}: {exc}"
    return redact(reason, ws.secrets())[:2000]


LEDGER_DETAILS = ("cluster",)  # details the run's ledger row keeps beside its counts


def _ledger_details(result: StageResult) -> dict[str, Any]:
    return {key: result.details[key] for key in LEDGER_DETAILS if key in result.details}


def _ledger(result: StageResult) -> dict[str, Any]:
    """What the run's ledger row holds: its counts, and the cluster when its compute ran on Ray."""
    return {**result.counts, **_ledger_details(result)}


def _outputs(ws: Workspace, stage: Stage, work: Work, run_id: int, result: StageResult) -> Iterator[Output]:
    """The compute's outputs: in this process, or on Ray actors when `[executor] kind = "ray"` and the stage is
    distributable (the cluster it joined goes into the run's ledger row and the result's details first); either
    way with `executor.cpu_threads` torch threads."""
    assert work.compute is not None
    settings = ws.settings.executor
    if settings.kind == "ray" and stage.distributable:
        from curation.core.ray_backend import connect, run_on_ray

        result.details["cluster"] = cluster = connect(settings)
        ws.store.update_run(run_id, _ledger(result))
        yield from run_on_ray(work.compute, work.units, settings, cluster, work.portable)
        return
    with work.compute() as compute, cpu_threads(settings.cpu_threads):
        yield from compute.run(work.units)


def _run_compute(ws: Workspace, stage: Stage, work: Work, run_id: int, result: StageResult) -> None:
    total = work.total if work.total is not None else len(work.units)
    with progress_bar(work.label, total, work.unit) as bar:
        for output in _outputs(ws, stage, work, run_id, result):
            pause_point(ws.runtime_dir, stage.name, "computed")
            result.written += commit(ws, output, run_id, result.counts, _ledger_details(result), stage)
            pause_point(ws.runtime_dir, stage.name, "committed")
            result.details.update(output.details)
            bar.advance(output.advance)
