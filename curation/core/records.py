"""One place that builds each record kind, used by the stages, the tests and the benchmarks alike.

Each constructor derives what follows from its inputs (ids, status from the outcome), so no caller can store a
record whose id or status disagrees with its content. Metric names live here too: the score stage writes them,
the filter, export and report read them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from curation.core.ids import content_hash, normalise_text, stable_id
from curation.core.store import Record, utc_now

# The provenance of a variant written by the embedded lexicon rewriter (no model, no template, no parameters).
LEXICON_REWRITER: dict[str, Any] = {"kind": "lexicon", "model": None, "template_hash": None, "params": {}}

PAIR_METRICS = ("fidelity", "content_kept", "direction")
TEXT_METRICS = ("text_distance", "text_sibling_cosine")
PROBE_PREFIX = "probe:"


def score_record(
    subject_id: str,
    metric: str,
    scorer: str,
    value: float | None,
    error: str | None = None,
    *,
    text_tokens: int | None = None,
    context: int | None = None,
    created_at: str | None = None,
) -> Record:
    """A score of `subject_id` (a pair or a variant); no value means a failed score with its error.

    A value that is not a finite number (NaN or inf, as an fp16 overflow gives) is a failed score too: it is
    never stored as a number, so no decision can be made from it. A metric read from a prompt records that text's
    token count and whether it was longer than the scorer's `context` (then only its first part was scored).
    """
    if value is not None and not math.isfinite(value):
        value, error = None, f"{metric} is {value}, not a finite number (an embedding overflowed or was empty)"
    return {
        "id": stable_id("score", subject_id, metric, scorer),
        "subject_id": subject_id,
        "metric": metric,
        "value": None if value is None else round(float(value), 6),
        "scorer": scorer,
        "status": "ok" if value is not None else "failed",
        "error": error if value is None else None,
        "text_tokens": text_tokens,
        "text_truncated": None if text_tokens is None or context is None else text_tokens > context,
        "created_at": created_at or utc_now(),
    }


def decision_record(
    subject_id: str,
    stage: str,
    outcome: str,
    reasons: list[str],
    thresholds: dict[str, Any],
    *,
    created_at: str | None = None,
) -> Record:
    """A filter decision about a pair (`clip`) or a variant (`text`); one per subject and stage."""
    return {
        "id": stable_id("decision", subject_id, stage),
        "subject_id": subject_id,
        "stage": stage,
        "outcome": outcome,
        "reasons": reasons,
        "thresholds": thresholds,
        "created_at": created_at or utc_now(),
    }


def base_prompt_id(text: str) -> str:
    """A base prompt's id: its normalised text, whatever file it came from."""
    return stable_id("base_prompt", normalise_text(text))


def base_prompt_record(
    text: str,
    source: str,
    source_row: int | None,
    *,
    category: str | None = None,
    created_at: str | None = None,
) -> Record:
    """An imported base prompt (stored normalised; its id is the normalised text)."""
    text = normalise_text(text)
    return {
        "id": base_prompt_id(text),
        "text": text,
        "source": source,
        "source_row": source_row,
        "category": category,
        "status": "ok",
        "block_rule": None,
        "created_at": created_at or utc_now(),
    }


def blocked_base_prompt(record: Mapping[str, Any], rule: str) -> Record:
    """`record` as the safety screen stores it: blocked by `rule`, never rendered."""
    return {**record, "status": "blocked", "block_rule": rule}


def unblocked_base_prompt(record: Mapping[str, Any]) -> Record:
    """A blocked base prompt that the safety screen now passes, as it was before it was blocked."""
    return {**record, "status": "ok", "block_rule": None}


def blocked_variant(record: Mapping[str, Any], rule: str) -> Record:
    """A stored variant that the safety screen now blocks (rule or endpoint): no text, never rendered again."""
    return {
        **record,
        "status": "blocked",
        "text": None,
        "error": f"the rewrite broke safety rule {rule}",
        "block_rule": rule,
    }


def variant_id(base_id: str, index: int, fingerprint: str) -> str:
    """A planned variant's id: its base prompt, its slot and the fingerprint of the pass that plans it."""
    return stable_id("variant", base_id, index, fingerprint)


def variant_record(
    record_id: str,
    base_id: str,
    index: int,
    dimensions: Sequence[str],
    intensity: str,
    text: str | None,
    *,
    rewriter: Mapping[str, Any],
    taxonomy: Mapping[str, Any],
    status: str = "ok",
    error: str | None = None,
    block_rule: str | None = None,
    usage: Mapping[str, Any] | None = None,
    created_at: str | None = None,
) -> Record:
    """A variant of a base prompt; only an ok variant keeps its text, only a blocked one its rule."""
    if status == "ok" and not text:
        raise ValueError(f"variant {record_id}: an ok variant needs its text")
    return {
        "id": record_id,
        "base_id": base_id,
        "index": index,
        "dimensions": list(dimensions),
        "intensity": intensity,
        "text": text if status == "ok" else None,
        "status": status,
        "error": None if status == "ok" else error,
        "block_rule": block_rule if status == "blocked" else None,
        "rewriter": dict(rewriter),
        "taxonomy": dict(taxonomy),
        "usage": dict(usage) if usage is not None else None,
        "created_at": created_at or utc_now(),
    }


