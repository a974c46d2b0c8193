"""Which pairs a round asks about (pure): re-queued unresolved pairs, the CLIP review band, accepted pairs, a
calibration sample of rejected pairs, and gold tasks with known answers, all in a seeded order."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

OUTCOME_ORDER = ("review", "accept")


@dataclass(frozen=True)
class RoundPlan:
    """The tasks of one round, in the order they are pushed: (pair id, gold label or None)."""

    round: int
    tasks: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def regular(self) -> list[str]:
        return [pair for pair, gold in self.tasks if gold is None]

    @property
    def gold(self) -> dict[str, str]:
        return {pair: gold for pair, gold in self.tasks if gold is not None}


def plan_round(
    round_number: int,
    outcomes: Mapping[str, str],
    *,
    requeued: list[str],
    done: set[str],
    gold_pool: Mapping[str, str],
    pairs_per_round: int,
    rejected_rate: float,
    gold_rate: float,
    seed: int,
) -> RoundPlan:
    """Choose a round's pairs.

    `outcomes` maps each candidate pair to its CLIP outcome (accept / reject / review); `requeued` are pairs left
    unresolved by the previous round (asked first); `done` are pairs already asked in an earlier round and not
    re-queued; `gold_pool` maps pairs with a trusted earlier verdict to that label.
    """
    rng = random.Random(f"widespec-round:{seed}:{round_number}")
    rejected_quota = round(pairs_per_round * rejected_rate)
    quota = pairs_per_round - rejected_quota
    chosen: list[str] = sorted(set(requeued))[:quota]
    taken = set(chosen) | done
    for outcome in OUTCOME_ORDER:
        group = sorted(p for p, o in outcomes.items() if o == outcome and p not in taken)
        rng.shuffle(group)
        chosen += group[: quota - len(chosen)]
    taken |= set(chosen)
    rejected = sorted(p for p, o in outcomes.items() if o == "reject" and p not in taken)
    chosen += rng.sample(rejected, min(rejected_quota, len(rejected)))
    gold_candidates = sorted(p for p in gold_pool if p not in set(chosen))
    n_gold = min(round(len(chosen) * gold_rate), len(gold_candidates))
    gold = rng.sample(gold_candidates, n_gold)
    tasks: list[tuple[str, str | None]] = [(p, None) for p in chosen] + [(p, gold_pool[p]) for p in gold]
    rng.shuffle(tasks)
    return RoundPlan(round_number, tasks)
