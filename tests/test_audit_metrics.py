"""The audit's figures against hand-computed cases."""

from __future__ import annotations

import pytest

from curation.audit.metrics import Scored, figures, grouped, model_audit
from curation.audit.population import AuditUnit, ImageRef
from curation.audit.specs import BUILTIN_SPECS, parse_spec, resolve_names
from curation.audit.summary import is_circular
from curation.core.errors import InputError


def pair(aa: float, ba: float, ab: float = 0.0, bb: float = 1.0, **groups: list[str]) -> Scored:
    return Scored(aa, ba, ab, bb, groups)


@pytest.mark.slow
def test_accuracy_leaves_ties_out_and_f1_follows_from_it() -> None:
    # deltas under the anti prompt: +0.2, +0.1, -0.3, 0 (tie), +0.05
    items = [pair(0.5, 0.3), pair(0.4, 0.3), pair(0.1, 0.4), pair(0.2, 0.2), pair(0.35, 0.3)]
    f = figures(items, seed=0, rounds=200)
    assert f.ties == 1 and f.pairs == 5
    assert f.accuracy is not None and f.accuracy.value == pytest.approx(3 / 4)
    assert f.f1 is not None and f.f1.value == pytest.approx(2 * 0.75 / 1.75)  # every true answer is "anti"
    assert f.mean_delta is not None and f.mean_delta.value == pytest.approx((0.2 + 0.1 - 0.3 + 0 + 0.05) / 5)
    # Pooled AUROC: anti images {0.5, 0.4, 0.1, 0.2, 0.35} against base images {0.3, 0.3, 0.4, 0.2, 0.3}.
    anti, base = [0.5, 0.4, 0.1, 0.2, 0.35], [0.3, 0.3, 0.4, 0.2, 0.3]
    wins = sum((a > b) + 0.5 * (a == b) for a in anti for b in base)
    assert f.auroc is not None and f.auroc.value == pytest.approx(wins / 25)
    assert f.accuracy.low is not None and f.accuracy.high is not None
    assert f.accuracy.low <= f.accuracy.value <= f.accuracy.high
    assert f.f1.low == pytest.approx(2 * f.accuracy.low / (1 + f.accuracy.low))


def test_the_control_counts_the_anti_image_winning_under_the_base_prompt() -> None:
    items = [pair(1, 0, ab=0.9, bb=0.2), pair(1, 0, ab=0.1, bb=0.2), pair(1, 0, ab=0.3, bb=0.3), pair(1, 0, ab=0, bb=1)]
    f = figures(items, seed=0, rounds=100)
    assert f.control_ties == 1
    assert f.wrong_image_wins is not None and f.wrong_image_wins.value == pytest.approx(1 / 3)


def test_all_ties_and_no_pairs_give_no_figures_never_zero() -> None:
    f = figures([pair(0.3, 0.3), pair(0.2, 0.2)], seed=0, rounds=100)
    assert f.accuracy is None and f.f1 is None and f.ties == 2
    assert f.auroc is not None  # both classes are there, every comparison a tie or a loss
    empty = figures([], seed=0, rounds=100)
    assert empty.accuracy is None and empty.auroc is None and empty.mean_delta is None


@pytest.mark.slow
def test_intervals_are_seeded_and_narrow_with_more_pairs() -> None:
    few = [pair(1, 0) if i % 4 else pair(0, 1) for i in range(20)]
    many = few * 20
    a, b = figures(few, seed=3, rounds=300), figures(few, seed=3, rounds=300)
    assert a == b
    wide, narrow = a.accuracy, figures(many, seed=3, rounds=300).accuracy
    assert wide is not None and narrow is not None and wide.low is not None and narrow.low is not None
    assert wide.high is not None and narrow.high is not None
    assert narrow.high - narrow.low < (wide.high - wide.low) / 2


def test_breakdowns_count_a_pair_in_each_of_its_groups() -> None:
    items = [
        pair(1, 0, dimension=["blurry", "noisy"], generator=["sd"]),
        pair(0, 1, dimension=["noisy"], generator=["sd"]),
        pair(1, 0, dimension=["blurry"], generator=["flux"]),
    ]
    by = grouped(items, "dimension")
    assert {k: len(v) for k, v in by.items()} == {"blurry": 2, "noisy": 2}
    audit = model_audit("m", "clip:x", "workspace", items, failed=1, truncated=0, circular=False, seed=0, rounds=100)
    noisy = audit.breakdowns["dimension"]["noisy"]
    assert noisy.accuracy is not None and noisy.accuracy.value == 0.5
    assert noisy.auroc is not None and noisy.auroc.low is None  # breakdown AUROC: a point figure
    assert audit.breakdowns["generator"]["flux"].pairs == 1 and audit.failed == 1


def unit(scorers: tuple[str, ...]) -> AuditUnit:
    ref = ImageRef("x.png")
    return AuditUnit("0" * 16, "a", "b", ref, ref, "1" * 16, "sd", ("blurry",), "mild", ("clip",), scorers)


def test_auditing_the_filter_scorer_is_circular() -> None:
    units = [unit(("ViT-L-14/openai",)), unit(())]
    assert is_circular("clip:ViT-L-14/openai", units)
    assert not is_circular("hps:ViT-H-14#HPS_v2.1_compressed.pt@0123456789ab", units)
    assert not is_circular("clip:ViT-L-14/openai", [unit(())])


def test_specs_parse_and_name_what_is_wrong() -> None:
    for name, spec in BUILTIN_SPECS.items():
        assert parse_spec(name, spec, "x").text == spec
    hps = parse_spec("h", BUILTIN_SPECS["hpsv2.1"], "x")
    assert (hps.kind, hps.source, hps.extra) == (
        "hps",
        "ViT-H-14/laion2b_s32b_b79k",
        "hf:xswu/HPSv2/HPS_v2.1_compressed.pt",
    )
    configured = resolve_names("mine,clip-l,mine", {"mine": "clip:local-dir:weights/clip"})
    assert [(s.name, s.source) for s in configured] == [
        ("mine", "local-dir:weights/clip"),
        ("clip-l", "ViT-L-14/openai"),
    ]
    with pytest.raises(InputError, match=r"audit.models.bad = 'hps:ViT-H-14': hps needs the HPS checkpoint"):
        resolve_names("bad", {"bad": "hps:ViT-H-14"})
    with pytest.raises(InputError, match="KIND one of clip, hps"):
        resolve_names("nope:thing", {})
    with pytest.raises(InputError, match="name at least one reward model"):
        resolve_names(" , ", {})


@pytest.mark.slow
def test_the_auroc_interval_holds_its_figure_when_each_anti_image_beats_its_own_base() -> None:
    # The circular case: within every pair the anti image wins, across pairs scores spread widely.
    items = [pair(0.01 * i + 0.005, 0.01 * i) for i in range(60)]
    f = figures(items, seed=1, rounds=400)
    assert f.accuracy is not None and f.accuracy.value == 1.0
    assert f.auroc is not None and f.auroc.low is not None and f.auroc.high is not None
    assert f.auroc.low <= f.auroc.value <= f.auroc.high
    assert 0.45 < f.auroc.value < 0.6
