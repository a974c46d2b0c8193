"""Statistics of an export gathered row by row as it is written (pure; small per-row state)."""

from __future__ import annotations

import json
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from exports.languages import row_language
from exports.rows import CORE_METRICS


@dataclass
class ExportStats:
    """Counts, metric values and build facts of one config's rows."""

    rows: int = 0
    dimensions: Counter[str] = field(default_factory=Counter)
    intensities: Counter[str] = field(default_factory=Counter)
    generators: Counter[str] = field(default_factory=Counter)
    verdicts: Counter[str] = field(default_factory=Counter)
    clip_outcomes: Counter[str] = field(default_factory=Counter)
    deciders: Counter[str] = field(default_factory=Counter)
    languages: Counter[str] = field(default_factory=Counter)  # rows by the language of their prompts, as checked
    judge_verdicts: Counter[str] = field(default_factory=Counter)
    metrics: dict[str, array[float]] = field(default_factory=lambda: {m: array("d") for m in CORE_METRICS})
    missing_metrics: Counter[str] = field(default_factory=Counter)
    round_agreement: dict[int, list[float]] = field(default_factory=dict)
    round_pairs: Counter[int] = field(default_factory=Counter)
    taxonomies: set[tuple[str, str, str]] = field(default_factory=set)
    rewriters: set[str] = field(default_factory=set)
    generator_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    scorers: set[str] = field(default_factory=set)
    thresholds: dict[str, set[str]] = field(default_factory=dict)
    # Rows whose prompt (anti_prompt / base_prompt) the scorer cut to its context, and rows with a known count.
    truncated_prompts: Counter[str] = field(default_factory=Counter)
    counted_prompts: Counter[str] = field(default_factory=Counter)

    def add(self, row: dict[str, Any], prov: dict[str, Any]) -> None:
        """Count a row; `prov` is its provenance as a dict (what the row holds as JSON)."""
        self.rows += 1
        self.dimensions.update(row["dimensions"])
        self.intensities[row["intensity"]] += 1
        self.generators[row["generator"]] += 1
        self.verdicts[row["verdict"] or "not judged"] += 1
        self.clip_outcomes[row["clip_outcome"] or "not filtered"] += 1
        self.deciders[row["decided_by"]] += 1
        self.languages[row_language(row["base_prompt"], row["anti_prompt"])] += 1
        self.judge_verdicts[row["judge_verdict"] or "not judged"] += 1
        for metric in CORE_METRICS:
            if row[metric] is None:
                self.missing_metrics[metric] += 1
            else:
                self.metrics[metric].append(row[metric])
        if row["verdict_round"] is not None:
            self.round_pairs[row["verdict_round"]] += 1
            if row["agreement"] is not None:
                self.round_agreement.setdefault(row["verdict_round"], []).append(row["agreement"])
        taxonomy = prov["taxonomy"]
        self.taxonomies.add((taxonomy["name"], taxonomy["version"], taxonomy["hash"]))
        rewriter = prov["rewriter"]
        self.rewriters.add(
            f"{rewriter['kind']}"
            + (f" ({rewriter['model']})" if rewriter["model"] else "")
            + (f", template {rewriter['template_hash'][:12]}" if rewriter["template_hash"] else "")
        )
        self.generator_info.setdefault(row["generator"], prov["generator"])
        self.scorers.update(prov["scorer"])
        for prompt, tokens in prov.get("text_tokens", {}).items():
            self.counted_prompts[prompt] += 1
            self.truncated_prompts[prompt] += bool(tokens.get("truncated"))
        for stage, values in prov["thresholds"].items():
            self.thresholds.setdefault(stage.split(":")[0], set()).add(json.dumps(values, sort_keys=True))

    def mean_agreement(self) -> dict[int, float]:
        return {r: sum(v) / len(v) for r, v in sorted(self.round_agreement.items()) if v}


def size_category(rows: int) -> str:
    """The Hub's size_categories bucket for a row count."""
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]
    bounds += [(10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
    return next((label for bound, label in bounds if rows < bound), "n>1T")
