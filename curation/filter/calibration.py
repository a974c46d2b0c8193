"""`widespec filter --calibrate`: fit the gates' thresholds to human verdicts and write them to widespec.toml."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from curation.core import config as config_module
from curation.core.errors import InputError
from curation.core.executor import execute
from curation.core.pairs import iter_pairs
from curation.core.scorer import configured_scorer
from curation.core.stage import Output, Stage, Work
from curation.core.store import Record, Store, utc_now
from curation.core.workspace import Workspace
from curation.domain.gates import GATE_KEYS, Thresholds
from curation.filter import calibrate
from curation.filter import joint as joint_fit
from curation.filter.stage import ACCEPTED_LABELS, REJECTED_LABELS, scores_by_subject


@dataclass
class Calibration:
    """Thresholds fitted jointly to human verdicts, with the figures of the whole decision rule: as configured,
    as fitted (in-sample) and as the fitting procedure does on held-out verdicts (stratified k-fold)."""

    scorer: str
    rounds: list[int]
    verdicts: int
    used: int
    fits: list[calibrate.Fit]  # each threshold alone: AUROC per metric and dimension, and which are fitted
    joint: list[joint_fit.JointValue]
    current_rule: joint_fit.RuleQuality
    fitted_rule: joint_fit.RuleQuality
    held_out_rule: joint_fit.RuleQuality | None
    folds: int
    written: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def fitted_values(self) -> dict[tuple[str, str], float]:
        return {(v.metric, v.scope): v.fitted for v in self.joint if v.free}


def human_labels(store: Store, round_number: int | None) -> tuple[dict[str, bool], list[int]]:
    """Pair id → accepted by humans, from the latest round that resolved it; and the rounds used."""
    latest: dict[str, Record] = {}
    filters: dict[str, Any] = {"round": round_number} if round_number is not None else {}
    for verdict in store.iter("verdict", **filters):
        if verdict["label"] not in ACCEPTED_LABELS | REJECTED_LABELS:
            continue
        seen = latest.get(verdict["subject_id"])
        if seen is None or verdict["round"] > seen["round"]:
            latest[verdict["subject_id"]] = verdict
    labels = {sid: v["label"] in ACCEPTED_LABELS for sid, v in latest.items()}
    return labels, sorted({v["round"] for v in latest.values()})


def fit_thresholds(ws: Workspace, *, round_number: int | None = None) -> Calibration:
    """Fit the gates' thresholds jointly, globally and per dimension, to the human verdicts (nothing written)."""
    store, settings = ws.store, ws.settings
    current = Thresholds.from_config(settings.filter)
    labels, rounds = human_labels(store, round_number)
    if not labels:
        where = f"round {round_number}" if round_number is not None else "any round"
        raise InputError(f"no resolved human verdicts in {where}: run a human round first (widespec annotate)")
    scorer = configured_scorer(store, settings.scorer) or settings.scorer.model
    scores = scores_by_subject(store, scorer)
    samples: list[calibrate.Sample] = []
    for pair in iter_pairs(store):
        if pair.id in labels and pair.id in scores:
            values = {m: v.value for m, v in scores[pair.id].items() if v.value is not None}
            if all(metric in values for metric in joint_fit.PAIR_FAMILIES):  # a pair missing one is rejected anyway
                samples.append((pair.variant["dimensions"], values, labels[pair.id]))
    if not samples:
        raise InputError(
            f"{len(labels)} pairs have human verdicts but none has scores from scorer {scorer}: run `widespec score`"
        )
    min_verdicts, min_auroc = settings.filter.calibration_min_verdicts, settings.filter.calibration_min_auroc
    matrix = joint_fit.GateMatrix(samples)
    fitted, free, fits = joint_fit.fit_rule(matrix, samples, current, min_verdicts=min_verdicts, min_auroc=min_auroc)
    before = joint_fit.flat(current)
    joint = [
        joint_fit.JointValue(
            family,
            scope,
            before.get((family, scope), current.threshold(family, [scope])[0]),
            value,
            (family, scope) in free,
        )
        for (family, scope), value in sorted(
            fitted.items(), key=lambda item: (item[0][1] != "global", item[0][1], item[0][0])
        )
    ]
    held_out, folds = joint_fit.cross_validate(
        samples, current, min_verdicts=min_verdicts, min_auroc=min_auroc, seed=settings.project.seed
    )
    return Calibration(
        scorer,
        rounds,
        len(labels),
        len(samples),
        fits,
        joint,
        joint_fit.quality(matrix.labels, *matrix.evaluate(before)),
        joint_fit.quality(matrix.labels, *matrix.evaluate(fitted)),
        held_out,
        folds,
        [],
    )


def fitted_thresholds(thresholds: Thresholds, calibration: Calibration) -> Thresholds:
    """The thresholds with every fitted value applied (what `--calibrate --dry-run` decides with)."""
    return joint_fit.with_values(thresholds, calibration.fitted_values)


@dataclass(frozen=True)
class ThresholdWriter:
    """Calibration's compute: the fitted thresholds into widespec.toml, each with a comment saying when, from
    what and how well, and the calibration's report beside the others."""

    config_path: Path
    reports_dir: Path
    calibration: Calibration

    @contextmanager
    def opened(self) -> Iterator[ThresholdWriter]:
        yield self

    def run(self, units: Sequence[str]) -> Iterator[Output]:
        calibration = self.calibration
        rounds = ", ".join(str(r) for r in calibration.rounds)
        rule, held_out = calibration.fitted_rule, calibration.held_out_rule
        figures = f"balanced accuracy {rule.balanced_accuracy:.2f} in-sample"
        if held_out is not None:
            figures += f", {held_out.balanced_accuracy:.2f} held-out ({calibration.folds}-fold)"
        written = []
        for value in calibration.joint:
            if not value.free:
                continue
            comment = (
                f"calibrated {utc_now()[:10]} from round{'s' if len(calibration.rounds) > 1 else ''} {rounds}: "
                f"{calibration.used} verdicts, all gates fitted jointly, {figures}"
            )
            section = "filter" if value.scope == "global" else f"filter.dimensions.{value.scope}"
            key = GATE_KEYS[value.metric]
            config_module.set_value(self.config_path, section, key, round(value.fitted, 4), comment)
            written.append(f"{section}.{key}")
        self.reports_dir.mkdir(exist_ok=True)
        report = self.reports_dir / f"calibration-{utc_now().replace(':', '')}.json"
        report.write_text(json.dumps({**calibration.as_dict(), "written": written}, indent=2), encoding="utf-8")
        yield Output(counts=Counter(thresholds_written=len(written)), details={"written": written}, advance=1)


class Calibrate(Stage):
    """Writing fitted thresholds to widespec.toml under the workspace lock, with a ledger run like any stage."""

    name = "calibrate"

    def __init__(self, calibration: Calibration) -> None:
        self.calibration = calibration

    def pending(self, ws: Workspace) -> int:
        return 0  # a calibration is asked for, never waiting

    def plan(self, ws: Workspace, options: Any = None) -> Work:
        writer = ThresholdWriter(ws.config_path, ws.reports_dir, self.calibration)
        return Work(["widespec.toml"], writer.opened, label="calibrate", unit="files")


def write_thresholds(ws: Workspace, calibration: Calibration) -> list[str]:
    """Write the fitted thresholds into widespec.toml (through the executor) and reload the configuration."""
    result = execute(ws, Calibrate(calibration))
    ws.reload_config()
    calibration.written = list(result.details["written"])
    return calibration.written
