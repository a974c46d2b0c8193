"""The offline lexicon rewriter: composes the base prompt with the taxonomy's own phrases, deterministically.

The first dimension with a lexicon lends a framing prefix ("a blurry, out-of-focus photo of ..."); every
dimension then adds its wording for the requested intensity after a comma. Which prefix is used is decided by
a hash of the variant id, so the same variant always reads the same.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any, Literal

from curation.rewrite import RewriteOutcome, RewriteRequest

COMPOSER_VERSION = "lexicon/1"
_LEADING_ARTICLE = re.compile(r"^(A|An|The|Some|Two|Three|Several|Many)\b")


def _choice(options: tuple[str, ...], key: str) -> str:
    digest = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
    return options[digest % len(options)]


def scene_clause(base_text: str) -> str:
    """The base prompt as a clause that can follow a prefix: trailing punctuation off, article lowercased."""
    scene = base_text.strip().rstrip(".!;, ")
    return _LEADING_ARTICLE.sub(lambda m: m.group(1).lower(), scene, count=1)


def join_phrases(phrases: list[str]) -> str:
    if len(phrases) <= 1:
        return "".join(phrases)
    return ", ".join(phrases[:-1]) + ", and " + phrases[-1]


def compose(request: RewriteRequest) -> str:
    """The anti-aesthetic prompt for one planned variant."""
    scene = scene_clause(request.base_text)
    framing = next((d for d in request.dimensions if d.prefixes), None)
    if framing is not None:
        prefix = _choice(framing.prefixes, request.variant_id)
        head = f"{prefix[0].upper()}{prefix[1:]} {scene}"
    else:
        head = scene[0].upper() + scene[1:]
    phrases = [d.intensities[request.intensity] for d in request.dimensions]
    return f"{head}, {join_phrases(phrases)}."


class LexiconRewriter:
    """Deterministic, offline, free: the embedded default rewriter."""

    kind: Literal["llm", "lexicon"] = "lexicon"
    model: str | None = None
    template_hash: str | None = None

    def __init__(self) -> None:
        self.params: dict[str, Any] = {"composer": COMPOSER_VERSION}

    def prepare(self, requests: Sequence[RewriteRequest]) -> None:
        """Nothing to look up ahead: composing is pure."""

    async def rewrite(self, request: RewriteRequest) -> RewriteOutcome:
        return RewriteOutcome("ok", compose(request))

    async def aclose(self) -> None:
        return None
