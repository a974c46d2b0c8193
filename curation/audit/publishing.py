"""What an audit adds to a release: one parquet table of scores per reward model, `summary.json` with every
figure, an accuracy plot and the card's section (all computed from the records, deterministic bytes)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from curation.audit.metrics import ModelAudit
from curation.audit.population import AuditUnit
from curation.audit.stage import audits_of
from curation.core.intervals import interval_text
from curation.core.records import AUDIT_COMBINATIONS
from curation.core.store import Store

AUDIT_DIR = "audit"
CIRCULAR = (
    "**Circular:** this model is the CLIP scorer that filtered the pairs, so on the pairs it accepted it ranks the "
    "anti-aesthetic image first by construction; its figures say nothing about the model."
)


def file_stem(name: str) -> str:
    """A reward model's name as a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"


SCORES_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("model", pa.string()),
        ("status", pa.string()),
        *((c, pa.float64()) for c in AUDIT_COMBINATIONS),
        ("anti_prompt_tokens", pa.int64()),
        ("base_prompt_tokens", pa.int64()),
        ("truncated", pa.bool_()),
        ("error", pa.string()),
    ]
)


def scores_table(store: Store, population: str, model: str, units: Sequence[AuditUnit]) -> bytes:
    """Parquet bytes: one row per unit with its four scores (null where the audit failed, with the error)."""
    rows = []
    for unit, record in zip(units, audits_of(store, population, model, units), strict=True):
        scores = (record or {}).get("scores") or {}
        tokens = (record or {}).get("prompt_tokens") or {}
        rows.append(
            {
                "id": unit.pair_id,
                "model": model,
                "status": record["status"] if record else "missing",
                **{c: scores.get(c) for c in AUDIT_COMBINATIONS},
                "anti_prompt_tokens": tokens.get("anti_prompt"),
                "base_prompt_tokens": tokens.get("base_prompt"),
                "truncated": bool(record and record.get("truncated")),
                "error": record.get("error") if record else "not audited",
            }
        )
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=SCORES_SCHEMA), buffer)
    return buffer.getvalue()


def summary_json(audits: Sequence[ModelAudit], rows: int) -> bytes:
    document = {"rows": rows, "models": [a.as_dict() for a in audits]}
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def card_section(audits: Sequence[ModelAudit], plot: str | None) -> str:
    """The card's reward-model section: the paper's table (with intervals), its control and its caveats."""
    lines = [
        "## Reward-model audit",
        "",
        "Each reward model scored both images of every row under both prompts. Under the anti-aesthetic prompt a "
        "model that follows the prompt ranks the anti-aesthetic image first: accuracy is how often it does (ties "
        "left out), F1 takes every row's answer as the anti image, AUROC pools both images of every row. Under the "
        "base prompt the base image should win; *wrong image wins* is the control. 95% bootstrap intervals in "
        f"brackets. Scores per row: `{AUDIT_DIR}/<model>.parquet`; every figure: `{AUDIT_DIR}/summary.json`.",
        "",
        "| model | rows | accuracy | F1 | AUROC | mean Δ | wrong image wins |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for a in audits:
        f = a.overall
        flag = " (circular)" if a.circular else ""
        delta = "—" if f.mean_delta is None else f"{f.mean_delta.value:.4f}"
        lines.append(
            f"| {a.name}{flag} (`{a.model}`) | {a.pairs} | {interval_text(f.accuracy)} | {interval_text(f.f1)} | "
            f"{interval_text(f.auroc)} | {delta} | {interval_text(f.wrong_image_wins)} |"
        )
    notes = []
    if any(a.circular for a in audits):
        notes.append(CIRCULAR)
    for a in audits:
        if a.failed or a.truncated:
            notes.append(f"{a.name}: {a.failed} rows failed; {a.truncated} rows had a prompt cut to its text context.")
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]
    if plot:
        lines += ["", f"![accuracy per reward model]({plot})"]
    return "\n".join(lines)


def accuracy_plot(audits: Sequence[ModelAudit]) -> bytes:
    """A PNG: each model's accuracy with its interval, and chance (0.5)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 1 + 0.45 * len(audits)), dpi=100)
    for y, a in enumerate(audits):
        acc = a.overall.accuracy
        if acc is None:
            continue
        low, high = acc.low if acc.low is not None else acc.value, acc.high if acc.high is not None else acc.value
        ax.errorbar(acc.value, y, xerr=[[acc.value - low], [high - acc.value]], fmt="o", color="#333333", capsize=3)
    ax.axvline(0.5, color="#999999", linestyle="--", linewidth=1)
    labels = [
        (a.name if len(a.name) <= 40 else a.name[:39] + "…") + (" (circular)" if a.circular else "") for a in audits
    ]
    ax.set_yticks(range(len(audits)), labels)
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy: anti image ranked first under its own prompt")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()