# The generator fields that can change a render's pixels; with the seed and the call settings they are its
# pairing key. The license, preset name and random-weights flag describe the model, not the image. A CPU render
# also carries `cpu_threads` (its sums split over that many threads); a GPU render carries none, so its key stays
# what it was before the field existed.
PIXEL_FIELDS = ("model", "revision", "pipeline", "scheduler", "dtype", "batch_mode", "batch_size", "call_kwargs")


def _pixel_identity(generator: Mapping[str, Any], settings: tuple[int, float, int, int]) -> dict[str, Any]:
    steps, guidance, width, height = settings
    identity = {field: generator.get(field) for field in PIXEL_FIELDS}
    if generator.get("cpu_threads") is not None:  # a CPU render's pixels depend on its thread count
        identity["cpu_threads"] = generator["cpu_threads"]
    return identity | {"steps": steps, "guidance": float(guidance), "width": width, "height": height}


def pairing_key(generator: Mapping[str, Any], seed: int, settings: tuple[int, float, int, int]) -> str:
    """What a render's pixels depend on besides its prompt: model and resolved revision, pipeline and scheduler
    class, dtype, batch mode, every call argument, the seed and on the CPU the thread count. Two renders pair only
    when their keys are equal."""
    return content_hash(_pixel_identity(generator, settings) | {"seed": seed})[:16]


def generator_key(generator: Mapping[str, Any], settings: tuple[int, float, int, int]) -> str:
    """The pairing key without the seed: the generator identity a configuration stands for. A variant's pairs of
    one model under another generator key are superseded (history, never released)."""
    return content_hash(_pixel_identity(generator, settings))[:16]


def render_settings(render: Mapping[str, Any]) -> tuple[int, float, int, int]:
    """A render record's call settings (steps, guidance, width, height)."""
    return (int(render["steps"]), float(render["guidance"]), int(render["width"]), int(render["height"]))


PairStatus = Literal["current", "superseded", "blocked"]


def pair_id(variant_id: str, key: str) -> str:
    """The id of the pair of `variant_id` rendered with pairing key `key`."""
    return stable_id("pair", variant_id, key)


def pair_record(
    base_render: Mapping[str, Any],
    anti_render: Mapping[str, Any],
    base_id: str,
    *,
    status: PairStatus = "current",
    created_at: str | None = None,
) -> Record:
    """The pair of a variant's render and its base prompt's render under one pairing key (`kind` t2i)."""
    key = anti_render["pairing_key"]
    if base_render["pairing_key"] != key or base_render["prompt_id"] != base_id:
        raise ValueError(f"render {base_render['id']} is not the base render of {anti_render['id']}")
    return {
        "id": pair_id(anti_render["prompt_id"], key),
        "kind": "t2i",
        "variant_id": anti_render["prompt_id"],
        "base_id": base_id,
        "base_render_id": base_render["id"],
        "anti_render_id": anti_render["id"],
        "pairing_key": key,
        "model": anti_render["generator"]["model"],
        "generator_key": generator_key(anti_render["generator"], render_settings(anti_render)),
        "seed": int(anti_render["seed"]),
        "status": status,
        "created_at": created_at or utc_now(),
    }


def render_id(prompt_kind: str, prompt_id: str, key: str) -> str:
    """A render's id: its prompt and its pairing key, so changing anything that changes pixels renders anew."""
    return stable_id("render", prompt_kind, prompt_id, key)


def render_record(
    prompt_id: str,
    prompt_kind: str,
    *,
    generator: Mapping[str, Any],
    seed: int,
    settings: tuple[int, float, int, int],
    image_sha256: str | None,
    seconds: float,
    error: str | None = None,
    runtime: Mapping[str, Any] | None = None,
    created_at: str | None = None,
) -> Record:
    """One rendered image (`settings` = steps, guidance, width, height); no image means a failure row with its
    error, never a blank image. Its id and pairing key follow from everything that can change its pixels."""
    key = pairing_key(generator, seed, settings)
    record_id = render_id(prompt_kind, prompt_id, key)
    if image_sha256 is None and not error:
        raise ValueError(f"render {record_id}: a render without an image must say why it failed")
    steps, guidance, width, height = settings
    return {
        "id": record_id,
        "prompt_id": prompt_id,
        "prompt_kind": prompt_kind,
        "generator": dict(generator),
        "pairing_key": key,
        "seed": seed,
        "steps": steps,
        "guidance": float(guidance),
        "width": width,
        "height": height,
        "image_sha256": image_sha256,
        "seconds": round(seconds, 4),
        "status": "ok" if image_sha256 is not None else "failed",
        "error": None if image_sha256 is not None else error,
        "created_at": created_at or utc_now(),
    } | ({"runtime": dict(runtime)} if runtime is not None else {})


