"""The rewrite stage: screen base prompts, plan the pass, rewrite what is pending, commit batch by batch.

Variant ids come from the base prompt, the variant's index and the pass fingerprint, so a rerun (after a
crash, a kill or a finished pass) only works on ids that are not stored yet and never duplicates a row.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from curation.core.config import config_hash
from curation.core.console import progress_bar
from curation.core.store import utc_now
from curation.core.taxonomy import Taxonomy, load_taxonomy
from curation.core.workspace import Workspace
from curation.rewrite import RewriteOutcome, Rewriter, RewriteRequest
from curation.rewrite.lexicon import LexiconRewriter
from curation.rewrite.plan import PassSettings, PlannedVariant, plan_pass, planned_ids
from curation.rewrite.screening import Screen, make_screen, screen_base_prompts

STAGE = "rewrite"
FLUSH_EVERY_S = 1.0


def workspace_taxonomy(ws: Workspace) -> Taxonomy:
    return load_taxonomy(ws.config["taxonomy"]["path"], ws.root)


def pass_settings(ws: Workspace) -> PassSettings:
    section = ws.config["rewriter"]
    low, high = section["dimensions_per_variant"]
    return PassSettings(
        seed=ws.config["project"]["seed"],
        variants_per_prompt=section["variants_per_prompt"],
        dimensions_per_variant=(low, high),
        intensities=tuple(section["intensities"]),
        rewriter=section["kind"],
        model=section["model"] if section["kind"] == "llm" else None,
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


def view_pass(ws: Workspace, *, retry_failed: bool = False, limit: int | None = None) -> PassView:
    taxonomy = workspace_taxonomy(ws)
    settings = pass_settings(ws)
    bases = arrival_order(ws)
    base_ids = [b["id"] for b in bases]
    slots = set(planned_ids(base_ids, settings.variants_per_prompt, settings.fingerprint(taxonomy)))
    made = {
        v["id"]: (v["dimensions"], v["intensity"], v["status"]) for v in ws.store.iter("variant") if v["id"] in slots
    }
    plan = plan_pass(base_ids, settings, taxonomy, {i: (d, n) for i, (d, n, _) in made.items()})
    redo = {i for i, (_, _, status) in made.items() if status == "failed"} if retry_failed else set()
    pending = [v for v in plan if v.id not in made or v.id in redo]
    return PassView(
        taxonomy,
        settings,
        plan,
        set(made),
        pending[:limit] if limit is not None else pending,
        {b["id"]: b["text"] for b in bases},
    )


def pending_rewrite(ws: Workspace) -> int:
    """Planned variants of the configured pass that are not stored yet (status's estimator)."""
    settings = pass_settings(ws)
    ids = planned_ids(
        ws.store.ids("base_prompt", status="ok"),
        settings.variants_per_prompt,
        settings.fingerprint(workspace_taxonomy(ws)),
    )
    return len(set(ids) - ws.store.ids("variant"))


def requests_for(ws: Workspace, view: PassView) -> list[tuple[PlannedVariant, RewriteRequest]]:
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
    status: str = outcome.status
    text, error = outcome.text, outcome.error
    if status == "ok" and block_rule is not None:
        status, text, error = "blocked", None, f"the rewrite broke safety rule {block_rule}"
    return {
        "id": slot.id,
        "base_id": slot.base_id,
        "index": slot.index,
        "dimensions": list(slot.dimensions),
        "intensity": slot.intensity,
        "text": text if status == "ok" else None,
        "status": status,
        "error": error,
        "block_rule": block_rule if status == "blocked" else None,
        "rewriter": {
            "kind": rewriter.kind,
            "model": rewriter.model,
            "template_hash": rewriter.template_hash,
            "params": rewriter.params,
        },
        "taxonomy": taxonomy.provenance(),
        "usage": outcome.usage.as_dict() if outcome.usage is not None else None,
        "created_at": utc_now(),
    }


@dataclass
class RewriteSummary:
    planned: int
    stored_before: int
    blocked_prompts: int
    run_id: int
    counts: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "planned": self.planned,
            "stored_before": self.stored_before,
            "blocked_prompts": self.blocked_prompts,
            **{k: self.counts.get(k, 0) for k in ("ok", "failed", "refused", "blocked", "cached", "calls")},
        }


