"""One transport for every stage that calls an OpenAI-compatible chat endpoint: the rewriter and the judge.

A stage owns its domain logic (the messages it sends, the cache key, what an answer means); the transport owns
the rest, once: the response cache, requests- and tokens-per-minute limits, per-request timeouts, retries with
backoff and jitter honouring Retry-After, the JSON Schema → JSON mode fallback, fatal configuration errors, the
usage and cost ledger, and the API key, read only from the environment. Accepted answers are cached the moment
they are paid for (with the call's usage, in one transaction), so a rerun never pays twice.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion

from curation.core.cache import ResponseCache
from curation.core.errors import InputError, WidespecError
from curation.core.limits import TokenBucket, retry_delay
from curation.core.secrets import redact
from curation.core.usage import Usage

# Status codes that mean "this configuration cannot work": stop the pass instead of writing failure rows.
FATAL_STATUS = {401: "authentication failed", 403: "permission denied", 404: "model or endpoint not found"}
# What an image part of a message is counted as by the limits and estimates (a 768-pixel image is about this).
IMAGE_TOKENS = 800

Mode = Literal["json_schema", "json_object"]


@dataclass(frozen=True)
class ChatSettings:
    """How to reach one endpoint and how hard to push it; `section` names the config table in messages."""

    section: str
    base_url: str
    model: str
    api_key_env: str
    temperature: float
    timeout_s: float
    max_attempts: int
    backoff_s: float
    max_backoff_s: float
    requests_per_minute: int
    tokens_per_minute: int
    prices: tuple[float, float] | None

    @classmethod
    def from_section(cls, name: str, section: Any) -> ChatSettings:
        """From a typed config section that holds the transport's keys (`rewriter`, `judge`)."""
        values = {f.name: getattr(section, f.name) for f in fields(cls) if f.name not in ("section", "prices")}
        return cls(section=name, prices=prices_of(section.prices), **values)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """USD for a call at `prices` (per million prompt and completion tokens); None without prices."""
        if self.prices is None:
            return None
        return (prompt_tokens * self.prices[0] + completion_tokens * self.prices[1]) / 1_000_000


def prices_of(values: Iterable[float]) -> tuple[float, float] | None:
    """The config's `prices = [prompt, completion]` (empty: no prices)."""
    found = tuple(float(v) for v in values)
    return (found[0], found[1]) if found else None


def api_key_from_env(env_name: str, setting: str = "rewriter.api_key_env") -> str:
    """The API key, read only from the environment variable the config names."""
    key = os.environ.get(env_name, "")
    if not key:
        raise InputError(
            f"{setting}: environment variable {env_name} is not set; export it "
            "(any non-empty value for a local server without authentication)"
        )
    return key


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    """A rough prompt-token count (about four characters per token, `IMAGE_TOKENS` per image) for limits and
    estimates."""
    total = 0
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            total += len(content) // 4
        else:
            for part in content:
                total += len(part.get("text", "")) // 4 if part.get("type") == "text" else IMAGE_TOKENS
        total += 4
    return total


@dataclass(frozen=True)
class Interpreted:
    """What one answer means to the calling stage: usable (`ok`, with its value), `refused`, or `invalid`
    (retried, then a failure)."""

    status: Literal["ok", "refused", "invalid"]
    value: Any = None
    reason: str | None = None


@dataclass
class CallOutcome:
    """The end of one request: `ok` or `refused` (answers, cached) or `failed` after bounded attempts; `usage`
    holds the accepted answer's tokens (every attempt's are in the spend ledger) and the calls made."""

    status: Literal["ok", "refused", "failed"]
    value: Any
    reason: str | None
    usage: Usage
    cached: bool = False


# What a stage asks for: the JSON Schema it wants the answer in, for `mode`.
FormatFor = Callable[[Mode], dict[str, Any]]
Interpret = Callable[[Mapping[str, Any]], Interpreted]


