"""The numbers behind the HTML report, gathered from the store (no rendering here)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from curation.core.judges import JudgeIdentity
from curation.core.pairs import Pair, iter_pairs
from curation.core.scorer import truncated_texts
from curation.core.store import Record, Store
from curation.core.verdicts import round_agreement
from curation.domain.evidence import current_evidence
from curation.domain.fate import RowsMode, fate

CLIP_METRICS = ("fidelity", "content_kept", "direction")
INTENSITY_ORDER = ("mild", "moderate", "extreme")


@dataclass
class ReportData:
    funnel: list[tuple[str, int, dict[str, int]]]
    acceptance_by_dimension: dict[str, Counter[str]]
    acceptance_by_intensity: dict[str, Counter[str]]
    metrics_by_outcome: dict[str, dict[str, list[float]]]
    rounds: list[dict[str, Any]]
    spend: list[Record]
    gallery: list[Pair]
    random_weight_models: list[str]
    decisions: dict[str, str] = field(default_factory=dict)
    scorer: str | None = None
    text_context: dict[str, dict[str, int]] = field(default_factory=dict)


def _status_counts(store: Store, kind: str, column: str) -> tuple[int, dict[str, int]]:
    return store.count(kind), store.counts_by(kind, column)


def clip_outcomes(store: Store) -> dict[str, str]:
    """Pair id → latest CLIP-stage outcome."""
    return {d["subject_id"]: d["outcome"] for d in store.iter("decision", stage="clip")}


def metric_values(store: Store, scorer: str | None) -> dict[str, dict[str, float]]:
    """Pair id → metric → value, for the scores of `scorer` (the configured one) that have a value."""
    values: dict[str, dict[str, float]] = defaultdict(dict)
    for score in store.iter("score", metric=list(CLIP_METRICS), status="ok"):
        if score["value"] is not None and score["scorer"] == scorer:
            values[score["subject_id"]][score["metric"]] = float(score["value"])
    return values


def fates(store: Store, mode: RowsMode, judge: JudgeIdentity | None) -> Counter[str]:
    """How many current pairs stand where: `accepted by human`, `rejected by clip`, `undecided`, ... (the fate
    module's answer under the release's rows mode)."""
    found: Counter[str] = Counter()
    for _pair, evidence in current_evidence(store, judge):
        placed = fate(evidence, mode)
        found[f"{placed.outcome} by {placed.by}" if placed.by else placed.outcome] += 1
    return found


def gather(
    store: Store,
    scorer: str | None,
    *,
    gallery_size: int = 12,
    mode: RowsMode = "accepted",
    judge: JudgeIdentity | None = None,
) -> ReportData:
    """Everything the report shows, from the records alone; scores are those of `scorer` (the configured one),
    fates those of the release's rows `mode` and the configured `judge`."""
    pairs = list(iter_pairs(store))
    outcomes = clip_outcomes(store)
    standing = fates(store, mode, judge)
    funnel = [
        ("base prompts", *_status_counts(store, "base_prompt", "status")),
        ("variants", *_status_counts(store, "variant", "status")),
        ("renders", *_status_counts(store, "render", "status")),
        ("current pairs", len(pairs), store.counts_by("pair", "status")),
        (
            "scored pairs",
            len({s["subject_id"] for s in store.iter("score", metric="fidelity") if s["scorer"] == scorer}),
            {},
        ),
        ("CLIP decisions", len(outcomes), dict(Counter(outcomes.values()))),
        ("human verdicts", *_status_counts(store, "verdict", "label")),
        (f"fates (export.rows = {mode})", sum(standing.values()), dict(sorted(standing.items()))),
        ("released rows", max((r["row_count"] for r in store.iter("release")), default=0), {}),
    ]
    by_dimension: dict[str, Counter[str]] = defaultdict(Counter)
    by_intensity: dict[str, Counter[str]] = defaultdict(Counter)
    for pair in pairs:
        outcome = outcomes.get(pair.id, "undecided")
        by_intensity[pair.variant["intensity"]][outcome] += 1
        for dimension in pair.variant["dimensions"]:
            by_dimension[dimension][outcome] += 1
    values = metric_values(store, scorer)
    by_outcome: dict[str, dict[str, list[float]]] = {m: defaultdict(list) for m in CLIP_METRICS}
    for pair_id, metrics in values.items():
        for metric, value in metrics.items():
            by_outcome[metric][outcomes.get(pair_id, "undecided")].append(value)
    rounds: dict[int, list[Record]] = defaultdict(list)
    for verdict in store.iter("verdict"):
        rounds[verdict["round"]].append(verdict)
    round_rows = []
    figures = {r.round: r for r in round_agreement(v for group in rounds.values() for v in group)}
    for number in sorted(rounds):
        verdicts = rounds[number]
        shares = [v["agreement"] for v in verdicts if v["agreement"] is not None]
        round_rows.append(
            {
                "round": number,
                "pairs": len(verdicts),
                "labels": dict(Counter(v["label"] for v in verdicts)),
                "alpha": figures[number].alpha,
                "alpha_interval": figures[number].interval,
                "mean_winning_share": sum(shares) / len(shares) if shares else None,
                "annotations": store.count("annotation", round=number),
            }
        )
    models = {r["generator"]["model"] for r in store.iter("render")}
    models |= {s["scorer"] for s in store.iter("score")}
    ordered = sorted(pairs, key=lambda p: (outcomes.get(p.id) != "accept", p.id))
    return ReportData(
        funnel=funnel,
        acceptance_by_dimension=dict(sorted(by_dimension.items())),
        acceptance_by_intensity={k: by_intensity[k] for k in INTENSITY_ORDER if k in by_intensity},
        metrics_by_outcome={m: dict(v) for m, v in by_outcome.items()},
        rounds=round_rows,
        spend=store.spend(),
        gallery=ordered[:gallery_size],
        random_weight_models=sorted(m for m in models if m.startswith("builtin:")),
        decisions=outcomes,
        scorer=scorer,
        text_context=truncated_texts(store, scorer),
    )
