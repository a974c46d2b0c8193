"""`widespec judge report`: the configured judge against the humans, and each generator against the judge.

On pairs that also have a human verdict: accuracy, Cohen's kappa and quadratic-weighted kappa (base < tie < anti)
with bootstrap 95% intervals, overall and per dimension and intensity, and the confusion matrix; the position-bias
(flip) rate; each generator's success rate at following anti-aesthetic prompts (the paper's headline table).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from curation.core.errors import InputError
from curation.core.intervals import interval_text
from curation.core.judges import configured_judge, current_judgments, human_labels
from curation.core.pairs import iter_pairs
from curation.core.workspace import Workspace
from curation.judge.metrics import JudgedPair, agreement, agreement_by, flip_rate, success_rates


def judged_pairs(ws: Workspace) -> tuple[str, list[JudgedPair], dict[str, int]]:
    """The configured judge's source, every pair it judged as the figures see it, and its judgments by status."""
    identity = configured_judge(ws)
    if identity is None:
        raise InputError("judge.model is empty: set [judge] model and base_url in widespec.toml")
    judgments = current_judgments(ws.store, identity)
    humans = human_labels(ws.store.iter("verdict"))
    statuses: dict[str, int] = {}
    items = []
    for pair in iter_pairs(ws.store):
        judgment = judgments.get(pair.id)
        if judgment is None:
            continue
        statuses[judgment["status"]] = statuses.get(judgment["status"], 0) + 1
        if judgment["status"] != "ok":
            continue
        label = judgment["label"]
        both = len(judgment["orders"]) == 2
        items.append(
            JudgedPair(
                pair.id,
                None if label == "inconsistent" else label,
                humans.get(pair.id),
                pair.generator,
                tuple(pair.variant["dimensions"]),
                pair.variant["intensity"],
                (label != "inconsistent") if both else None,
            )
        )
    return identity.source, items, statuses


def judge_report(ws: Workspace) -> dict[str, Any]:
    """Every figure of the report, JSON-ready (an undefined figure is null, never 0)."""
    source, items, statuses = judged_pairs(ws)
    seed, rounds = ws.settings.project.seed, ws.settings.judge.bootstrap_rounds
    overall = agreement([i.ordinal for i in items], [i.human for i in items], seed=seed, rounds=rounds)
    flips = flip_rate(items)
    return {
        "judge": source,
        "judgments": statuses,
        "agreement": asdict(overall) if overall else None,
        "by_dimension": {k: asdict(v) for k, v in agreement_by(items, "dimension", seed=seed, rounds=rounds).items()},
        "by_intensity": {k: asdict(v) for k, v in agreement_by(items, "intensity", seed=seed, rounds=rounds).items()},
        "flips": asdict(flips),
        "success_rates": {k: asdict(v) for k, v in success_rates(items).items()},
        "gate": {"min_kappa": ws.settings.judge.min_kappa, "min_overlap": ws.settings.judge.min_overlap},
    }


def _figure(value: dict[str, Any] | None) -> str:
    return interval_text(value, missing="n/a")


def report_lines(report: dict[str, Any]) -> list[str]:
    """The report as plain text lines for the terminal."""
    lines = [f"judge {report['judge']}: " + ", ".join(f"{k} {v}" for k, v in sorted(report["judgments"].items()))]
    found = report["agreement"]
    if found is None:
        lines.append("against humans: no pair has both a judge and a human verdict yet")
    else:
        lines.append(
            f"against humans ({found['n']} pairs): accuracy {_figure(found['accuracy'])}, kappa "
            f"{_figure(found['kappa'])}, quadratic kappa {_figure(found['quadratic_kappa'])}"
        )
        lines.append("confusion (rows human, columns judge: base tie anti):")
        for human, row in found["confusion"].items():
            lines.append(f"  {human:>5}  " + "  ".join(f"{row[j]:>4}" for j in ("base", "tie", "anti")))
        for facet in ("by_intensity", "by_dimension"):
            for group, figures in report[facet].items():
                lines.append(
                    f"  {facet[3:]} {group}: n {figures['n']}, quadratic kappa {_figure(figures['quadratic_kappa'])}"
                )
    flips = report["flips"]
    lines.append(
        f"position bias: {flips['flipped']} of {flips['checked']} pairs flipped, rate {_figure(flips['rate'])}"
    )
    lines.append("success rate (judge picks the anti-aesthetic image; ties and base wins apart):")
    for generator, rate in report["success_rates"].items():
        lines.append(
            f"  {generator}: {_figure(rate['rate'])} of {rate['judged']} (tie {rate['tie']}, base {rate['base']}, "
            f"inconsistent {rate['inconsistent']})"
        )
    return lines
