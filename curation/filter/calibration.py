"""`widespec filter --calibrate`: fit the gates' thresholds to human verdicts and write them to widespec.toml."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from curation.core import config as config_module
from curation.core.errors import InputError
from curation.core.pairs import iter_pairs
from curation.core.scorer import configured_scorer
from curation.core.store import Record, Store, utc_now
from curation.core.workspace import Workspace
from curation.filter import calibrate
from curation.filter.decisions import GATE_KEYS, Thresholds
from curation.filter.stage import ACCEPTED_LABELS, REJECTED_LABELS, scores_by_subject


@dataclass
class Calibration:
    scorer: str
    rounds: list[int]
    verdicts: int
    used: int
    fits: list[calibrate.Fit]
    written: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fits": [asdict(f) for f in self.fits]}


def human_labels(store: Store, round_number: int | None) -> tuple[dict[str, bool], list[int]]:
    """Pair id → accepted by humans, from the latest round that resolved it; and the rounds used."""
    latest: dict[str, Record] = {}
    filters = {"round": round_number} if round_number is not None else {}
    for verdict in store.iter("verdict", **filters):
        if verdict["label"] not in ACCEPTED_LABELS | REJECTED_LABELS:
            continue
        seen = latest.get(verdict["subject_id"])
        if seen is None or verdict["round"] > seen["round"]:
            latest[verdict["subject_id"]] = verdict
    labels = {sid: v["label"] in ACCEPTED_LABELS for sid, v in latest.items()}
    return labels, sorted({v["round"] for v in latest.values()})


def fit_thresholds(ws: Workspace, *, round_number: int | None = None) -> Calibration:
    """Fit every gate's threshold, globally and per dimension, to the human verdicts (nothing written)."""
    store, settings = ws.store, ws.settings
    limits = Thresholds.from_config(settings.filter)
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
            samples.append((pair.variant["dimensions"], values, labels[pair.id]))
    if not samples:
        raise InputError(
            f"{len(labels)} pairs have human verdicts but none has scores from scorer {scorer}: run `widespec score`"
        )
    fits = []
    for family in GATE_KEYS:
        for scope, (scope_values, flags) in sorted(calibrate.collect(samples, family).items(), key=_scope_order):
            current = limits.minimums[family] if scope == "global" else limits.threshold(family, [scope])[0]
            fits.append(
                calibrate.fit(
                    family,
                    scope,
                    scope_values,
                    flags,
                    current,
                    min_verdicts=settings.filter.calibration_min_verdicts,
                    min_auroc=settings.filter.calibration_min_auroc,
                )
            )
    return Calibration(scorer, rounds, len(labels), len(samples), fits, [])


def _scope_order(item: tuple[str, Any]) -> tuple[int, str]:
    return (0 if item[0] == "global" else 1, item[0])


def with_fits(thresholds: Thresholds, fits: Sequence[calibrate.Fit]) -> Thresholds:
    """The thresholds after applying every fit marked to be written."""
    minimums = dict(thresholds.minimums)
    per_dimension = {d: dict(v) for d, v in thresholds.per_dimension.items()}
    for f in fits:
        if f.writes and f.fitted is not None:
            value = round(f.fitted.threshold, 4)
            if f.scope == "global":
                minimums[f.metric] = value
            else:
                per_dimension.setdefault(f.scope, {})[f.metric] = value
    return replace(thresholds, minimums=minimums, per_dimension=per_dimension)


def write_thresholds(ws: Workspace, calibration: Calibration) -> list[str]:
    """Write the fitted thresholds into widespec.toml, each with a comment saying when and from what."""
    rounds = ", ".join(str(r) for r in calibration.rounds)
    written = []
    for f in calibration.fits:
        if not f.writes or f.fitted is None or f.auroc is None:
            continue
        comment = (
            f"calibrated {utc_now()[:10]} from round{'s' if len(calibration.rounds) > 1 else ''} {rounds}: "
            f"{f.n} verdicts, balanced accuracy {f.fitted.balanced_accuracy:.2f}, AUROC {f.auroc:.2f}"
        )
        section = "filter" if f.scope == "global" else f"filter.dimensions.{f.scope}"
        key = GATE_KEYS[f.metric]
        config_module.set_value(ws.config_path, section, key, round(f.fitted.threshold, 4), comment)
        written.append(f"{section}.{key}")
    ws.reload_config()
    calibration.written = written
    ws.reports_dir.mkdir(exist_ok=True)
    report = ws.reports_dir / f"calibration-{utc_now().replace(':', '')}.json"
    report.write_text(json.dumps(calibration.as_dict(), indent=2), encoding="utf-8")
    return written
