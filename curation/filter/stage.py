"""`widespec filter`: accept / review / reject decisions from stored scores and the configured thresholds.

Decisions are recomputed from the scores every time (nothing is re-encoded) and replace the previous decision of
the same pair. Text decisions (about variants, before any image exists) are the text-checks stage's; a pair whose
variant failed them is rejected at the clip stage with their reasons.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from curation.core.console import warn
from curation.core.executor import execute
from curation.core.pairs import iter_pairs
from curation.core.records import decision_record
from curation.core.scorer import configured_scorer
from curation.core.stage import Output, Stage, StageResult, Work
from curation.core.store import Store
from curation.core.taxonomy import probe_texts
from curation.core.workspace import Workspace
from curation.domain.gates import Decision, MetricValue, Thresholds, decide_pair

# Human labels that count as "the variant image shows what the anti-aesthetic prompt asks for".
ACCEPTED_LABELS = {"anti"}
REJECTED_LABELS = {"base", "tie"}


def scores_by_subject(store: Store, scorer: str) -> dict[str, dict[str, MetricValue]]:
    table: dict[str, dict[str, MetricValue]] = defaultdict(dict)
    for row in store.iter("score"):
        if row["scorer"] == scorer:
            table[row["subject_id"]][row["metric"]] = MetricValue(row["value"], row.get("error"))
    return table


@dataclass(frozen=True)
class PairScores:
    pair_id: str
    variant_id: str
    dimensions: tuple[str, ...]
    values: dict[str, MetricValue]
    text_rejections: tuple[str, ...] = ()  # why the text checks rejected its variant


@dataclass(frozen=True)
class Decide:
    """The filter's compute: pure clip decisions for every pair."""

    limits: Thresholds

    def run(self, units: Sequence[PairScores]) -> Iterator[Output]:
        output = Output(advance=len(units), records={"decision": []})
        for pair in units:
            decision = decide_pair(pair.values, pair.dimensions, self.limits, pair.text_rejections)
            self._add(output, pair.pair_id, "clip", decision, pair.dimensions)
        yield output

    @staticmethod
    def _add(output: Output, subject: str, stage: str, decision: Decision, dimensions: Sequence[str]) -> None:
        output.records["decision"].append(
            decision_record(subject, stage, decision.outcome, decision.reasons, decision.thresholds)
        )
        output.counts[f"{stage}:{decision.outcome}"] += 1
        for dim in dimensions:
            output.counts[f"dimension:{dim}:{decision.outcome}"] += 1

    @contextmanager
    def opened(self) -> Iterator[Decide]:
        yield self


@dataclass
class FilterResult:
    scorer: str
    dry_run: bool
    clip: Counter[str] = field(default_factory=Counter)
    per_dimension: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    unscored_pairs: int = 0
    written: int = 0

    @classmethod
    def from_counts(cls, scorer: str, dry_run: bool, counts: Counter[str], unscored: int, written: int) -> FilterResult:
        result = cls(scorer, dry_run, unscored_pairs=unscored, written=written)
        for key, n in counts.items():
            parts = key.split(":")
            if parts[0] == "clip":
                result.clip[parts[1]] += n
            elif parts[0] == "dimension":
                result.per_dimension[parts[1]][parts[2]] += n
        return result

    def as_dict(self) -> dict[str, Any]:
        return {
            "scorer": self.scorer,
            "dry_run": self.dry_run,
            "clip": dict(self.clip),
            "per_dimension": {d: dict(c) for d, c in sorted(self.per_dimension.items())},
            "unscored_pairs": self.unscored_pairs,
            "written": self.written,
        }


@dataclass(frozen=True)
class FilterOptions:
    thresholds: Thresholds | None = None


def pending_filter(ws: Workspace) -> int:
    """Current pairs with a fidelity score from the configured scorer but no clip decision."""
    scorer = configured_scorer(ws.store, ws.settings.scorer)
    scored = {r["subject_id"] for r in ws.store.iter("score", metric="fidelity") if r["scorer"] == scorer}
    decided = {row["subject_id"] for row in ws.store.iter("decision", stage="clip")}
    return len((scored & ws.store.ids("pair", status="current")) - decided)


class FilterStage(Stage):
    """Clip decisions for every pair the configured scorer scored."""

    name = "filter"
    needs = ("score", "pair", "variant")
    makes = ("decision",)

    def pending(self, ws: Workspace) -> int:
        return pending_filter(ws)

    def plan(self, ws: Workspace, options: FilterOptions | None = None) -> Work | None:
        settings = ws.settings
        limits = (options.thresholds if options else None) or Thresholds.from_config(settings.filter)
        scorer = configured_scorer(ws.store, settings.scorer)
        if scorer is None:
            return None
        unknown = sorted(set(limits.per_dimension) - set(probe_texts(settings.taxonomy.path, ws.root)))
        if unknown:
            warn(f"[filter.dimensions] names dimensions the taxonomy does not have: {', '.join(unknown)}")
        scores = scores_by_subject(ws.store, scorer)
        rejected = {
            d["subject_id"]: tuple(d["reasons"])
            for d in ws.store.iter("decision", stage="text")
            if d["outcome"] == "reject"
        }
        units: list[PairScores] = []
        unscored = 0
        for pair in iter_pairs(ws.store):
            values = scores.get(pair.id, {})
            if "fidelity" not in values:
                unscored += 1
                continue
            variant = pair.variant["id"]
            units.append(
                PairScores(pair.id, variant, tuple(pair.variant["dimensions"]), values, rejected.get(variant, ()))
            )
        return Work(
            units,
            Decide(limits).opened,
            label="filter",
            unit="decisions",
            details={"scorer": scorer, "unscored_pairs": unscored},
        )

    def summary(self, result: StageResult) -> str:
        clip = {k.split(":")[1]: v for k, v in sorted(result.counts.items()) if k.startswith("clip:")}
        shown = ", ".join(f"{k} {v}" for k, v in clip.items()) or "no pairs"
        return f"{result.written} decisions written; clip: {shown}"


FILTER = FilterStage()


def run_filter(ws: Workspace, *, dry_run: bool = False, thresholds: Thresholds | None = None) -> FilterResult:
    """Decide every scored variant and pair; write the decisions unless `dry_run`."""
    options = FilterOptions(thresholds)
    if not dry_run:
        result = execute(ws, FILTER, options)
        details = result.details
        return FilterResult.from_counts(
            details.get("scorer", ""), False, result.counts, details.get("unscored_pairs", 0), result.written
        )
    work = FILTER.plan(ws, options)
    if work is None:
        return FilterResult(scorer="", dry_run=True)
    counts: Counter[str] = Counter()
    assert work.compute is not None
    with work.compute() as compute:
        for output in compute.run(work.units):
            counts.update(output.counts)
    return FilterResult.from_counts(work.details["scorer"], True, counts, work.details["unscored_pairs"], 0)
