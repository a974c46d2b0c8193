"""The optional moderation endpoint of the safety screen (`rewriter.moderation_model`).

Texts are checked at the OpenAI-compatible `/moderations` endpoint; results are kept in the response cache,
so a rerun checks nothing twice. A flagged text is blocked with the rule `moderation:<category>`. When the
endpoint cannot be reached the pass stops: the screen is never skipped silently.
"""

from __future__ import annotations

from typing import Any

import openai
from openai import AsyncOpenAI

from curation.core.cache import ResponseCache
from curation.core.errors import WidespecError
from curation.core.ids import content_hash


def flagged_rule(result: dict[str, Any]) -> str | None:
    """The rule name for a cached moderation result, or None when it was not flagged."""
    if not result["flagged"]:
        return None
    return f"moderation:{result['categories'][0] if result['categories'] else 'flagged'}"


class Moderator:
    """Checks texts at the endpoint, one request per text, answers kept in the response cache."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str,
        cache: ResponseCache,
        *,
        timeout_s: float,
        max_attempts: int,
    ) -> None:
        self.base_url, self.model, self.cache = base_url, model, cache
        # the client's own retries (backoff, Retry-After) suffice for this small, rarely limited endpoint
        self._client = AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=max_attempts - 1, timeout=timeout_s)

    async def check(self, text: str) -> str | None:
        key = content_hash({"moderation": self.model, "text": text})
        cached = self.cache.get(key)
        if cached is None:
            try:
                response = await self._client.moderations.create(model=self.model, input=text)
            except openai.OpenAIError as exc:
                raise WidespecError(
                    f"moderation endpoint {self.base_url} ({self.model}) failed: {exc}; the safety screen cannot be "
                    'skipped: fix it or set rewriter.moderation_model = ""'
                ) from None
            result = response.results[0]
            categories = sorted(name for name, hit in result.categories.model_dump(by_alias=True).items() if hit)
            cached = {"flagged": bool(result.flagged), "categories": categories}
            self.cache.put(key, cached)
        return flagged_rule(cached)

    async def aclose(self) -> None:
        await self._client.close()
