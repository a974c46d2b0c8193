"""Rewriters: turn a base prompt and planned dimensions into an anti-aesthetic prompt.

Both rewriters share one interface (`Rewriter`): the offline lexicon composer and the LLM client.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from curation.core.taxonomy import Dimension
from curation.core.usage import Usage

__all__ = ["RewriteOutcome", "RewriteRequest", "Rewriter", "Usage"]

Status = Literal["ok", "failed", "refused"]


@dataclass(frozen=True)
class RewriteRequest:
    """One planned variant: the base prompt (data, never instructions) and what to apply to it."""

    variant_id: str
    base_text: str
    dimensions: tuple[Dimension, ...]
    intensity: str


@dataclass
class RewriteOutcome:
    status: Status
    text: str | None
    error: str | None = None
    usage: Usage | None = None
    cached: bool = False


class Rewriter(Protocol):
    kind: Literal["llm", "lexicon"]
    model: str | None
    template_hash: str | None
    params: dict[str, Any]

    def prepare(self, requests: Sequence[RewriteRequest]) -> None:
        """Get ready for these requests, about to be rewritten (a batched cache lookup, say)."""

    async def rewrite(self, request: RewriteRequest) -> RewriteOutcome: ...

    async def aclose(self) -> None: ...