def annotation_record(
    subject_id: str,
    round_number: int,
    annotator: str,
    answer: Mapping[str, Any],
    *,
    task_id: int | None,
    gold: bool,
    ab_order: str,
    created_at: str,
) -> Record:
    """One annotator's answer about one pair in one round (`answer`: choice, qualities, subject_kept, flags,
    comment); a later answer of the same annotator replaces it."""
    return {
        "id": stable_id("annotation", subject_id, round_number, annotator),
        "round": round_number,
        "subject_id": subject_id,
        "annotator": annotator,
        "task_id": task_id,
        "gold": gold,
        "ab_order": ab_order,
        **answer,
        "created_at": created_at,
    }


def verdict_record(
    subject_id: str, round_number: int, resolved: Mapping[str, Any], *, created_at: str | None = None
) -> Record:
    """The resolved human verdict about one pair in one round (`resolved`: label, votes, agreement, ...)."""
    fields = {k: v for k, v in resolved.items() if k != "subject_id"}
    return {
        "id": stable_id("verdict", subject_id, round_number),
        "round": round_number,
        "subject_id": subject_id,
        **fields,
        "created_at": created_at or utc_now(),
    }


AUDIT_COMBINATIONS = (
    "anti_image_anti_prompt",
    "base_image_anti_prompt",
    "anti_image_base_prompt",
    "base_image_base_prompt",
)


def audit_record(
    population: str,
    model: str,
    pair_id: str,
    scores: Sequence[float] | None,
    *,
    inputs: str,
    prompt_tokens: tuple[int | None, int | None] = (None, None),
    context: int | None = None,
    error: str | None = None,
    created_at: str | None = None,
) -> Record:
    """One reward model's four scores of a pair (AUDIT_COMBINATIONS order); none, or any that is not a finite
    number, makes a failed audit with its error. `inputs` is the digest of what the model read (both prompts and
    both images): changed inputs make a new record."""
    if scores is not None and not all(math.isfinite(v) for v in scores):
        error = f"a score is not a finite number ({', '.join(str(v) for v in scores)})"
        scores = None
    if scores is None and error is None:
        raise ValueError("a failed audit needs its error")
    known = [t for t in prompt_tokens if t is not None]
    return {
        "id": stable_id("audit", population, model, pair_id, inputs),
        "population": population,
        "model": model,
        "subject_id": pair_id,
        "inputs": inputs,
        "scores": None
        if scores is None
        else dict(zip(AUDIT_COMBINATIONS, (round(float(v), 6) for v in scores), strict=True)),
        "prompt_tokens": dict(zip(("anti_prompt", "base_prompt"), prompt_tokens, strict=True)),
        "truncated": bool(context is not None and known and max(known) > context),
        "status": "ok" if scores is not None else "failed",
        "error": None if scores is not None else error,
        "created_at": created_at or utc_now(),
    }


def judgment_record(
    pair_id: str,
    judge: str,
    config: str,
    orders: Sequence[Mapping[str, Any]],
    usage: Mapping[str, int],
    *,
    created_at: str | None = None,
) -> Record:
    """A VLM judge's verdict about a pair from its answers in each A/B order (`orders`, as the judgment schema
    describes them): failed when an order failed, refused when one was refused, else the agreed label, or
    `inconsistent` when the choice flipped with the order."""
    failed = [o for o in orders if o["status"] == "failed"] or [o for o in orders if o["status"] == "refused"]
    label = qualities = subject_kept = error = None
    if failed:
        status, error = str(failed[0]["status"]), str(failed[0]["error"])
    else:
        status = "ok"
        labels = {o["label"] for o in orders}
        label = labels.pop() if len(labels) == 1 else "inconsistent"
        seen = [set(o["qualities"]) for o in orders]
        agreed = set.intersection(*seen) if label in ("anti", "base") else set()
        qualities = [q for q in orders[0]["qualities"] if q in agreed]
        subject_kept = all(o["subject_recognisable"] for o in orders)
    return {
        "id": stable_id("judgment", config, pair_id),
        "subject_id": pair_id,
        "judge": judge,
        "config": config,
        "status": status,
        "label": label,
        "qualities": list(dict.fromkeys(qualities or [])),
        "subject_kept": subject_kept,
        "orders": [dict(o) for o in orders],
        "usage": {"prompt_tokens": int(usage["prompt_tokens"]), "completion_tokens": int(usage["completion_tokens"])},
        "error": error,
        "created_at": created_at or utc_now(),
    }
