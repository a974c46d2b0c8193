"""The LLM rewriter: any OpenAI-compatible chat endpoint through the kernel's chat transport.

The rewriter owns its messages, cache keys and what an answer means (`prompting`); the transport
(`curation.core.llm`) owns the cache, limits, retries, timeouts and the spend ledger, shared with the judge.
A usable rewrite or a refusal is cached as soon as it is paid for; unusable answers are retried, then the variant
is a failure row carrying the last error.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any, Literal

from curation.core.cache import ResponseCache
from curation.core.ids import canonical_json, content_hash
from curation.core.llm import ChatSettings, ChatTransport, Interpreted, api_key_from_env
from curation.core.settings import RewriterSettings
from curation.rewrite import RewriteOutcome, RewriteRequest
from curation.rewrite.prompting import build_messages, judge, load_template, response_format

STAGE = "rewrite"


@dataclass(frozen=True)
class LLMSettings:
    """The transport's settings and the rewriter's own word limit."""

    chat: ChatSettings
    max_words: int

    @classmethod
    def from_config(cls, section: RewriterSettings) -> LLMSettings:
        return cls(ChatSettings.from_section("rewriter", section), section.max_words)

    @property
    def model(self) -> str:
        return self.chat.model

    def params(self) -> dict[str, Any]:
        """The request parameters that shape the answer (part of the cache key and the provenance)."""
        return {"temperature": self.chat.temperature, "max_words": self.max_words}

    def expected_completion_tokens(self) -> int:
        return int(self.max_words * 1.4) + 8

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        return self.chat.cost(prompt_tokens, completion_tokens)


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
        self.template = load_template()
        self.model: str | None = settings.model
        self.template_hash: str | None = self.template.hash
        self.params: dict[str, Any] = settings.params()
        self.transport = ChatTransport(
            settings.chat,
            cache,
            stage=STAGE,
            response_format=response_format,
            api_key=api_key,
            refresh=refresh,
            run_id=run_id,
        )
        self._prepared: dict[str, _Prepared] = {}
        self._keys = CacheKeys(settings, self.template.hash)

    @property
    def mode(self) -> str:
        """The structured-output mode in use (`json_schema`, or `json_object` once the endpoint refused it)."""
        return self.transport.mode

    async def aclose(self) -> None:
        await self.transport.aclose()

    def prepare(self, requests: Sequence[RewriteRequest]) -> None:
        """Build the messages and cache keys of requests about to be rewritten, and look their answers up in
        one query instead of one per request (a rebuild from the cache is mostly lookups)."""
        prepared = {}
        for request in requests:
            messages = build_messages(self.template, request, self.settings.max_words)
            prepared[request.variant_id] = (messages, self._keys.key(messages))
        found = self.transport.cached_many(key for _, key in prepared.values())
        for variant_id, (messages, key) in prepared.items():
            self._prepared[variant_id] = _Prepared(messages, key, found.get(key))

    async def rewrite(self, request: RewriteRequest) -> RewriteOutcome:
        ready = self._prepared.pop(request.variant_id, None)
        if ready is not None:
            messages, key, cached = ready.messages, ready.key, ready.cached
        else:
            messages = build_messages(self.template, request, self.settings.max_words)
            key, cached = self._keys.key(messages), None
        max_words = self.settings.max_words

        def interpret(answer: Mapping[str, Any]) -> Interpreted:
            found = judge(answer["content"], answer["refusal"], answer["finish_reason"], request.base_text, max_words)
            return Interpreted(found.status, found.text, found.reason)

        # Not prepared (or not cached then): the transport looks the key up again, since an identical request
        # may have been answered since.
        outcome = await self.transport.call(
            messages,
            key,
            interpret,
            expected_completion_tokens=self.settings.expected_completion_tokens(),
            cached=cached,
        )
        return RewriteOutcome(outcome.status, outcome.value, outcome.reason, outcome.usage, cached=outcome.cached)


@dataclass(frozen=True)
class _Prepared:
    messages: list[dict[str, str]]
    key: str
    cached: dict[str, Any] | None


def make_llm_rewriter(
    section: RewriterSettings, cache: ResponseCache, *, refresh: bool, run_id: int | None = None
) -> LLMRewriter:
    settings = LLMSettings.from_config(section)
    key = api_key_from_env(settings.chat.api_key_env)
    return LLMRewriter(settings, cache, api_key=key, refresh=refresh, run_id=run_id)
