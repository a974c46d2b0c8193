"""How many tokens of a text a scorer's text encoder reads, and whether the text had to be cut to fit.

CLIP-family text encoders read a fixed context (77 tokens for OpenAI CLIP, start and end tokens included); the
tokenizer silently cuts anything longer, so a long prompt is scored on its first part only. The counts here are
the tokenizer's own, before the cut: open_clip's BPE tokenizer and Hugging Face tokenizers are both counted; any
other tokenizer gives no count (unknown, never 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

TokenCounter = Callable[[Sequence[str]], list[int]]
# Tokens per word when no text is at hand to measure it (English prompts through CLIP's BPE read about 1.3).
DEFAULT_TOKENS_PER_WORD = 1.3


def context_length(tokenizer: Any) -> int | None:
    """The number of tokens the encoder reads (special tokens included), or None when the tokenizer doesn't say."""
    length = getattr(tokenizer, "context_length", None)
    return int(length) if isinstance(length, int) and length > 0 else None


def token_counter(tokenizer: Any) -> TokenCounter | None:
    """A function giving each text's full token count (special tokens included), or None for unknown tokenizers."""
    from open_clip.tokenizer import HFTokenizer, SimpleTokenizer

    if isinstance(tokenizer, SimpleTokenizer):
        # [start] + BPE tokens + [end], as SimpleTokenizer.__call__ builds them before cutting.
        return lambda texts: [len(tokenizer.encode(text)) + 2 for text in texts]
    if isinstance(tokenizer, HFTokenizer):
        hf = tokenizer.tokenizer

        def count(texts: Sequence[str]) -> list[int]:
            cleaned = [tokenizer.clean_fn(text) for text in texts]
            return [len(ids) for ids in hf(cleaned, add_special_tokens=True, truncation=False).input_ids]

        return count
    return None


def words_that_fit(context: int, tokens_per_word: float) -> int:
    """The most words of such text that fit in `context` tokens, next to the start and end tokens."""
    return max(0, math.floor((context - 2) / tokens_per_word))


def max_words_warning(max_words: int, context: int, tokens_per_word: float, scorer: str) -> str | None:
    """A warning when rewrites of up to `max_words` words can be longer than the scorer reads, else None."""
    fit = words_that_fit(context, tokens_per_word)
    if max_words <= fit:
        return None
    longest = math.ceil(max_words * tokens_per_word) + 2
    return (
        f"rewriter.max_words = {max_words} can exceed the context of scorer {scorer} ({context} tokens): at "
        f"{tokens_per_word:.2f} tokens per word a rewrite of {max_words} words is ~{longest} tokens, and the scorer "
        f"reads only its first {context}; set max_words to {fit} or fewer to score whole texts"
    )


def tokens_per_word(token_counts: Sequence[int], word_counts: Sequence[int]) -> float:
    """Tokens per word measured over texts (special tokens left out); the default when nothing is measurable."""
    words = sum(word_counts)
    if not words:
        return DEFAULT_TOKENS_PER_WORD
    return max(1.0, (sum(token_counts) - 2 * len(token_counts)) / words)
