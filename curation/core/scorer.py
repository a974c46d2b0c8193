"""Which scorer id the configured `[scorer]` settings resolved to, kept as durable state by the score stage.

The filter, export and report select scores by this id without loading (or building) the model themselves.
"""

from __future__ import annotations

from typing import Any

from curation.core.ids import content_hash
from curation.core.settings import ScorerSettings
from curation.core.store import Store

STATE_PREFIX = "scorer:"


def setting_key(section: ScorerSettings) -> str:
    """The state key of a `[scorer]` setting (model and pretrained tag)."""
    return STATE_PREFIX + content_hash([section.model, section.pretrained])[:16]


def scorer_state(section: ScorerSettings, scorer_id: str) -> dict[str, Any]:
    """The state entry the score stage commits when it resolves the configured scorer."""
    return {setting_key(section): {"model": section.model, "pretrained": section.pretrained, "id": scorer_id}}


def configured_scorer(store: Store, section: ScorerSettings) -> str | None:
    """The id scores of the configured scorer carry, or None before `widespec score` has resolved it."""
    entry = store.state_get(setting_key(section))
    return str(entry["id"]) if entry else None


# The score rows whose text counts stand for a variant's text checks and for a pair's CLIP metrics.
VARIANT_TEXT_METRIC = "text_distance"
PAIR_TEXT_METRICS = ("fidelity", "content_kept")


def truncated_texts(store: Store, scorer: str | None) -> dict[str, dict[str, int]]:
    """How many variants (text checks) and pairs (CLIP metrics) read a prompt longer than `scorer`'s context,
    out of those whose token counts were recorded: {"variants": {"truncated": n, "counted": m}, "pairs": ...}."""
    truncated: dict[str, set[str]] = {"variants": set(), "pairs": set()}
    counted: dict[str, set[str]] = {"variants": set(), "pairs": set()}
    for row in store.iter("score", metric=[VARIANT_TEXT_METRIC, *PAIR_TEXT_METRICS], status="ok"):
        if row["scorer"] != scorer or row.get("text_tokens") is None:
            continue
        kind = "variants" if row["metric"] == VARIANT_TEXT_METRIC else "pairs"
        counted[kind].add(row["subject_id"])
        if row.get("text_truncated"):
            truncated[kind].add(row["subject_id"])
    return {kind: {"truncated": len(truncated[kind]), "counted": len(counted[kind])} for kind in counted}
