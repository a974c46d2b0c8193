"""The rewrite stage on the stage contract: plan, compute, response cache, and the fast paths of a cached rebuild."""

from __future__ import annotations

import asyncio
import pickle
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import pytest

from curation.core.cache import ResponseCache
from curation.core.ids import normalise_text
from curation.core.llm import ChatSettings
from curation.core.taxonomy import load_taxonomy
from curation.core.workspace import Workspace
from curation.rewrite import RewriteOutcome, RewriteRequest, safety
from curation.rewrite import plan as planning
from curation.rewrite.lexicon import LexiconRewriter
from curation.rewrite.llm import CacheKeys, LLMSettings, cache_key
from curation.rewrite.prompting import _normalised, build_messages, load_template
from curation.rewrite.safety import SafetyScreen
from curation.rewrite.screening import Screen
from curation.rewrite.stage import REWRITE, RewriteOptions, Rewriting
from tests.rewrite_fixtures import PROMPTS, add_prompts, configure

TAXONOMY = load_taxonomy("builtin:widespec-core")
SETTINGS = LLMSettings(
    ChatSettings(
        section="rewriter",
        base_url="http://127.0.0.1:9/v1",
        model="standin",
        api_key_env="KEY",
        temperature=0.1,
        timeout_s=5.0,
        max_attempts=3,
        backoff_s=0.1,
        max_backoff_s=1.0,
        requests_per_minute=60,
        tokens_per_minute=100_000,
        prices=None,
    ),
    max_words=90,
)


def requests(texts: Sequence[str]) -> list[RewriteRequest]:
    rng = random.Random(4)
    names = list(TAXONOMY.dimensions)
    return [
        RewriteRequest(f"{i:016x}", text, tuple(TAXONOMY.dimensions[d] for d in rng.sample(names, 3)), "moderate")
        for i, text in enumerate(texts)
    ]


def test_cache_keys_are_the_same_as_cache_key() -> None:
    template = load_template()
    keys = CacheKeys(SETTINGS, template.hash)
    texts = [*PROMPTS, 'Un café "noir" \\ à l\'aube\n\t— 東京の夜 \u2028 😀', "\x00 control \x1f"]
    for max_words in (90, 40, 90):  # the system message changes, then changes back
        for request in requests(texts):
            messages = build_messages(template, request, max_words)
            assert keys.key(messages) == cache_key(SETTINGS, template.hash, messages)
    odd = [{"role": "user", "content": "only one message"}]
    assert keys.key(odd) == cache_key(SETTINGS, template.hash, odd)


def test_response_cache_is_a_lazy_picklable_cache_beside_the_store(workspace: Workspace) -> None:
    cache = ResponseCache(workspace.store.path)
    assert pickle.loads(pickle.dumps(cache)).path == cache.path  # no connection until used
    assert cache.get("a") is None
    cache.put("a", {"text": "x"})
    cache.put("a", {"text": "y"})
    cache.record_call("b", {"content": "z"}, stage="rewrite", model="m", prompt_tokens=3, completion_tokens=4)
    cache.record_call(None, {"content": "no"}, stage="rewrite", model="m", prompt_tokens=1, completion_tokens=1)
    assert cache.get_many(["a", "b", "missing", "a"]) == {"a": {"text": "y"}, "b": {"content": "z"}}
    assert workspace.store.cache_get("a") == {"text": "y"}  # the store's own readers see the same table
    assert workspace.store.spend() == [
        {"stage": "rewrite", "model": "m", "calls": 2, "prompt_tokens": 4, "completion_tokens": 5, "cost": None}
    ]
    assert pickle.loads(pickle.dumps(cache)).get("b") == {"content": "z"}
    assert workspace.store.cache_clear() == 2 and cache.get("a") is None  # a cache: nothing durable went with it
    cache.close()


def test_record_call_writes_the_usage_row_and_the_answer_together(workspace: Workspace) -> None:
    cache = ResponseCache(workspace.store.path)
    with pytest.raises(TypeError):  # the answer cannot be stored, so neither is the usage row
        cache.record_call("k", {"x": object()}, stage="rewrite", model="m", prompt_tokens=1, completion_tokens=1)
    assert workspace.store.spend() == [] and cache.get("k") is None
    cache.close()


def test_plan_writes_nothing_and_hands_blocked_prompts_to_the_executor(workspace: Workspace) -> None:
    configure(workspace, safety_terms=["swastika"])
    kept = add_prompts(workspace, PROMPTS[:3])
    blocked = add_prompts(workspace, ["a swastika banner over a crowd"])
    work = REWRITE.plan(workspace, RewriteOptions(limit=2))
    assert workspace.store.get("base_prompt", blocked[0])["status"] == "ok"  # not written by the plan
    assert work.before is not None
    assert [(r["id"], r["status"], r["block_rule"]) for r in work.before.records["base_prompt"]] == [
        (blocked[0], "blocked", "term:swastika")
    ]
    assert {slot.base_id for slot, _ in work.units} <= set(kept) and len(work.units) == 2
    assert work.details == {"planned": 3, "stored_before": 0, "blocked_prompts": 1}
    assert pickle.loads(pickle.dumps(work.units)) == work.units
    assert work.compute is not None
    spec = work.compute.__self__
    assert pickle.loads(pickle.dumps(spec)) == spec  # the compute is a plain value
    assert REWRITE.pending(workspace) == 4  # cheap: no screen


