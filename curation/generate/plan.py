"""Planning renders: which images a model must make, with ids, seeds and shard owners (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from curation.core.ids import stable_id
from curation.core.records import pairing_key, render_id
from curation.generate.models import RenderSettings
from curation.generate.seeds import render_seed, shard_of


@dataclass(frozen=True)
class RenderJob:
    render_id: str
    prompt_id: str
    prompt_kind: str  # base | variant
    text: str
    seed: int
    group: str  # base prompt × model × seed index: every render of one group shares a seed and a shard


@dataclass(frozen=True)
class VariantRow:
    id: str
    base_id: str
    text: str


def plan_renders(
    *,
    generator: Mapping[str, Any],
    settings: RenderSettings,
    base_texts: dict[str, str],
    variants: Iterable[VariantRow],
    project_seed: int,
    seeds_per_pair: int,
) -> list[RenderJob]:
    """Every render the variants need, base renders once per base prompt and seed, grouped by base prompt."""
    by_base: dict[str, list[VariantRow]] = {}
    for variant in variants:
        if variant.base_id in base_texts:
            by_base.setdefault(variant.base_id, []).append(variant)
    jobs: list[RenderJob] = []
    call = settings.shared
    for base_id in sorted(by_base):
        for index in range(seeds_per_pair):
            seed = render_seed(project_seed, base_id, index)
            group = stable_id("render_group", base_id, generator["model"], index)
            key = pairing_key(generator, seed, call)
            jobs.append(RenderJob(render_id("base", base_id, key), base_id, "base", base_texts[base_id], seed, group))
            for variant in sorted(by_base[base_id], key=lambda v: v.id):
                rid = render_id("variant", variant.id, key)
                jobs.append(RenderJob(rid, variant.id, "variant", variant.text, seed, group))
    return jobs


def select_jobs(
    jobs: Sequence[RenderJob], *, done: set[str], shard: tuple[int, int] = (0, 1), limit: int | None = None
) -> list[RenderJob]:
    """Jobs not done yet that belong to this shard, at most `limit` of them, in plan order."""
    index, count = shard
    chosen = [j for j in jobs if j.render_id not in done and (count == 1 or shard_of(j.group, count) == index)]
    return chosen if limit is None else chosen[:limit]
