"""The LLM rewriter: any OpenAI-compatible chat endpoint through the `openai` async client.

Each request goes through the response cache first, then through the rate limiters, then to the endpoint with
a per-request timeout. Transient failures (429, 5xx, timeouts, connection errors) and unusable answers are
retried with backoff and jitter (honouring Retry-After) up to `max_attempts`; then the variant is a failure
row carrying the last error. Accepted answers (rewrites and refusals) are kept in the response cache as soon as
they are paid for (with the call's usage, in one transaction), so a rerun makes no call twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any, Literal

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion

from curation.core.cache import ResponseCache
from curation.core.errors import InputError, WidespecError
from curation.core.ids import canonical_json, content_hash
from curation.core.settings import RewriterSettings
from curation.rewrite import RewriteOutcome, RewriteRequest, Usage
from curation.rewrite.limits import TokenBucket, retry_delay
from curation.rewrite.prompting import build_messages, judge, load_template, response_format

STAGE = "rewrite"
# Status codes that mean "this configuration cannot work": stop the pass instead of writing failure rows.
FATAL_STATUS = {401: "authentication failed", 403: "permission denied", 404: "model or endpoint not found"}


@dataclass(frozen=True)
class LLMSettings:
    base_url: str
    model: str
    api_key_env: str
    temperature: float
    timeout_s: float
    max_attempts: int
    backoff_s: float
    max_backoff_s: float
    max_words: int
    requests_per_minute: int
    tokens_per_minute: int
    prices: tuple[float, float] | None

    @classmethod
    def from_config(cls, section: RewriterSettings) -> LLMSettings:
        prices = section.prices
        return cls(
            base_url=section.base_url,
            model=section.model,
            api_key_env=section.api_key_env,
            temperature=section.temperature,
            timeout_s=section.timeout_s,
            max_attempts=section.max_attempts,
            backoff_s=section.backoff_s,
            max_backoff_s=section.max_backoff_s,
            max_words=section.max_words,
            requests_per_minute=section.requests_per_minute,
            tokens_per_minute=section.tokens_per_minute,
            prices=(float(prices[0]), float(prices[1])) if prices else None,
        )

    def params(self) -> dict[str, Any]:
        """The request parameters that shape the answer (part of the cache key and the provenance)."""
        return {"temperature": self.temperature, "max_words": self.max_words}

    def expected_completion_tokens(self) -> int:
        return int(self.max_words * 1.4) + 8

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        if self.prices is None:
            return None
        return (prompt_tokens * self.prices[0] + completion_tokens * self.prices[1]) / 1_000_000


def api_key_from_env(env_name: str) -> str:
    """The API key, read only from the environment variable the config names."""
    key = os.environ.get(env_name, "")
    if not key:
        raise InputError(
            f"rewriter.api_key_env: environment variable {env_name} is not set; export it "
            "(any non-empty value for a local server without authentication)"
        )
    return key


def cache_key(settings: LLMSettings, template_hash: str, messages: list[dict[str, str]]) -> str:
    """The response cache key: model, template hash, parameters and messages."""
    return content_hash(
        {"model": settings.model, "template_hash": template_hash, "params": settings.params(), "messages": messages}
    )


_USER_MARK = "\x00user message\x00"


class CacheKeys:
    """`cache_key` for requests that share one system message, without serialising and hashing that message (most
    of the key's bytes) again for each: the hash state after the canonical JSON that precedes the user message is
    kept and copied. The keys are the very same as `cache_key`'s; other messages fall back to it."""

    def __init__(self, settings: LLMSettings, template_hash: str) -> None:
        self.settings, self.template_hash = settings, template_hash
        self._system: str | None = None
        self._prefix = hashlib.sha256()
        self._suffix = b""

    def _prepare(self, system: str) -> None:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": _USER_MARK}]
        whole = canonical_json(
            {
                "model": self.settings.model,
                "template_hash": self.template_hash,
                "params": self.settings.params(),
                "messages": messages,
            }
        )
        before, after = whole.split(canonical_json(_USER_MARK))
        self._system, self._prefix, self._suffix = system, hashlib.sha256(before.encode()), after.encode()

    def key(self, messages: list[dict[str, str]]) -> str:
        if len(messages) != 2 or messages[0].keys() != {"role", "content"} or messages[1].keys() != {"role", "content"}:
            return cache_key(self.settings, self.template_hash, messages)
        system, user = messages
        if system["role"] != "system" or user["role"] != "user":
            return cache_key(self.settings, self.template_hash, messages)
        if system["content"] != self._system:
            self._prepare(system["content"])
        digest = self._prefix.copy()
        digest.update(encode_basestring(user["content"]).encode())  # canonical_json of a string
        digest.update(self._suffix)
        return digest.hexdigest()


def estimate_tokens(messages: list[dict[str, str]]) -> int:
    """A rough prompt-token count (about four characters per token) for limits and --estimate."""
    return sum(len(m["content"]) for m in messages) // 4 + 4 * len(messages)


class LLMRewriter:
    """Rewrites through an OpenAI-compatible endpoint; shared by all workers of one pass."""

    kind: Literal["llm", "lexicon"] = "llm"

    def __init__(
        self,
        settings: LLMSettings,
        cache: ResponseCache,
        *,
        api_key: str,
        refresh: bool = False,
        run_id: int | None = None,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.refresh = refresh
        self.run_id = run_id
        self.template = load_template()
        self.model: str | None = settings.model
        self.template_hash: str | None = self.template.hash
        self.params: dict[str, Any] = settings.params()
        self.mode = "json_schema"
        self._client = AsyncOpenAI(
            base_url=settings.base_url, api_key=api_key, max_retries=0, timeout=settings.timeout_s
        )
        now = time.monotonic()
        self._requests = TokenBucket(settings.requests_per_minute, now)
        self._tokens = TokenBucket(settings.tokens_per_minute, now)
        self._rng = random.Random()
        self._prepared: dict[str, _Prepared] = {}
        self._keys = CacheKeys(settings, self.template.hash)

    async def aclose(self) -> None:
        await self._client.close()

    async def _wait_for_limits(self, tokens: int) -> None:
        now = time.monotonic()
        wait = max(self._requests.reserve(1, now), self._tokens.reserve(tokens, now))
        if wait > 0:
            await asyncio.sleep(wait)

    async def _complete(self, messages: list[dict[str, str]], mode: str) -> dict[str, Any]:
        """One call; returns the parts of the answer that are cached and judged."""
        # The body is already plain JSON: post it through the client's request path directly, which keeps the
        # client's timeouts, errors and answer parsing but skips re-walking the typed parameters (a third of
        # the client's CPU time per request).
        body = {
            "model": self.settings.model,
            "messages": messages,
            "temperature": self.settings.temperature,
            "response_format": response_format(mode),
        }
        response = await self._client.post(
            "/chat/completions", cast_to=ChatCompletion, body=body, options={"timeout": self.settings.timeout_s}
        )
        usage = response.usage
        answer: dict[str, Any] = {
            "content": None,
            "refusal": None,
            "finish_reason": None,
            "prompt_tokens": usage.prompt_tokens if usage else 0,
            "completion_tokens": usage.completion_tokens if usage else 0,
        }
        if response.choices:
            choice = response.choices[0]
            answer.update(
                content=choice.message.content,
                refusal=getattr(choice.message, "refusal", None),
                finish_reason=choice.finish_reason,
            )
        return answer

    def _judge(self, answer: dict[str, Any], request: RewriteRequest) -> Any:
        return judge(
            answer["content"], answer["refusal"], answer["finish_reason"], request.base_text, self.settings.max_words
        )

    def _store_call(self, answer: dict[str, Any], key: str | None) -> None:
        """Token usage of one call, and the answer when it is accepted, in one transaction."""
        prompt, completion = answer["prompt_tokens"], answer["completion_tokens"]
        self.cache.record_call(
            key,
            answer,
            stage=STAGE,
            model=self.settings.model,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost=self.settings.cost(prompt, completion),
            run_id=self.run_id,
        )

    def prepare(self, requests: Sequence[RewriteRequest]) -> None:
        """Build the messages and cache keys of requests about to be rewritten, and look their answers up in
        one query instead of one per request (a rebuild from the cache is mostly lookups)."""
        prepared = {}
        for request in requests:
            messages = build_messages(self.template, request, self.settings.max_words)
            prepared[request.variant_id] = (messages, self._keys.key(messages))
        found = {} if self.refresh else self.cache.get_many(key for _, key in prepared.values())
        for variant_id, (messages, key) in prepared.items():
            self._prepared[variant_id] = _Prepared(messages, key, found.get(key))

    async def rewrite(self, request: RewriteRequest) -> RewriteOutcome:
        ready = self._prepared.pop(request.variant_id, None)
        if ready is not None:
            messages, key, cached = ready.messages, ready.key, ready.cached
        else:
            messages = build_messages(self.template, request, self.settings.max_words)
            key = self._keys.key(messages)
            cached = None
        if not self.refresh:
            if cached is None:  # not prepared, or not cached then: an identical request may have been answered since
                cached = self.cache.get(key)
            if cached is not None:
                verdict = self._judge(cached, request)
                usage = Usage(cached["prompt_tokens"], cached["completion_tokens"], 0)
                return RewriteOutcome(verdict.status, verdict.text, verdict.reason, usage, cached=True)
        usage = Usage()
        estimate = estimate_tokens(messages) + self.settings.expected_completion_tokens()
        last_error = "no attempt made"
        attempt = 0
        while attempt < self.settings.max_attempts:
            attempt += 1
            await self._wait_for_limits(estimate)
            headers: dict[str, str] | None = None
            mode = self.mode
            try:
                usage.calls += 1
                answer = await self._complete(messages, mode)
            except openai.APITimeoutError:
                last_error = f"attempt {attempt}: request timed out after {self.settings.timeout_s:g} s"
            except openai.APIConnectionError as exc:
                last_error = f"attempt {attempt}: connection error: {exc}"
            except openai.APIStatusError as exc:
                status = exc.status_code
                detail = str(exc.message)[:300]
                if status in FATAL_STATUS:
                    raise WidespecError(
                        f"{self.settings.base_url}: {FATAL_STATUS[status]} (HTTP {status}): {detail}; "
                        "check rewriter.base_url, rewriter.model and the key in rewriter.api_key_env"
                    ) from None
                if status == 400 and mode == "json_schema" and _about_format(detail):
                    self.mode = "json_object"  # the endpoint lacks JSON Schema output: JSON mode from now on
                    attempt -= 1  # and this attempt again, once, in JSON mode
                    continue
                last_error = f"attempt {attempt}: HTTP {status}: {detail}"
                if status != 429 and status < 500:
                    break
                headers = dict(exc.response.headers)
            else:
                self._tokens.refund(estimate - answer["prompt_tokens"] - answer["completion_tokens"])
                usage.prompt_tokens += answer["prompt_tokens"]
                usage.completion_tokens += answer["completion_tokens"]
                verdict = self._judge(answer, request)
                self._store_call(answer, key if verdict.status != "invalid" else None)
                if verdict.status != "invalid":
                    return RewriteOutcome(verdict.status, verdict.text, verdict.reason, usage)
                last_error = f"attempt {attempt}: {verdict.reason}"
            if attempt < self.settings.max_attempts:
                await asyncio.sleep(
                    retry_delay(
                        attempt,
                        headers,
                        base_s=self.settings.backoff_s,
                        cap_s=self.settings.max_backoff_s,
                        rng=self._rng,
                        now_epoch=time.time(),
                    )
                )
        return RewriteOutcome("failed", None, f"gave up after {attempt} attempt(s); last: {last_error}", usage)


def _about_format(message: str) -> bool:
    lowered = message.lower()
    return "response_format" in lowered or "json_schema" in lowered


@dataclass(frozen=True)
class _Prepared:
    messages: list[dict[str, str]]
    key: str
    cached: dict[str, Any] | None


def make_llm_rewriter(
    section: RewriterSettings, cache: ResponseCache, *, refresh: bool, run_id: int | None = None
) -> LLMRewriter:
    settings = LLMSettings.from_config(section)
    key = api_key_from_env(settings.api_key_env)
    return LLMRewriter(settings, cache, api_key=key, refresh=refresh, run_id=run_id)
