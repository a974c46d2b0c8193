"""The rewrite stage: screen base prompts, plan the pass, rewrite what is pending, commit batch by batch.

Variant ids come from the base prompt, the variant's index and the pass fingerprint, so a rerun (after a
crash, a kill or a finished pass) only works on ids that are not stored yet and never duplicates a row.

The stage runs on the executor (curation.core.executor): `RewriteStage.plan` screens the base prompts and
returns the blocked ones as the work's `before` (stored before any variant), and the pending planned
variants as units; the compute (`Rewrite`) drives a pool of asyncio workers and hands the executor a batch
of variant records every `rewriter.batch_size` records or second (`curation.core.pool`). Only answers of paid calls
and their usage are written by the compute itself, to the response cache (curation.core.cache).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from curation.core import records
from curation.core.cache import ResponseCache
from curation.core.executor import execute
from curation.core.ids import content_hash
from curation.core.pairs import restatus
from curation.core.pool import AsyncPool, Done
from curation.core.settings import RewriterSettings
from curation.core.stage import Output, Stage, StageResult, Work
from curation.core.store import Record, Store
from curation.core.taxonomy import Taxonomy, load_taxonomy
from curation.core.workspace import Workspace
from curation.rewrite import RewriteOutcome, Rewriter, RewriteRequest, safety
from curation.rewrite.lexicon import LexiconRewriter
from curation.rewrite.plan import PassSettings, PlannedVariant, plan_pass, planned_ids
from curation.rewrite.screening import Screen, ScreenSettings, blocked_base_prompts, make_screen

STAGE = "rewrite"

Unit = tuple[PlannedVariant, RewriteRequest]


SCREEN_STATE = "safety:screen"  # the safety settings every stored variant was last screened with


@cache
def _built_in_rules_hash() -> str:
    return hashlib.sha256(Path(safety.__file__).read_bytes()).hexdigest()


def screen_fingerprint(screen: ScreenSettings) -> str:
    """The safety settings and built-in rules, hashed: a change re-screens every stored variant."""
    return content_hash([asdict(screen), _built_in_rules_hash()])


def workspace_taxonomy(ws: Workspace) -> Taxonomy:
    return load_taxonomy(ws.settings.taxonomy.path, ws.root)


def pass_settings(ws: Workspace) -> PassSettings:
    settings = ws.settings
    section = settings.rewriter
    low, high = section.dimensions_per_variant
    return PassSettings(
        seed=settings.project.seed,
        variants_per_prompt=section.variants_per_prompt,
        dimensions_per_variant=(low, high),
        intensities=section.intensities,
        rewriter=section.kind,
        model=section.model if section.kind == "llm" else None,
    )


@dataclass
class PassView:
    """A pass as the workspace sees it: the plan, what is stored already, and what is pending."""

    taxonomy: Taxonomy
    settings: PassSettings
    plan: list[PlannedVariant]
    stored: set[str]  # planned variant ids already in the store
    pending: list[PlannedVariant]
    texts: dict[str, str]  # base prompt id -> text


def arrival_order(ws: Workspace) -> list[dict[str, Any]]:
    """Base prompts that may be rewritten, oldest first (ties by id): the order the plan walks."""
    return sorted(ws.store.iter("base_prompt", status="ok"), key=lambda r: (r["created_at"], r["id"]))


def view_pass(
    ws: Workspace,
    *,
    retry_failed: bool = False,
    limit: int | None = None,
    bases: Sequence[Record] | None = None,
    redo_blocked: bool = False,
) -> PassView:
    """The configured pass over `bases` (default: every base prompt that may be rewritten, in arrival order);
    `redo_blocked` makes the variants the safety screen blocked pending again (after the settings changed)."""
    taxonomy = workspace_taxonomy(ws)
    settings = pass_settings(ws)
    bases = arrival_order(ws) if bases is None else bases
    base_ids = [b["id"] for b in bases]
    ids = planned_ids(base_ids, settings.variants_per_prompt, settings.fingerprint(taxonomy))
    slots = set(ids)
    made = {
        v["id"]: (v["dimensions"], v["intensity"], v["status"]) for v in ws.store.iter("variant") if v["id"] in slots
    }
    plan = plan_pass(base_ids, settings, taxonomy, {i: (d, n) for i, (d, n, _) in made.items()}, ids=ids)
    redo_status = {"failed"} if retry_failed else set()
    redo_status |= {"blocked"} if redo_blocked else set()
    redo = {i for i, (_, _, status) in made.items() if status in redo_status}
    pending = [v for v in plan if v.id not in made or v.id in redo]
    return PassView(
        taxonomy,
        settings,
        plan,
        set(made),
        pending[:limit] if limit is not None else pending,
        {b["id"]: b["text"] for b in bases},
    )


def requests_for(ws: Workspace, view: PassView) -> list[Unit]:
    texts = view.texts
    return [
        (
            slot,
            RewriteRequest(
                slot.id,
                texts[slot.base_id],
                tuple(view.taxonomy.dimensions[d] for d in slot.dimensions),
                slot.intensity,
            ),
        )
        for slot in view.pending
    ]


def variant_record(
    slot: PlannedVariant, outcome: RewriteOutcome, rewriter: Rewriter, taxonomy: Taxonomy, block_rule: str | None
) -> dict[str, Any]:
    """The stored record for one planned variant; an ok rewrite that broke a safety rule is stored as blocked."""
    provenance = {
        "kind": rewriter.kind,
        "model": rewriter.model,
        "template_hash": rewriter.template_hash,
        "params": rewriter.params,
    }
    record = records.variant_record(
        slot.id,
        slot.base_id,
        slot.index,
        slot.dimensions,
        slot.intensity,
        outcome.text,
        rewriter=provenance,
        taxonomy=taxonomy.provenance(),
        status=outcome.status,
        error=outcome.error,
        block_rule=block_rule,
        usage=outcome.usage.as_dict() if outcome.usage is not None else None,
    )
    if outcome.status == "ok" and block_rule is not None:
        return records.blocked_variant(record, block_rule)  # the same as a stored variant the screen blocks later
    return record


@dataclass
class RewriteSummary:
    planned: int
    stored_before: int
    blocked_prompts: int
    run_id: int | None  # None: nothing to do, so no ledger run
    counts: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "planned": self.planned,
            "stored_before": self.stored_before,
            "blocked_prompts": self.blocked_prompts,
            **{k: self.counts.get(k, 0) for k in ("ok", "failed", "refused", "blocked", "cached", "calls")},
        }


def make_rewriter(section: RewriterSettings, cache: ResponseCache, *, refresh: bool) -> Rewriter:
    if section.kind == "llm":
        from curation.rewrite.llm import make_llm_rewriter

        return make_llm_rewriter(section, cache, refresh=refresh)
    return LexiconRewriter()


@dataclass(frozen=True)
class RewriteOptions:
    refresh: bool = False
    limit: int | None = None
    retry_failed: bool = False


@dataclass(frozen=True)
class Rewrite:
    """Rewrite's compute: workers rewriting planned variants, streaming batches of variant records.

    A plain value (settings and the database path): `opened` builds the rewriter, the screen and their
    response cache; the records go back to the executor.
    """

    section: RewriterSettings
    taxonomy: Taxonomy
    screen: ScreenSettings
    batch_size: int
    concurrency: int
    db_path: Path
    refresh: bool = False

    @contextmanager
    def opened(self) -> Iterator[Rewriting]:
        cache = ResponseCache(self.db_path)
        runner = asyncio.Runner()
        try:
            # built on the loop that will use and close them (their HTTP clients belong to it)
            rewriter = runner.run(self._rewriter(cache))
            try:
                screen = runner.run(self._screen(cache))
                rewriting = Rewriting(self, runner, rewriter, screen)
                try:
                    yield rewriting
                finally:
                    rewriting.stop()
                    runner.run(screen.aclose())
            finally:
                runner.run(rewriter.aclose())
        finally:
            runner.close()
            cache.close()

    async def _rewriter(self, cache: ResponseCache) -> Rewriter:
        return make_rewriter(self.section, cache, refresh=self.refresh)

    async def _screen(self, cache: ResponseCache) -> Screen:
        return make_screen(self.screen, cache)


@dataclass
class Rewriting:
    """An opened `Rewrite`: its event loop, rewriter, screen and the worker pool that drives them."""

    spec: Rewrite
    runner: asyncio.Runner
    rewriter: Rewriter
    screen: Screen
    pool: AsyncPool[Unit] = field(init=False)

    def __post_init__(self) -> None:
        self.pool = AsyncPool(
            self.runner,
            self.spec.concurrency,
            self.spec.batch_size,
            prepare=lambda chunk: self.rewriter.prepare([request for _, request in chunk]),
        )

    def run(self, units: Sequence[Unit]) -> Iterator[Output]:
        """Variant records of `units`, a batch at a time (`curation.core.pool`)."""
        return self.pool.run(units, self._rewrite)

    def stop(self) -> None:
        self.pool.stop()

    async def _rewrite(self, unit: Unit) -> Done:
        slot, request = unit
        outcome = await self.rewriter.rewrite(request)
        text = outcome.text
        rule = await self.screen.check(text) if outcome.status == "ok" and text else None
        record = variant_record(slot, outcome, self.rewriter, self.spec.taxonomy, rule)
        calls = outcome.usage.calls if outcome.usage else 0
        return Done("variant", record, {record["status"]: 1, "cached": int(outcome.cached), "calls": calls})


def pending_rewrite(ws: Workspace) -> int:
    """Planned variants of the configured pass that are not stored yet (no screen, no call)."""
    settings = pass_settings(ws)
    ids = planned_ids(
        ws.store.ids("base_prompt", status="ok"),
        settings.variants_per_prompt,
        settings.fingerprint(workspace_taxonomy(ws)),
    )
    return len(set(ids) - ws.store.ids("variant"))


class RewriteStage(Stage):
    """Anti-aesthetic variants of every base prompt the safety screen passes, by the configured rewriter."""

    name = "rewrite"
    needs = ("base_prompt",)
    makes = ("variant", "base_prompt", "pair")

    def derive(self, store: Store, output: Output) -> dict[str, list[Record]]:
        """The pairs whose prompt the output blocks (or unblocks), re-statused in the same transaction."""
        base_ids = sorted({b["id"] for b in output.records.get("base_prompt", [])})
        variant_ids = {v["id"] for v in output.records.get("variant", []) if v["status"] != "ok"}
        variant_ids |= store.ids("variant", base_id=base_ids) if base_ids else set()
        return {"pair": restatus(store, variant_ids)} if variant_ids else {}

    def pending(self, ws: Workspace) -> int:
        return pending_rewrite(ws)

    def plan(self, ws: Workspace, options: RewriteOptions | None = None) -> Work:
        """Screen the base prompts (blocked ones are stored first, as `before`), then the pending variants."""
        options = options or RewriteOptions()
        section = ws.settings.rewriter
        screen = ScreenSettings.from_config(section)
        bases = arrival_order(ws)
        fingerprint = screen_fingerprint(screen)
        rescreen = ws.store.state_get(SCREEN_STATE) != {"fingerprint": fingerprint}
        stored = list(ws.store.iter("variant", status="ok")) if rescreen else []
        were_blocked = list(ws.store.iter("base_prompt", status="blocked")) if rescreen else []
        with ResponseCache(ws.store.path) as cache:
            blocked = blocked_base_prompts(bases, screen, cache, section.max_concurrency)
            # Changed safety settings screen every stored variant again (the built-in rules and terms are cheap;
            # the moderation endpoint's answers are cached), and base prompts they blocked before: those the
            # screen passes now are restored, and variants it blocked are rewritten (and screened) again.
            newly = blocked_base_prompts(stored, screen, cache, section.max_concurrency) if stored else []
            still = {b["id"] for b in blocked_base_prompts(were_blocked, screen, cache, section.max_concurrency)}
        blocked_variants = [records.blocked_variant(v, v["block_rule"]) for v in newly]
        restored = [records.unblocked_base_prompt(b) for b in were_blocked if b["id"] not in still]
        if blocked:
            blocked_ids = {b["id"] for b in blocked}
            bases = [b for b in bases if b["id"] not in blocked_ids]
        if restored:
            bases = sorted([*bases, *restored], key=lambda r: (r["created_at"], r["id"]))
        view = view_pass(ws, retry_failed=options.retry_failed, limit=options.limit, bases=bases, redo_blocked=rescreen)
        compute = Rewrite(
            section,
            view.taxonomy,
            screen,
            batch_size=section.batch_size,
            concurrency=section.max_concurrency if section.kind == "llm" else 1,
            db_path=ws.store.path,
            refresh=options.refresh,
        )
        requests = requests_for(ws, view)
        remember = rescreen and bool(stored or requests)  # nothing stored or to make: nothing was screened
        before = Output(
            records={"base_prompt": [*blocked, *restored], "variant": blocked_variants},
            counts=Counter(
                blocked_prompts=len(blocked), blocked_variants=len(blocked_variants), unblocked_prompts=len(restored)
            ),
            state={SCREEN_STATE: {"fingerprint": fingerprint}} if remember or restored else {},
        )
        return Work(
            requests,
            compute.opened,
            before=before if blocked or remember or restored else None,
            label="rewrite",
            unit="variants",
            details={"planned": len(view.plan), "stored_before": len(view.stored), "blocked_prompts": len(blocked)},
        )

    def summary(self, result: StageResult) -> str:
        counts = result.counts
        made = ", ".join(f"{k} {counts[k]}" for k in ("ok", "failed", "refused", "blocked") if counts[k])
        shown = f"{made} ({counts['calls']} calls, {counts['cached']} from cache)" if made else "nothing new"
        if blocked := result.details.get("blocked_prompts"):
            shown += f"; {blocked} base prompts blocked by the safety screen"
        return shown


REWRITE = RewriteStage()


def run_rewrite(
    ws: Workspace,
    *,
    refresh: bool = False,
    limit: int | None = None,
    retry_failed: bool = False,
) -> RewriteSummary:
    """Screen base prompts, then rewrite every pending planned variant of the configured pass."""
    result = execute(ws, REWRITE, RewriteOptions(refresh, limit, retry_failed))
    details = result.details
    counts = Counter({k: v for k, v in result.counts.items() if k not in {"written", "blocked_prompts"}})
    return RewriteSummary(
        details.get("planned", 0),
        details.get("stored_before", 0),
        details.get("blocked_prompts", 0),
        result.run_id,
        counts,
    )


def estimate_pass(ws: Workspace, *, refresh: bool = False, limit: int | None = None) -> dict[str, Any]:
    """Calls, tokens and cost the pending work would need, before spending anything."""
    view = view_pass(ws, limit=limit)
    section = ws.settings.rewriter
    result: dict[str, Any] = {"kind": section.kind, "variants": len(view.pending), "cached": 0, "calls": 0}
    if section.kind != "llm":
        return {**result, "prompt_tokens": 0, "completion_tokens": 0, "cost": 0.0}
    from curation.core.llm import estimate_tokens
    from curation.rewrite.llm import LLMSettings, cache_key
    from curation.rewrite.prompting import build_messages, load_template

    settings = LLMSettings.from_config(section)
    template = load_template()
    calls = []
    for _, request in requests_for(ws, view):
        messages = build_messages(template, request, settings.max_words)
        calls.append((cache_key(settings, template.hash, messages), messages))
    with ResponseCache(ws.store.path) as cache:
        cached = set() if refresh else set(cache.get_many(key for key, _ in calls))
    prompt_tokens = completion_tokens = 0
    for key, messages in calls:
        if key in cached:
            result["cached"] += 1
            continue
        result["calls"] += 1
        prompt_tokens += estimate_tokens(messages)
        completion_tokens += settings.expected_completion_tokens()
    cost = settings.cost(prompt_tokens, completion_tokens)
    return {**result, "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "cost": cost}