def make_rewriter(ws: Workspace, *, refresh: bool, run_id: int | None) -> Rewriter:
    section = ws.config["rewriter"]
    if section["kind"] == "llm":
        from curation.rewrite.llm import make_llm_rewriter

        return make_llm_rewriter(section, ws.store, refresh=refresh, run_id=run_id)
    return LexiconRewriter()


async def _execute(
    ws: Workspace,
    requests: list[tuple[PlannedVariant, RewriteRequest]],
    rewriter: Rewriter,
    screen: Screen,
    taxonomy: Taxonomy,
    counts: Counter[str],
    advance: Callable[[int], None],
) -> None:
    """Run `requests` through workers; completed records are committed in batches, one transaction each."""
    section = ws.config["rewriter"]
    workers = section["max_concurrency"] if rewriter.kind == "llm" else 1
    work: Iterator[tuple[PlannedVariant, RewriteRequest]] = iter(requests)
    buffer: list[dict[str, Any]] = []
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal last_flush
        if buffer:
            ws.store.put("variant", buffer, on_conflict="replace")
            buffer.clear()
        last_flush = time.monotonic()

    async def worker() -> None:
        for slot, request in work:
            outcome = await rewriter.rewrite(request)
            rule = await screen.check(outcome.text) if outcome.status == "ok" and outcome.text else None
            record = variant_record(slot, outcome, rewriter, taxonomy, rule)
            counts[record["status"]] += 1
            counts["cached"] += outcome.cached
            counts["calls"] += outcome.usage.calls if outcome.usage else 0
            buffer.append(record)
            advance(1)
            if len(buffer) >= section["batch_size"] or time.monotonic() - last_flush >= FLUSH_EVERY_S:
                flush()

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(workers, max(1, len(requests)))):
                group.create_task(worker())
    except BaseExceptionGroup as failures:
        raise failures.exceptions[0] from None  # the first failure stopped the pass; report it alone
    finally:
        flush()


async def _run(ws: Workspace, refresh: bool, limit: int | None, retry_failed: bool) -> RewriteSummary:
    screen = make_screen(ws)
    try:
        blocked_prompts = await screen_base_prompts(ws, screen)
        view = view_pass(ws, retry_failed=retry_failed, limit=limit)
        run_id = ws.store.start_run(STAGE, config_hash(ws.config))
        summary = RewriteSummary(len(view.plan), len(view.stored), blocked_prompts, run_id)
        requests = requests_for(ws, view)
        try:
            rewriter = make_rewriter(ws, refresh=refresh, run_id=run_id)
            try:
                with progress_bar("rewrite", len(requests), "variants") as bar:
                    await _execute(ws, requests, rewriter, screen, view.taxonomy, summary.counts, bar.advance)
            finally:
                await rewriter.aclose()
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError) else "failed"
            ws.store.finish_run(run_id, status, dict(summary.counts), str(exc) or type(exc).__name__)
            raise
        ws.store.finish_run(run_id, "ok", dict(summary.counts))
        return summary
    finally:
        await screen.aclose()


def run_rewrite(
    ws: Workspace,
    *,
    refresh: bool = False,
    limit: int | None = None,
    retry_failed: bool = False,
) -> RewriteSummary:
    """Screen base prompts, then rewrite every pending planned variant of the configured pass."""
    return asyncio.run(_run(ws, refresh, limit, retry_failed))


def estimate_pass(ws: Workspace, *, refresh: bool = False, limit: int | None = None) -> dict[str, Any]:
    """Calls, tokens and cost the pending work would need, before spending anything."""
    view = view_pass(ws, limit=limit)
    section = ws.config["rewriter"]
    result: dict[str, Any] = {"kind": section["kind"], "variants": len(view.pending), "cached": 0, "calls": 0}
    if section["kind"] != "llm":
        return {**result, "prompt_tokens": 0, "completion_tokens": 0, "cost": 0.0}
    from curation.rewrite.llm import LLMSettings, cache_key, estimate_tokens
    from curation.rewrite.prompting import build_messages, load_template

    settings = LLMSettings.from_config(section)
    template = load_template()
    prompt_tokens = completion_tokens = 0
    for _, request in requests_for(ws, view):
        messages = build_messages(template, request, settings.max_words)
        if not refresh and ws.store.cache_get(cache_key(settings, template.hash, messages)) is not None:
            result["cached"] += 1
            continue
        result["calls"] += 1
        prompt_tokens += estimate_tokens(messages)
        completion_tokens += settings.expected_completion_tokens()
    cost = settings.cost(prompt_tokens, completion_tokens)
    return {**result, "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "cost": cost}
