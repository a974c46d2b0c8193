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
