"""`widespec judge`: a vision-language model is shown each pair's anti-aesthetic prompt and both images and says
which image follows the prompt better — in A/B order, then B/A (`judge.orders = "both"`), so position bias is
measured: a choice that flips with the order is `inconsistent`.

Judgments are their own records (source `judge:<model>@<revision>`), beside human verdicts and never overwriting
them. Their id covers the judge's configuration (model, revision, instructions, temperature, image size and
format, orders, taxonomy) and the pair: changing any of it judges again, while answers already paid for come from the
response cache (a rerun makes no call). Calls go through the kernel's chat transport, the rewriter's own.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.core.cache import ResponseCache
from curation.core.errors import ImageDamaged, InputError
from curation.core.executor import execute
from curation.core.ids import content_hash
from curation.core.images import ImageStore
from curation.core.judges import JudgeIdentity, load_template
from curation.core.llm import ChatSettings, ChatTransport, api_key_from_env, estimate_tokens
from curation.core.pairs import Pair, iter_pairs
from curation.core.pool import AsyncPool, Done
from curation.core.records import judgment_record
from curation.core.settings import JudgeSettings
from curation.core.stage import Output, Stage, StageResult, Work
from curation.core.taxonomy import Taxonomy, load_taxonomy
from curation.core.workspace import Workspace
from curation.judge.images import PreparedImages
from curation.judge.pending import judged, pending_judge
from curation.judge.prompting import Order, Quality, build_messages, interpret, label_of, response_format

STAGE = "judge"
EXPECTED_COMPLETION_TOKENS = 120
NOT_CONFIGURED = "judge.model is empty: set [judge] model and base_url in widespec.toml to judge pairs"


@dataclass(frozen=True)
class JudgeUnit:
    """One pair to judge: its anti-aesthetic prompt, the requested qualities, both images and the orders."""

    pair_id: str
    prompt: str
    qualities: tuple[Quality, ...]
    anti_sha: str
    base_sha: str
    orders: tuple[Order, ...]


def orders_for(pair_id: str, how: str, seed: int) -> tuple[Order, ...]:
    """Both orders, or one chosen by a random draw seeded by the project seed and the pair."""
    if how == "both":
        return ("anti_first", "base_first")
    first: Order = random.Random(f"{seed}:{pair_id}").choice(("anti_first", "base_first"))
    return (first,)


def unit_for(pair: Pair, taxonomy: Taxonomy, section: JudgeSettings, seed: int) -> JudgeUnit:
    dimensions = taxonomy.dimensions
    qualities = tuple(
        Quality(d, dimensions[d].name if d in dimensions else d.replace("_", " ")) for d in pair.variant["dimensions"]
    )
    return JudgeUnit(
        pair.id,
        pair.variant["text"],
        qualities,
        pair.anti_render["image_sha256"],
        pair.base_render["image_sha256"],
        orders_for(pair.id, section.orders, seed),
    )


def cache_key(identity: JudgeIdentity, unit: JudgeUnit, order: Order) -> str:
    """The response cache key of one order of one pair: the judge, the prompt, the qualities and which image
    (by its sha256) is A and which B — not the images' encoded bytes, which follow from these."""
    first, second = (unit.anti_sha, unit.base_sha) if order == "anti_first" else (unit.base_sha, unit.anti_sha)
    return content_hash(
        {
            "stage": STAGE,
            "model": identity.model,
            "revision": identity.revision,
            "template_hash": identity.template_hash,
            "params": identity.params(),
            "prompt": unit.prompt,
            "qualities": [[q.id, q.name] for q in unit.qualities],
            "a": first,
            "b": second,
        }
    )


NO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0}


def unanswered(order: Order, error: str) -> dict[str, Any]:
    """One order of a pair that got no answer, and why."""
    return {
        "order": order,
        "status": "failed",
        "choice": None,
        "label": None,
        "qualities": [],
        "subject_recognisable": None,
        "reason": None,
        "error": error,
    }


