"""Generation seeds and shard assignment: pure functions of the project seed and the work item."""

from __future__ import annotations

from curation.core.errors import InputError
from curation.core.ids import content_hash

# Seeds stay below 2**31 so every library and file format takes them unchanged.
SEED_RANGE = 2**31


def render_seed(project_seed: int, base_id: str, seed_index: int) -> int:
    """The seed shared by a base prompt's render and all its variants' renders (index `seed_index`).

    It depends on the base prompt, not the variant, so every variant of a base prompt pairs with one base render.
    """
    return int(content_hash(["render_seed", project_seed, base_id, seed_index])[:8], 16) % SEED_RANGE


def parse_shard(text: str) -> tuple[int, int]:
    """`i/n` → (i, n) with 0 <= i < n."""
    try:
        index_text, count_text = text.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise InputError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
    if count < 1 or not 0 <= index < count:
        raise InputError(f"--shard {text!r}: expected 0 <= I < N")
    return index, count


def shard_of(key: str, count: int) -> int:
    """Which of `count` shards owns the work keyed by `key` (stable across processes and machines)."""
    return int(content_hash(["shard", key])[:15], 16) % count
