"""Planning a pass: reproducible, balanced, honouring incompatible pairs and the dimension range."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from curation.core.errors import InputError
from curation.core.ids import stable_id
from curation.core.taxonomy import load_taxonomy
from curation.rewrite.plan import PassSettings, coverage, plan_pass, planned_ids

TAXONOMY = load_taxonomy("builtin:widespec-core")
SETTINGS = PassSettings(
    seed=7,
    variants_per_prompt=2,
    dimensions_per_variant=(2, 4),
    intensities=("mild", "moderate", "extreme"),
    rewriter="lexicon",
    model=None,
)
BASES = [stable_id("base_prompt", i) for i in range(300)]


def test_same_inputs_same_plan() -> None:
    first = plan_pass(BASES, SETTINGS, TAXONOMY)
    assert first == plan_pass(list(BASES), SETTINGS, TAXONOMY)
    other_seed = plan_pass(BASES, replace(SETTINGS, seed=8), TAXONOMY)
    assert [v.dimensions for v in first] != [v.dimensions for v in other_seed]
    assert {v.id for v in first}.isdisjoint(v.id for v in other_seed)


def test_prompts_added_later_leave_earlier_plans_alone() -> None:
    early = plan_pass(BASES[:100], SETTINGS, TAXONOMY)
    assert plan_pass(BASES, SETTINGS, TAXONOMY)[:200] == early


def test_stored_variants_keep_their_dimensions_and_count_toward_coverage() -> None:
    plan = plan_pass(BASES[:50], SETTINGS, TAXONOMY)
    # as a pass killed midway leaves it: some slots stored, in any order
    stored = {v.id: (v.dimensions, v.intensity) for v in plan[::3]}
    assert plan_pass(BASES[:50], SETTINGS, TAXONOMY, stored) == plan
    # a stored slot that differs from today's plan (say, made under an older plan) is kept as it was
    odd = {plan[0].id: (("glitch_art", "decay"), "mild")}
    replanned = plan_pass(BASES[:50], SETTINGS, TAXONOMY, odd)
    assert replanned[0].dimensions == ("glitch_art", "decay") and replanned[0].intensity == "mild"
    assert [v.id for v in replanned] == [v.id for v in plan]


def test_every_slot_once_with_ids_from_base_index_and_pass() -> None:
    plan = plan_pass(BASES, SETTINGS, TAXONOMY)
    assert len(plan) == len(BASES) * 2 == len({v.id for v in plan})
    assert [v.id for v in plan] == planned_ids(BASES, 2, SETTINGS.fingerprint(TAXONOMY))
    # raising variants_per_prompt keeps the ids of the variants already planned
    more = plan_pass(BASES, replace(SETTINGS, variants_per_prompt=3), TAXONOMY)
    assert {v.id for v in plan} < {v.id for v in more}


def test_range_and_incompatible_pairs_are_honoured() -> None:
    plan = plan_pass(BASES, SETTINGS, TAXONOMY)
    assert {len(v.dimensions) for v in plan} == {2, 3, 4}
    for variant in plan:
        assert len(set(variant.dimensions)) == len(variant.dimensions)
        for a in variant.dimensions:
            for b in variant.dimensions:
                assert a == b or TAXONOMY.compatible(a, b), (variant, a, b)


def test_coverage_is_balanced() -> None:
    plan = plan_pass(BASES, SETTINGS, TAXONOMY)
    dimensions, intensities, _ = coverage(plan)
    assert set(dimensions) == set(TAXONOMY.dimensions)
    assert max(dimensions.values()) - min(dimensions.values()) <= 2
    assert max(intensities.values()) - min(intensities.values()) <= 1
    # far more even than independent uniform sampling would be
    pairs = Counter(frozenset(p) for v in plan for p in zip(v.dimensions, v.dimensions[1:], strict=False))
    assert len(pairs) > len(plan) * 0.8


def test_single_intensity_and_fixed_size() -> None:
    plan = plan_pass(BASES[:20], replace(SETTINGS, intensities=("extreme",), dimensions_per_variant=(3, 3)), TAXONOMY)
    assert {v.intensity for v in plan} == {"extreme"} and {len(v.dimensions) for v in plan} == {3}


def test_impossible_ranges_are_input_errors() -> None:
    with pytest.raises(InputError, match="minimum 4 is above maximum 2"):
        plan_pass(BASES, replace(SETTINGS, dimensions_per_variant=(4, 2)), TAXONOMY)
    with pytest.raises(InputError, match="above the taxonomy's 58 dimensions"):
        plan_pass(BASES, replace(SETTINGS, dimensions_per_variant=(2, 99)), TAXONOMY)