@dataclass(frozen=True)
class Judge:
    """The judge's compute: a plain value (settings and paths); `opened` builds the transport on its own loop."""

    section: JudgeSettings
    identity: JudgeIdentity
    images_root: Path
    db_path: Path
    refresh: bool = False

    @contextmanager
    def opened(self) -> Iterator[Judging]:
        key = api_key_from_env(self.section.api_key_env, "judge.api_key_env")
        cache = ResponseCache(self.db_path)
        runner = asyncio.Runner()
        try:
            transport = runner.run(self._transport(cache, key))
            images = PreparedImages(ImageStore(self.images_root).read, self.section.max_side, self.section.image_format)
            judging = Judging(self, runner, transport, images)
            try:
                yield judging
            finally:
                judging.pool.stop()
                runner.run(transport.aclose())
        finally:
            runner.close()
            cache.close()

    async def _transport(self, cache: ResponseCache, api_key: str) -> ChatTransport:
        # built on the loop that will use and close it (its HTTP client belongs to it)
        return ChatTransport(
            ChatSettings.from_section("judge", self.section),
            cache,
            stage=STAGE,
            response_format=response_format,
            api_key=api_key,
            refresh=self.refresh,
        )


@dataclass
class Judging:
    """An opened `Judge`: its event loop, transport, prepared images and worker pool."""

    spec: Judge
    runner: asyncio.Runner
    transport: ChatTransport
    images: PreparedImages
    pool: AsyncPool[JudgeUnit] = field(init=False)
    slots: asyncio.Semaphore = field(init=False)
    found: dict[str, Any] = field(init=False, default_factory=dict)  # cached answers looked up ahead, by key

    def __post_init__(self) -> None:
        section = self.spec.section
        # `max_concurrency` counts requests in flight, an order of a pair taking one; the workers beyond them
        # prepare the images of the pairs next in line meanwhile.
        self.slots = asyncio.Semaphore(section.max_concurrency)
        self.pool = AsyncPool(self.runner, section.max_concurrency, section.batch_size, prepare=self._look_up)

    def _look_up(self, units: Sequence[JudgeUnit]) -> None:
        """The cached answers of these pairs' orders in one query: a pair whose answers are all cached needs no
        image prepared."""
        identity = self.spec.identity
        self.found.update(self.transport.cached_many(cache_key(identity, u, o) for u in units for o in u.orders))

    def run(self, units: Sequence[JudgeUnit]) -> Iterator[Output]:
        return self.pool.run(units, self._judge)

    async def _judge(self, unit: JudgeUnit) -> Done:
        identity = self.spec.identity
        keys = {order: cache_key(identity, unit, order) for order in unit.orders}
        cached = {order: self.found.pop(key, None) for order, key in keys.items()}
        anti = base = ""  # the images, needed only when an answer is not cached
        try:
            if any(answer is None for answer in cached.values()):
                anti, base = await asyncio.gather(self.images.url(unit.anti_sha), self.images.url(unit.base_sha))
        except (OSError, ImageDamaged) as exc:  # a missing, unreadable or damaged image: only this pair fails
            why = f"an image of the pair could not be read: {type(exc).__name__}: {exc}"
            unread = [unanswered(order, why) for order in unit.orders]
            record = judgment_record(unit.pair_id, identity.source, identity.config, unread, NO_USAGE)
            return Done("judgment", record, {"failed": 1})
        answers = await asyncio.gather(
            *(self._order(unit, order, keys[order], cached[order], anti, base) for order in unit.orders)
        )
        orders = [order for order, _, _ in answers]
        usage = {
            "prompt_tokens": sum(u.prompt_tokens for _, u, _ in answers),
            "completion_tokens": sum(u.completion_tokens for _, u, _ in answers),
        }
        record = judgment_record(unit.pair_id, identity.source, identity.config, orders, usage)
        counts = {
            record["status"]: 1,
            "calls": sum(u.calls for _, u, _ in answers),
            "cached": sum(from_cache for _, _, from_cache in answers),
        }
        if record["label"] is not None:
            counts[f"label:{record['label']}"] = 1
        return Done("judgment", record, counts)

    async def _order(
        self, unit: JudgeUnit, order: Order, key: str, cached: Any, anti: str, base: str
    ) -> tuple[dict[str, Any], Any, bool]:
        first, second = (anti, base) if order == "anti_first" else (base, anti)
        messages = build_messages(load_template(), unit.prompt, unit.qualities, first, second)
        async with self.slots if cached is None else nullcontext():  # a slot per request that may be made
            outcome = await self.transport.call(
                messages,
                key,
                lambda answer: interpret(answer, unit.qualities),
                expected_completion_tokens=EXPECTED_COMPLETION_TOKENS,
                cached=cached,
            )
        value = outcome.value or {}
        choice = value.get("choice")
        answer = {
            "order": order,
            "status": outcome.status,
            "choice": choice,
            "label": label_of(choice, order) if choice else None,
            "qualities": value.get("qualities", []),
            "subject_recognisable": value.get("subject_recognisable"),
            "reason": value.get("reason"),
            "error": outcome.reason if outcome.status != "ok" else None,
        }
        return answer, outcome.usage, outcome.cached


