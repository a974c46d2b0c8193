"""`widespec text-checks`: the text gate before any image is made, a stage of its own.

For every ok variant, with the configured scorer's text tower: how far its text moved from its base prompt
(`text_distance`) and how close it is to an earlier variant of the same base prompt (`text_sibling_cosine`); then
its text decision (accept / reject, curation.domain.gates.decide_text) in the same transaction. A check that
failed rejects its variant: generate renders only variants the text checks accepted. Decisions are made again
from the stored scores on every execution, so changed thresholds take effect without encoding anything.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

from curation.core.records import TEXT_METRICS, decision_record
from curation.core.scorer import configured_scorer, scorer_state
from curation.core.stage import Output, Stage, StageResult, Work
from curation.core.store import Record, Store
from curation.core.workspace import Workspace
from curation.domain.gates import MetricValue, Thresholds, decide_text
from curation.score.pending import pending_text_checks
from curation.score.stage import Encode, VariantText, embeddings_folder, scorer_source, variant_units

STAGE = "text-checks"


@dataclass(frozen=True)
class CheckedVariant:
    """A variant whose text checks are stored: its decision is made from them."""

    variant_id: str
    distance: MetricValue
    sibling: MetricValue | None


TextUnit = VariantText | CheckedVariant


def text_scores(store: Store, scorer: str) -> dict[str, dict[str, MetricValue]]:
    """variant id → text metric → stored value (or the error that left it missing), of `scorer`."""
    table: dict[str, dict[str, MetricValue]] = {}
    for metric in TEXT_METRICS:
        for row in store.iter("score", metric=metric):
            if row["scorer"] == scorer:
                table.setdefault(row["subject_id"], {})[metric] = MetricValue(row["value"], row.get("error"))
    return table


def _decision(variant_id: str, scores: dict[str, MetricValue], limits: Thresholds) -> Record:
    decision = decide_text(scores["text_distance"], scores.get("text_sibling_cosine"), limits)
    return decision_record(variant_id, "text", decision.outcome, decision.reasons, decision.thresholds)


@dataclass(frozen=True)
class CheckTexts:
    """The stage's compute: encode the families with a variant to check (when there are any), then decide every
    variant from its text scores. It never touches the store."""

    encode: Encode | None
    limits: Thresholds

    @contextmanager
    def opened(self) -> Iterator[CheckTexts]:
        if self.encode is None:
            yield self
            return
        with self.encode.opened() as encode:
            yield replace(self, encode=encode)

    def run(self, units: Sequence[TextUnit]) -> Iterator[Output]:
        families = [u for u in units if isinstance(u, VariantText)]
        output = Output(records={"score": [], "decision": []}, advance=len(units))
        scores: dict[str, dict[str, MetricValue]] = {
            u.variant_id: {"text_distance": u.distance} | ({"text_sibling_cosine": u.sibling} if u.sibling else {})
            for u in units
            if isinstance(u, CheckedVariant)
        }
        if families and self.encode is not None:
            for encoded in self.encode.run(families):
                output.records["score"] += encoded.records["score"]
                output.counts.update(encoded.counts)
            for row in output.records["score"]:
                scores.setdefault(row["subject_id"], {})[row["metric"]] = MetricValue(row["value"], row["error"])
        for variant_id in sorted(scores):
            decision = _decision(variant_id, scores[variant_id], self.limits)
            output.records["decision"].append(decision)
            output.counts[f"text:{decision['outcome']}"] += 1
        yield output


class TextChecksStage(Stage):
    """Text scores and text decisions for every ok variant, with the configured scorer."""

    name = STAGE
    needs = ("variant", "base_prompt")
    makes = ("score", "decision")

    def pending(self, ws: Workspace) -> int:
        return pending_text_checks(ws)

    def plan(self, ws: Workspace, options: None = None) -> Work | None:
        store, section = ws.store, ws.settings.scorer
        source = scorer_source(ws)
        scorer = source.scorer_id
        families = variant_units(store, scorer)
        pending = {u.variant_id for u in families if u.pending}
        ok = store.ids("variant", status="ok")
        stored = text_scores(store, scorer)
        checked = [
            CheckedVariant(vid, values["text_distance"], values.get("text_sibling_cosine"))
            for vid, values in sorted(stored.items())
            if vid in ok and vid not in pending and "text_distance" in values
        ]
        if not families and not checked:
            return None
        encode = None
        if families:
            encode = Encode(
                source,
                section.device,
                section.autocast,
                embeddings_folder(ws, scorer),
                {},
                section.batch_size,
                section.num_workers,
            )
        compute = CheckTexts(encode, Thresholds.from_config(ws.settings.filter))
        before = None
        if configured_scorer(store, section) != scorer:
            before = Output(state=scorer_state(section, scorer))  # the resolved scorer id is durable state
        return Work(
            [*families, *checked],
            compute.opened,
            before=before,
            label=f"text checks ({scorer})",
            unit="variants",
            details={"scorer": scorer},
        )

    def summary(self, result: StageResult) -> str:
        c = result.counts
        if result.nothing_to_do:
            return "no variants to check yet (run `widespec rewrite`)"
        return f"{c['variants_scored']} variants scored; text decisions: accept {c['text:accept']}, reject {c['text:reject']}"


TEXT_CHECKS = TextChecksStage()
