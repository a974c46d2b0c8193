"""Planning a rewrite pass: which dimensions and intensity each variant gets (pure, seeded, reproducible).

The plan walks base prompts in the order they arrived and, for each planned variant, picks the least-used
compatible dimensions and the least-used intensity so far, breaking ties with a random generator seeded from
the pass settings and the slot. Same inputs and seed give the same plan; coverage stays balanced. Each slot
depends only on the slots before it, so prompts imported later never change the plan of earlier ones, and
variants already stored keep the dimensions they were made with.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from curation.core.errors import InputError
from curation.core.ids import content_hash
from curation.core.records import variant_id
from curation.core.taxonomy import Taxonomy


@dataclass(frozen=True)
class PassSettings:
    """Everything that decides a pass's plan and the identity of its variants."""

    seed: int
    variants_per_prompt: int
    dimensions_per_variant: tuple[int, int]
    intensities: tuple[str, ...]
    rewriter: str
    model: str | None

    def fingerprint(self, taxonomy: Taxonomy) -> str:
        """Identifies the pass: variants of the same base prompt and index share an id only within one pass.

        variants_per_prompt is left out so that raising it adds variants without replacing existing ones.
        """
        return content_hash(
            {
                "taxonomy": taxonomy.provenance(),
                "seed": self.seed,
                "dimensions_per_variant": list(self.dimensions_per_variant),
                "intensities": sorted(self.intensities),
                "rewriter": self.rewriter,
                "model": self.model,
            }
        )[:16]


@dataclass(frozen=True)
class PlannedVariant:
    id: str
    base_id: str
    index: int
    dimensions: tuple[str, ...]
    intensity: str


def planned_ids(base_ids: Iterable[str], variants_per_prompt: int, fingerprint: str) -> list[str]:
    """The ids a pass will produce, without sampling anything (used to count pending work)."""
    return [variant_id(b, i, fingerprint) for b in base_ids for i in range(variants_per_prompt)]


def check_settings(settings: PassSettings, taxonomy: Taxonomy) -> None:
    low, high = settings.dimensions_per_variant
    if low > high:
        raise InputError(f"rewriter.dimensions_per_variant: minimum {low} is above maximum {high}")
    if high > len(taxonomy.dimensions):
        raise InputError(
            f"rewriter.dimensions_per_variant: maximum {high} is above the taxonomy's {len(taxonomy.dimensions)} dimensions"
        )


@cache
def _swaps(length: int) -> tuple[tuple[int, int, int], ...]:
    """Fisher-Yates over `length` items: each position from the last down, how many to pick from, and their bits."""
    return tuple((i, i + 1, (i + 1).bit_length()) for i in range(length - 1, 0, -1))


def _shuffle(items: list[str], rng: random.Random) -> None:
    """`rng.shuffle(items)` spelled out (CPython's own algorithm: `_randbelow` by rejection on getrandbits): the same
    draws from `rng` and the same order, so the same plans, at a third of the cost (shuffling is most of planning
    a large pass)."""
    getrandbits = rng.getrandbits
    for i, n, k in _swaps(len(items)):
        j = getrandbits(k)
        while j >= n:
            j = getrandbits(k)
        items[i], items[j] = items[j], items[i]


def _pick_dimensions(
    count: int, order: Sequence[str], usage: Counter[str], taxonomy: Taxonomy, rng: random.Random
) -> tuple[str, ...]:
    """Up to `count` pairwise compatible dimensions, least used first, ties broken by `rng`."""
    chosen: list[str] = []
    candidates = list(order)
    _shuffle(candidates, rng)
    candidates.sort(key=usage.__getitem__)  # stable: shuffled order breaks ties
    for dimension in candidates:
        if len(chosen) == count:
            break
        if all(taxonomy.compatible(dimension, other) for other in chosen):
            chosen.append(dimension)
    return tuple(chosen)


def plan_pass(
    base_ids: Sequence[str],
    settings: PassSettings,
    taxonomy: Taxonomy,
    stored: Mapping[str, tuple[Sequence[str], str]] | None = None,
    *,
    ids: Sequence[str] | None = None,
) -> list[PlannedVariant]:
    """Every planned variant of the pass, in the given base prompt order (arrival order), then index.

    `stored` maps variant ids already written to the (dimensions, intensity) they were made with; those
    slots keep them and count toward coverage. `ids`: the pass's `planned_ids` when the caller has them.
    """
    stored = stored or {}
    check_settings(settings, taxonomy)
    fingerprint = settings.fingerprint(taxonomy)
    if ids is None:
        ids = planned_ids(base_ids, settings.variants_per_prompt, fingerprint)
    elif len(ids) != len(base_ids) * settings.variants_per_prompt:
        raise ValueError("ids must be the pass's planned_ids of base_ids")
    slot_ids = iter(ids)
    order = list(taxonomy.dimensions)
    dimension_usage: Counter[str] = Counter()
    intensity_usage: Counter[str] = Counter()
    low, high = settings.dimensions_per_variant
    plan = []
    for base_id in base_ids:
        for index in range(settings.variants_per_prompt):
            slot_id = next(slot_ids)
            if slot_id in stored:
                dimensions, intensity = tuple(stored[slot_id][0]), stored[slot_id][1]
                dimension_usage.update(dimensions)
                intensity_usage[intensity] += 1
                plan.append(PlannedVariant(slot_id, base_id, index, dimensions, intensity))
                continue
            rng = random.Random(f"{fingerprint}:{base_id}:{index}")
            dimensions = _pick_dimensions(rng.randint(low, high), order, dimension_usage, taxonomy, rng)
            if len(dimensions) < low:
                raise InputError(
                    f"rewriter.dimensions_per_variant: the taxonomy's incompatible pairs leave fewer than {low} "
                    "dimensions that can be combined"
                )
            intensities = list(settings.intensities)
            _shuffle(intensities, rng)
            intensity = min(intensities, key=lambda i: intensity_usage[i])
            dimension_usage.update(dimensions)
            intensity_usage[intensity] += 1
            plan.append(PlannedVariant(slot_id, base_id, index, dimensions, intensity))
    return plan


def coverage(plan: Iterable[PlannedVariant]) -> tuple[Counter[str], Counter[str], Counter[int]]:
    """How often each dimension, each intensity and each dimension count occurs in a plan."""
    dimensions: Counter[str] = Counter()
    intensities: Counter[str] = Counter()
    sizes: Counter[int] = Counter()
    for variant in plan:
        dimensions.update(variant.dimensions)
        intensities[variant.intensity] += 1
        sizes[len(variant.dimensions)] += 1
    return dimensions, intensities, sizes
