"""The scorer's text context as the app shows it: counts of cut texts, and the `rewrite --plan` check of max_words."""

from __future__ import annotations

from itertools import islice

from curation.core.console import warn
from curation.core.text_context import context_length, max_words_warning, token_counter, tokens_per_word
from curation.core.workspace import Workspace
from curation.rewrite.words import tokens

# Base prompts measured for the tokens-per-word ratio (enough for a stable mean, fast on any workspace).
SAMPLE_PROMPTS = 2000


def text_context_line(counts: dict[str, dict[str, int]]) -> str | None:
    """ "3 of 40 variant texts and 2 of 30 pairs read a prompt longer than ...", or None when nothing was counted."""
    parts = [
        f"{c['truncated']} of {c['counted']} {'variant texts' if kind == 'variants' else 'pairs'}"
        for kind, c in counts.items()
        if c["counted"]
    ]
    if not parts:
        return None
    return " and ".join(parts) + " read a prompt longer than the scorer's text context (cut to fit)"


def max_words_check(ws: Workspace) -> str | None:
    """For the LLM rewriter: a warning when rewrites of `max_words` words can exceed the scorer's context,
    at the tokens per word the scorer's own tokenizer measures on the stored base prompts."""
    from curation.score.stage import scorer_source  # the scorer's model (torch): only for this check

    section = ws.settings.rewriter
    if section.kind != "llm":
        return None  # the lexicon rewriter has no max_words
    import open_clip

    try:
        source = scorer_source(ws)
        tokenizer = open_clip.get_tokenizer(source.open_clip_name)
    except Exception as exc:  # the plan still shows; the check is named as not done
        warn(f"max_words not checked against the scorer's context: its tokenizer did not load ({exc})")
        return None
    count, context = token_counter(tokenizer), context_length(tokenizer)
    if count is None or context is None:
        return None
    texts = [r["text"] for r in islice(ws.store.iter("base_prompt", status="ok"), SAMPLE_PROMPTS)]
    ratio = tokens_per_word(count(texts), [len(tokens(t)) for t in texts])
    return max_words_warning(section.max_words, context, ratio, source.scorer_id)