@dataclass(frozen=True)
class JudgeOptions:
    refresh: bool = False
    retry_failed: bool = False
    limit: int | None = None


def pending_units(ws: Workspace, options: JudgeOptions) -> tuple[JudgeIdentity, list[JudgeUnit]]:
    """The configured judge, and the pairs it has yet to judge."""
    taxonomy = load_taxonomy(ws.settings.taxonomy.path, ws.root)
    identity = JudgeIdentity.of(ws, taxonomy)
    done = judged(ws, identity, retry_failed=options.retry_failed)
    section, seed = ws.settings.judge, ws.settings.project.seed
    units = [unit_for(p, taxonomy, section, seed) for p in iter_pairs(ws.store) if p.id not in done]
    return identity, units[: options.limit] if options.limit is not None else units


class JudgeStage(Stage):
    """A judgment of every complete pair by the configured vision model (nothing while `judge.model` is empty)."""

    name = STAGE
    needs = ("pair",)
    makes = ("judgment",)

    def pending(self, ws: Workspace) -> int:
        return pending_judge(ws)

    def plan(self, ws: Workspace, options: JudgeOptions | None = None) -> Work | None:
        options = options or JudgeOptions()
        section = ws.settings.judge
        if not section.configured:
            raise InputError(NOT_CONFIGURED)
        identity, units = pending_units(ws, options)
        if not units:
            return None
        judge = Judge(section, identity, ws.images.root, ws.store.path, options.refresh)
        return Work(units, judge.opened, label="judge", unit="pairs", details={"source": judge.identity.source})

    def summary(self, result: StageResult) -> str:
        counts = result.counts
        labels = ", ".join(
            f"{k.split(':', 1)[1]} {v}" for k, v in sorted(counts.items()) if k.startswith("label:") and v
        )
        return (
            f"{counts.get('ok', 0)} judged ({labels or 'none'}), {counts.get('failed', 0)} failed, "
            f"{counts.get('refused', 0)} refused; {counts.get('calls', 0)} calls, {counts.get('cached', 0)} cached"
        )


JUDGE = JudgeStage()


def run_judge(
    ws: Workspace, *, refresh: bool = False, retry_failed: bool = False, limit: int | None = None
) -> StageResult:
    """Judge every pending pair with the configured vision model."""
    return execute(ws, JUDGE, JudgeOptions(refresh, retry_failed, limit))


def estimate_judge(ws: Workspace, *, refresh: bool = False, limit: int | None = None) -> dict[str, Any]:
    """Calls, tokens and cost the pending pairs would need, before spending anything (images count
    `IMAGE_TOKENS` each)."""
    section = ws.settings.judge
    if not section.configured:
        raise InputError(NOT_CONFIGURED)
    identity, units = pending_units(ws, JudgeOptions(limit=limit))
    keys = [cache_key(identity, unit, order) for unit in units for order in unit.orders]
    with ResponseCache(ws.store.path) as cache:
        cached = set() if refresh else set(cache.get_many(keys))
    calls = sum(1 for key in keys if key not in cached)
    blank = "data:image/png;base64,"
    per_call = estimate_tokens(build_messages(load_template(), "", (), blank, blank))
    mean_prompt_tokens = sum(len(unit.prompt) // 4 for unit in units) // max(1, len(units))
    prompt_tokens = calls * (per_call + mean_prompt_tokens)
    completion_tokens = calls * EXPECTED_COMPLETION_TOKENS
    chat = ChatSettings.from_section("judge", section)
    return {
        "pairs": len(units),
        "calls": calls,
        "cached": len(keys) - calls,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "cost": chat.cost(prompt_tokens, completion_tokens),
    }