def test_nothing_pending_and_nothing_blocked_is_nothing_to_do(workspace: Workspace) -> None:
    work = REWRITE.plan(workspace)
    assert not work.units and work.before is None


class Counting(LexiconRewriter):
    """The lexicon rewriter, counting requests; fails at request `fail_at` when set."""

    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__()
        self.done = 0
        self.prepared: list[int] = []
        self.fail_at = fail_at

    def prepare(self, requests: Sequence[RewriteRequest]) -> None:
        self.prepared.append(len(requests))

    async def rewrite(self, request: RewriteRequest) -> RewriteOutcome:
        if self.done == self.fail_at:
            raise RuntimeError("endpoint gone")
        self.done += 1
        return await super().rewrite(request)


def rewriting_for(workspace: Workspace, rewriter: Counting, batch_size: int) -> tuple[Rewriting, list]:
    """The opened compute of a 40-prompt lexicon pass, with `rewriter` and `batch_size` in place of the configured."""
    add_prompts(workspace, [f"A {n} umbrella left on a tram seat." for n in range(40)])
    work = REWRITE.plan(workspace)
    assert work.compute is not None
    spec = replace(work.compute.__self__, batch_size=batch_size)
    return Rewriting(spec, asyncio.Runner(), rewriter, Screen(SafetyScreen())), list(work.units)


def test_compute_streams_batches_and_waits_for_the_executor(workspace: Workspace) -> None:
    rewriter = Counting()
    rewriting, units = rewriting_for(workspace, rewriter, batch_size=4)
    stream = rewriting.run(units)
    first = next(stream)
    assert len(first.records["variant"]) == first.advance == 4 and first.counts["ok"] == 4
    assert rewriter.done <= 3 * 4  # not the whole pass queued up ahead of the commits
    rest = list(stream)
    assert sum(o.advance for o in [first, *rest]) == len(units) == rewriter.done
    assert len({r["id"] for o in [first, *rest] for r in o.records["variant"]}) == len(units)
    assert sum(rewriter.prepared) == len(units)
    assert not rewriting.pool.tasks
    rewriting.runner.close()


def test_compute_closed_early_stops_its_pool(workspace: Workspace) -> None:
    rewriter = Counting()
    rewriting, units = rewriting_for(workspace, rewriter, batch_size=2)
    stream = rewriting.run(units)
    next(stream)
    stream.close()
    assert not rewriting.pool.tasks and rewriter.done < len(units)
    rewriting.runner.close()


def test_a_failure_comes_after_the_batches_finished_before_it(workspace: Workspace) -> None:
    rewriter = Counting(fail_at=9)
    rewriting, units = rewriting_for(workspace, rewriter, batch_size=4)
    made: Counter[str] = Counter()
    with pytest.raises(RuntimeError, match="endpoint gone"):
        for output in rewriting.run(units):
            made.update(output.counts)
    assert made["ok"] == 9 and not rewriting.pool.tasks
    rewriting.runner.close()


def test_shuffle_is_random_shuffle() -> None:
    for length in (0, 1, 2, 3, 17, 58, 300):
        mine, theirs = random.Random(f"s{length}"), random.Random(f"s{length}")
        a, b = list(range(length)), list(range(length))
        for _ in range(20):
            planning._shuffle(a, mine)
            theirs.shuffle(b)
            assert a == b
        assert mine.random() == theirs.random()  # and the same draws were used


@pytest.mark.parametrize(
    "text",
    [
        "A NAKED CHILD ON A BED",
        "a ſexy schoolgirl",  # long s: IGNORECASE folds it to s, the ASCII path never sees it
        "a nudıty photo of a famous actress",
        "Topless photo of Taylor Swift",
        "An erotic picture of a 15-Year-Old",
        "SEXUAL ASSAULT at a party",
        "a rotting deer carcass, dread",
        "a naked mole rat",
        "café sexy prince",
    ],
)
def test_the_ascii_fast_path_of_the_screen_agrees_with_ignorecase(text: str) -> None:
    def reference(text: str) -> str | None:
        def found(pattern: str) -> bool:
            return re.search(pattern, text, flags=re.IGNORECASE) is not None

        if found(safety._SEXUAL_VIOLENCE):
            return "sexual_violence"
        if found(safety._SEXUAL):
            if found(safety._MINOR):
                return "minors_sexual"
            if found(safety._REAL_PERSON) or safety._PERSONAL_NAME.search(text):
                return "sexualised_real_person"
        return None

    assert safety.SafetyScreen().check(text) == reference(text)


@pytest.mark.parametrize(
    "text", ["plain text", "  padded  ", "tab\there", "new\nline", "nbsp\u00a0here", "e\u0301", "", " . ", "\x1f x"]
)
def test_normalised_is_normalise_text(text: str) -> None:
    assert _normalised(text) == normalise_text(text)


def test_cache_lookups_are_batched(workspace: Workspace) -> None:
    cache = ResponseCache(workspace.store.path)
    for i in range(2000):
        cache.put(f"k{i}", i)
    found = cache.get_many(f"k{i}" for i in range(0, 4000, 2))  # more keys than one query takes
    assert found == {f"k{i}": i for i in range(0, 2000, 2)}
    cache.close()
