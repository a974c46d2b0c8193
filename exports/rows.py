"""Dataset rows: which pairs go into a release, and the row each one becomes.

Everything here is pure: it takes the records of one pair (the pair itself, its scores, decisions and verdicts)
and returns a row; where a pair goes is its fate (curation.domain.fate). Images appear as their sha256 (`{"bytes": <sha256>, "path": None}`); the
writer swaps in the original PNG bytes when it writes the shard.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from curation.core.contracts import validate_record
from curation.core.errors import RecordInvalid
from curation.core.ids import canonical_json
from curation.core.settings import ExportSettings
from curation.core.store import Record
from curation.core.verdicts import latest_verdict
from curation.domain.evidence import PairRecords
from curation.domain.fate import latest_decisions, latest_record
from exports.scope import ReleaseScope

CORE_METRICS = ("fidelity", "content_kept", "direction")
VOTE_LABELS = ("anti", "base", "tie")


def left_out(model: str, verdicts: Iterable[Record], scope: ReleaseScope, export: ExportSettings) -> str | None:
    """Why a pair of `model` with these verdicts stays out of a release (its model is out of scope, or annotators
    flagged it), or None."""
    return scope.excluded(model) or flag_exclusion(verdicts, export.exclude_flags, export.flag_min_votes)


def flag_exclusion(verdicts: Iterable[Record], flags: Sequence[str], min_votes: int) -> str | None:
    """Why annotators' flags keep this pair out of a release (the latest round's verdict decides), or None."""
    verdict = latest_verdict(verdicts)
    counts = (verdict or {}).get("flags") or {}
    raised = [flag for flag in flags if counts.get(flag, 0) >= min_votes]
    return f"flagged {' and '.join(raised)} by annotators" if raised else None


def chosen_scores(scores: Iterable[Record], scorer: str | None) -> dict[str, Record]:
    """The latest ok score per metric from `scorer` (the configured one) only; any other scorer's never count."""
    by_metric: dict[str, list[Record]] = {}
    for score in scores:
        if score["scorer"] == scorer and score["status"] == "ok" and score["value"] is not None:
            by_metric.setdefault(score["metric"], []).append(score)
    return {metric: record for metric, items in by_metric.items() if (record := latest_record(items)) is not None}


# The score whose text count stands for each prompt of a row: fidelity reads the anti prompt, content_kept the base.
PROMPT_TOKEN_METRICS = {"anti_prompt": "fidelity", "base_prompt": "content_kept"}


def prompt_tokens(chosen: dict[str, Record]) -> dict[str, dict[str, Any]]:
    """Each prompt's token count and whether the scorer cut it, as its scores recorded them (where they did)."""
    out: dict[str, dict[str, Any]] = {}
    for prompt, metric in PROMPT_TOKEN_METRICS.items():
        record = chosen.get(metric)
        if record is not None and record.get("text_tokens") is not None:
            out[prompt] = {"tokens": record["text_tokens"], "truncated": record.get("text_truncated")}
    return out


def _image(sha256: str | None, pair_id: str, side: str) -> dict[str, Any]:
    if not sha256:
        raise RecordInvalid(f"pair {pair_id}: the {side} render is ok but has no image_sha256")
    return {"bytes": sha256, "path": None}


def provenance(
    records: PairRecords, scorers: list[str], tokens: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Where the row came from: taxonomy, rewriter, generator and settings, scorer (and the token counts of the
    prompts it read), thresholds per stage."""
    pair = records.pair
    render = pair.anti_render
    return {
        "taxonomy": pair.variant["taxonomy"],
        "rewriter": pair.variant["rewriter"],
        "generator": render["generator"],
        "settings": {key: render[key] for key in ("steps", "guidance", "width", "height")},
        "scorer": scorers,
        "text_tokens": tokens or {},
        "thresholds": {stage: d["thresholds"] for stage, d in sorted(latest_decisions(records.decisions).items())},
        "base_prompt_source": pair.base["source"],
        **({"judge": {k: records.judgment[k] for k in ("judge", "config")}} if records.judgment else {}),
        "variant_id": pair.variant["id"],
        "render_ids": {"base": pair.base_render["id"], "anti": render["id"]},
    }


def build_row(records: PairRecords, *, license: str, scorer: str | None, decider: str = "clip") -> dict[str, Any]:
    """The dataset row of one pair, images as sha256 references, validated against dataset_row.schema.json;
    its metrics come from `scorer` alone."""
    return build_row_and_provenance(records, license=license, scorer=scorer, decider=decider)[0]


def build_row_and_provenance(
    records: PairRecords, *, license: str, scorer: str | None, decider: str = "clip"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The row (as `build_row`) and its provenance as a dict (the row holds it as JSON)."""
    pair = records.pair
    chosen = chosen_scores(records.scores, scorer)
    values: dict[str, float | None] = {metric: float(record["value"]) for metric, record in chosen.items()}
    scorers = sorted({str(record["scorer"]) for record in chosen.values()})
    origin = provenance(records, scorers, prompt_tokens(chosen))
    verdict = latest_verdict(records.verdicts)
    latest = latest_decisions(records.decisions)
    votes = None
    if verdict is not None:
        unknown = set(verdict["votes"]) - set(VOTE_LABELS)
        if unknown:
            raise RecordInvalid(f"verdict {verdict['id']}: $.votes: unknown label(s) {sorted(unknown)}")
        votes = {label: int(verdict["votes"].get(label, 0)) for label in VOTE_LABELS}
    dimensions = list(pair.variant["dimensions"])
    row: dict[str, Any] = {
        "id": pair.id,
        "base_prompt": pair.base["text"],
        "anti_prompt": pair.variant["text"],
        "dimensions": dimensions,
        "intensity": pair.variant["intensity"],
        "image_base": _image(pair.base_render["image_sha256"], pair.id, "base"),
        "image_anti": _image(pair.anti_render["image_sha256"], pair.id, "anti"),
        "generator": pair.generator,
        "seed": pair.seed,
        **{metric: values.get(metric) for metric in CORE_METRICS},
        "probe": [values.get(f"probe:{dimension}") for dimension in dimensions],
        "clip_outcome": latest["clip"]["outcome"] if "clip" in latest else None,
        "verdict": verdict["label"] if verdict else None,
        "verdict_round": verdict["round"] if verdict else None,
        "votes": votes,
        "agreement": float(verdict["agreement"]) if verdict and verdict["agreement"] is not None else None,
        "judge_verdict": records.judgment["label"] if records.judgment else None,
        "decided_by": decider,
        "provenance": canonical_json(origin),
        "license": license,
    }
    validate_row(row)
    return row, origin


def validate_row(row: dict[str, Any]) -> None:
    """Raise RecordInvalid naming the row id and the JSON path of the first bad field."""
    validate_record("dataset_row", row)