class ChatTransport:
    """Calls one OpenAI-compatible endpoint for one stage; shared by all workers of a pass (one event loop)."""

    def __init__(
        self,
        settings: ChatSettings,
        cache: ResponseCache,
        *,
        stage: str,
        response_format: FormatFor,
        api_key: str,
        refresh: bool = False,
        run_id: int | None = None,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.stage = stage
        self.refresh = refresh
        self.run_id = run_id
        self.mode: Mode = "json_schema"
        self._format = response_format
        self._secrets = (api_key,)
        self._client = AsyncOpenAI(
            base_url=settings.base_url, api_key=api_key, max_retries=0, timeout=settings.timeout_s
        )
        now = time.monotonic()
        self._requests = TokenBucket(settings.requests_per_minute, now)
        self._tokens = TokenBucket(settings.tokens_per_minute, now)
        self._rng = random.Random()

    async def aclose(self) -> None:
        await self._client.close()

    def cached_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The cached answers of those keys that have one (nothing with `refresh`): one query for a batch."""
        return {} if self.refresh else self.cache.get_many(keys)

    async def _wait_for_limits(self, tokens: int) -> None:
        now = time.monotonic()
        wait = max(self._requests.reserve(1, now), self._tokens.reserve(tokens, now))
        if wait > 0:
            await asyncio.sleep(wait)

    async def _complete(self, messages: list[dict[str, Any]], mode: Mode) -> dict[str, Any]:
        """One call; returns the parts of the answer that are cached and interpreted."""
        # The body is already plain JSON: post it through the client's request path directly, which keeps the
        # client's timeouts, errors and answer parsing but skips re-walking the typed parameters (a third of
        # the client's CPU time per request).
        body = {
            "model": self.settings.model,
            "messages": messages,
            "temperature": self.settings.temperature,
            "response_format": self._format(mode),
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

    def _store_call(self, answer: dict[str, Any], key: str | None) -> None:
        """Token usage of one call, and the answer when it is accepted, in one transaction."""
        prompt, completion = answer["prompt_tokens"], answer["completion_tokens"]
        self.cache.record_call(
            key,
            answer,
            stage=self.stage,
            model=self.settings.model,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost=self.settings.cost(prompt, completion),
            run_id=self.run_id,
        )

    async def call(
        self,
        messages: list[dict[str, Any]],
        key: str,
        interpret: Interpret,
        *,
        expected_completion_tokens: int,
        cached: Mapping[str, Any] | None = None,
    ) -> CallOutcome:
        """The outcome of `messages`: from the cache (`cached`, looked up already, or looked up here), else
        from the endpoint, retried up to `max_attempts` on transient failures and invalid answers."""
        if not self.refresh:
            found = cached if cached is not None else self.cache.get(key)
            if found is not None:
                meaning = interpret(found)
                usage = Usage(found["prompt_tokens"], found["completion_tokens"], 0)
                return CallOutcome(_final(meaning), meaning.value, meaning.reason, usage, cached=True)
        usage = Usage()
        estimate = estimate_tokens(messages) + expected_completion_tokens
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
                last_error = f"attempt {attempt}: connection error: {self._redact(str(exc))}"
            except openai.APIStatusError as exc:
                status = exc.status_code
                detail = self._redact(str(exc.message)[:300])
                if status in FATAL_STATUS:
                    section = self.settings.section
                    raise WidespecError(
                        f"{self.settings.base_url}: {FATAL_STATUS[status]} (HTTP {status}): {detail}; "
                        f"check {section}.base_url, {section}.model and the key in {section}.api_key_env"
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
                meaning = interpret(answer)
                self._store_call(answer, key if meaning.status != "invalid" else None)  # every attempt is spend
                if meaning.status != "invalid":
                    # The outcome's tokens are the accepted answer's, as its cached copy says: a record built from
                    # them is the same whether the answer came live (after retries) or from the cache.
                    accepted = Usage(answer["prompt_tokens"], answer["completion_tokens"], usage.calls)
                    return CallOutcome(_final(meaning), meaning.value, meaning.reason, accepted)
                last_error = f"attempt {attempt}: {meaning.reason}"
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
        return CallOutcome("failed", None, f"gave up after {attempt} attempt(s); last: {last_error}", usage)

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets)


def _final(meaning: Interpreted) -> Literal["ok", "refused", "failed"]:
    return "failed" if meaning.status == "invalid" else meaning.status


def _about_format(message: str) -> bool:
    lowered = message.lower()
    return "response_format" in lowered or "json_schema" in lowered
