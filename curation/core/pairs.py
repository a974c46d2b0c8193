"""Pairs: a variant's render and its base prompt's render made with the same generator, seed and settings.

A pair is the unit that is scored, filtered, judged by humans and exported. Its id is derived from the variant,
the generator model and the seed, so every stage after generation refers to it the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from curation.core.ids import stable_id
from curation.core.store import Record, Store

# Render fields that must match for two renders to form a pair.
SHARED_SETTINGS = ("seed", "steps", "guidance", "width", "height")


def pair_id(variant_id: str, generator_model: str, seed: int) -> str:
    """The id of the pair (variant × generator × seed)."""
    return stable_id("pair", variant_id, generator_model, seed)


def settings_key(render: Record) -> tuple[Any, ...]:
    """What two renders of one pair share: generator model and every generation setting."""
    return (render["generator"]["model"], *(render[field] for field in SHARED_SETTINGS))


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
    base_renders: dict[tuple[str, tuple[Any, ...]], Record] = {}
    for render in store.iter("render", status="ok"):
        if render["prompt_kind"] == "base":
            base_renders[(render["prompt_id"], settings_key(render))] = render
    variants = {v["id"]: v for v in store.iter("variant", status="ok")}
    bases: dict[str, Record] = {}
    pairs: list[Pair] = []
    for render in store.iter("render", status="ok"):
        if render["prompt_kind"] != "variant" or render["prompt_id"] not in variants:
            continue
        if variant_ids is not None and render["prompt_id"] not in variant_ids:
            continue
        variant = variants[render["prompt_id"]]
        base_render = base_renders.get((variant["base_id"], settings_key(render)))
        if base_render is None:
            continue
        if variant["base_id"] not in bases:
            base = store.get("base_prompt", variant["base_id"])
            if base is None:
                continue
            bases[variant["base_id"]] = base
        pid = pair_id(variant["id"], render["generator"]["model"], render["seed"])
        pairs.append(Pair(pid, variant, bases[variant["base_id"]], base_render, render))
    yield from sorted(pairs, key=lambda p: p.id)
