"""Pairs: stored records linking a variant's render and its base prompt's render under one pairing key.

The pairing key (`curation.core.records.pairing_key`) covers everything but the prompt that can change the
pixels: model and resolved revision, pipeline and scheduler class, dtype, batch mode, call arguments and seed.
A pair record is written when its second render lands, in the same transaction (`link_pairs`), and re-statused
when its generator identity is superseded or a prompt is blocked (`restatus`). One rule decides a pair's status:

- `blocked` when its base prompt or its variant is no longer ok (blocked by the safety screen);
- else, among the pairs of its variant and model, `current` when its generator key (the pairing key without the
  seed) is the one that stands, and `superseded` when it is of another one. The one that stands is the
  configuration's (when generate plans it), else the one whose pairs landed last.

Score, filter, judge, rounds, export, audit, report and status read the current pairs with indexed queries.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

from curation.core.records import pair_id, pair_record, render_id
from curation.core.store import Record, Store

__all__ = ["Pair", "backfill_pairs", "iter_pairs", "link_pairs", "pair_id", "put_renders", "restatus"]

FETCH_BATCH = 500


@dataclass(frozen=True)
class Pair:
    """A stored pair with the records it links (its variant, base prompt and both renders)."""

    record: Record
    variant: Record
    base: Record
    base_render: Record
    anti_render: Record

    @property
    def id(self) -> str:
        return str(self.record["id"])

    @property
    def generator(self) -> str:
        return str(self.record["model"])

    @property
    def seed(self) -> int:
        return int(self.record["seed"])


def _chunks(items: Iterable[str], size: int = FETCH_BATCH) -> Iterator[list[str]]:
    remaining = iter(items)
    while chunk := list(islice(remaining, size)):
        yield chunk


def _by_id(store: Store, kind: str, ids: Iterable[str]) -> dict[str, Record]:
    found: dict[str, Record] = {}
    for chunk in _chunks(sorted(set(ids))):
        found.update((r["id"], r) for r in store.iter(kind, id=chunk))
    return found


def iter_pairs(
    store: Store, *, variant_ids: Collection[str] | None = None, status: str | Sequence[str] = "current"
) -> Iterator[Pair]:
    """The stored pairs of `status` (current by default), in pair-id order, each with its linked records."""
    filters: dict[str, Any] = {"status": status if isinstance(status, str) else list(status)}
    if variant_ids is not None:
        filters["variant_id"] = sorted(variant_ids)
    records = store.iter("pair", **filters)
    while chunk := list(islice(records, FETCH_BATCH)):
        renders = _by_id(store, "render", [r[side] for r in chunk for side in ("base_render_id", "anti_render_id")])
        variants = _by_id(store, "variant", [r["variant_id"] for r in chunk])
        bases = _by_id(store, "base_prompt", [r["base_id"] for r in chunk])
        for record in chunk:
            yield Pair(
                record,
                variants[record["variant_id"]],
                bases[record["base_id"]],
                renders[record["base_render_id"]],
                renders[record["anti_render_id"]],
            )


def _standing(group: Sequence[Record], preferred: str | None) -> str:
    """The generator key that stands for one variant and model: the preferred one, else the one that landed last."""
    if preferred is not None:
        return preferred
    return str(max(group, key=lambda p: (p["created_at"], p["generator_key"]))["generator_key"])


def settle(pairs: Iterable[Record], blocked_variants: Collection[str], standing: Mapping[str, str]) -> list[Record]:
    """Every pair with the status the module's rule gives it (pure); `standing` maps a model to the generator key
    that stands for it, where that is known."""
    groups: dict[tuple[str, str], list[Record]] = {}
    for pair in pairs:
        groups.setdefault((pair["variant_id"], pair["model"]), []).append(pair)
    settled = []
    for (variant, model), group in sorted(groups.items()):
        key = _standing(group, standing.get(model))
        for pair in group:
            status = (
                "blocked"
                if variant in blocked_variants
                else ("current" if pair["generator_key"] == key else "superseded")
            )
            settled.append({**pair, "status": status})
    return settled


def _blocked_variants(store: Store, variant_ids: Collection[str]) -> set[str]:
    """Variants that are not ok, or whose base prompt is not ok."""
    variants = _by_id(store, "variant", variant_ids)
    bases = _by_id(store, "base_prompt", [v["base_id"] for v in variants.values()])
    return {
        vid
        for vid in variant_ids
        if (v := variants.get(vid)) is None or v["status"] != "ok" or bases.get(v["base_id"], {}).get("status") != "ok"
    }


def _pairs_of(store: Store, variant_ids: Collection[str]) -> dict[str, Record]:
    """The stored pairs of these variants, by id."""
    return {p["id"]: p for chunk in _chunks(sorted(variant_ids)) for p in store.iter("pair", variant_id=chunk)}


def _resettled(
    store: Store, stored: Mapping[str, Record], standing: Mapping[str, str], new: Mapping[str, Record] | None = None
) -> list[Record]:
    """The pairs (`stored`, and `new` ones) whose record the module's rule changes: new ones, and stored ones
    whose status moves."""
    candidates = {**stored, **(new or {})}
    blocked = _blocked_variants(store, {p["variant_id"] for p in candidates.values()})
    return [p for p in settle(candidates.values(), blocked, standing) if stored.get(p["id"]) != p]


def restatus(store: Store, variant_ids: Collection[str], standing: Mapping[str, str] | None = None) -> list[Record]:
    """The pairs of these variants whose status must change (blocked prompts, superseded generator keys)."""
    return _resettled(store, _pairs_of(store, variant_ids), standing or {})


def restatus_model(store: Store, model: str, key: str) -> list[Record]:
    """The pairs of `model` whose status must change now that generator key `key` stands for it."""
    return _resettled(store, {p["id"]: p for p in store.iter("pair", model=model)}, {model: key})


def _partners(store: Store, render: Record) -> Iterator[tuple[Record, Record, str]]:
    """(base render, variant render, base prompt id) for every ok pair `render` completes."""
    key = render["pairing_key"]
    if render["prompt_kind"] == "variant":
        variant = store.get("variant", render["prompt_id"])
        if variant is None:
            return
        base = store.get("render", render_id("base", variant["base_id"], key))
        if base is not None and base["status"] == "ok":
            yield base, render, variant["base_id"]
        return
    variant_ids = sorted(store.ids("variant", base_id=render["prompt_id"]))
    anti = _by_id(store, "render", [render_id("variant", vid, key) for vid in variant_ids])
    for record in anti.values():
        if record["status"] == "ok":
            yield render, record, render["prompt_id"]


def link_pairs(store: Store, renders: Iterable[Record]) -> list[Record]:
    """The pair records `renders` complete (their partners read from the store, where they must already be) and
    every pair of the same variants whose status changes with them: the new pairs' generator key stands."""
    new: dict[str, Record] = {}
    for render in renders:
        if render["status"] != "ok" or "pairing_key" not in render:
            continue
        for base, anti, base_id in _partners(store, render):
            pair = pair_record(base, anti, base_id)
            new[pair["id"]] = pair
    if not new:
        return []
    stored = _pairs_of(store, {p["variant_id"] for p in new.values()})
    # A pair stored before keeps when it was first written; a new one stands for its model.
    for pid, pair in new.items():
        if pid in stored:
            pair["created_at"] = stored[pid]["created_at"]
    return _resettled(store, stored, {p["model"]: p["generator_key"] for p in new.values()}, new)


def backfill_pairs(store: Store) -> None:
    """A pair record for every complete pair of renders already stored (migration 5), in the order the renders
    were written, so the generator key whose pairs landed last stands."""
    for render in list(store.iter("render", status="ok", written_order=True)):
        if render["prompt_kind"] == "variant":
            store.put("pair", link_pairs(store, [render]), on_conflict="replace")


def put_renders(store: Store, renders: Sequence[Record]) -> int:
    """Store renders and the pairs they complete in one transaction (for writers outside a stage: imports,
    tests, benchmarks); returns the rows added or changed."""
    with store.transaction():
        written = store.put("render", renders, on_conflict="replace")
        return written + store.put("pair", link_pairs(store, renders), on_conflict="replace")
