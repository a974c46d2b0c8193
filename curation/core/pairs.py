"""Pairs: a variant's render and its base prompt's render with the same pairing key.

The pairing key (`curation.core.records.pairing_key`) covers everything but the prompt that can change the
pixels: model and resolved revision, pipeline and scheduler class, dtype, batch mode, call arguments and seed.
Change any of it and both images are rendered anew; older renders stay in the store as history and never pair
with the new ones. A pair is the unit that is scored, filtered, judged and exported; its id is the variant and
the pairing key.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from curation.core.ids import stable_id
from curation.core.store import Record, Store


def pair_id(variant_id: str, key: str) -> str:
    """The id of the pair of `variant_id` rendered with pairing key `key`."""
    return stable_id("pair", variant_id, key)


@dataclass(frozen=True)
class Pair:
    id: str
    variant: Record
    base: Record
    base_render: Record
    anti_render: Record

    @property
    def generator(self) -> str:
        return str(self.anti_render["generator"]["model"])

    @property
    def seed(self) -> int:
        return int(self.anti_render["seed"])


def iter_pairs(store: Store, *, variant_ids: set[str] | None = None) -> Iterator[Pair]:
    """Every complete pair (both renders ok), in pair-id order."""
    base_renders: dict[tuple[str, str], Record] = {}
    for render in store.iter("render", status="ok"):
        if render["prompt_kind"] == "base" and "pairing_key" in render:
            base_renders[(render["prompt_id"], render["pairing_key"])] = render
    variants = {v["id"]: v for v in store.iter("variant", status="ok")}
    bases: dict[str, Record] = {}
    pairs: list[Pair] = []
    for render in store.iter("render", status="ok"):
        if render["prompt_kind"] != "variant" or render["prompt_id"] not in variants or "pairing_key" not in render:
            continue
        if variant_ids is not None and render["prompt_id"] not in variant_ids:
            continue
        variant = variants[render["prompt_id"]]
        base_render = base_renders.get((variant["base_id"], render["pairing_key"]))
        if base_render is None:
            continue
        if variant["base_id"] not in bases:
            base = store.get("base_prompt", variant["base_id"])
            if base is None or base["status"] != "ok":
                continue  # a base prompt blocked after its images were made: the pair is scored, judged and released no more
            bases[variant["base_id"]] = base
        pid = pair_id(variant["id"], render["pairing_key"])
        pairs.append(Pair(pid, variant, bases[variant["base_id"]], base_render, render))
    yield from sorted(pairs, key=lambda p: p.id)
