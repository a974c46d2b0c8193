"""Which judge the config names: the identity that keys its judgments, and the judgments and verdicts it gives.

Stages that read judgments (export, and the judge's own report) use this to pick the configured judge's records,
so a judge with other settings (another model, revision, instructions, image size or orders) never counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from curation.core import measures
from curation.core.ids import stable_id
from curation.core.store import Record, Store
from curation.core.taxonomy import Taxonomy, load_taxonomy
from curation.core.templates import Template, shipped_template
from curation.core.verdicts import latest_verdict
from curation.core.workspace import Workspace

TEMPLATE_FILE = "judge_template.txt"
# Human verdict labels that are decisions on the judge's ordinal scale (base-better < tie < anti-better).
ORDINAL = ("base", "tie", "anti")


def load_template() -> Template:
    """The judge's instructions shipped with widespec, and the hash recorded with what it makes."""
    return shipped_template(TEMPLATE_FILE)


@dataclass(frozen=True)
class JudgeIdentity:
    """Everything that can change a judge's answer; `config` is its digest, `source` the verdicts' name."""

    model: str
    revision: str
    template_hash: str
    taxonomy_hash: str  # the quality names shown to the judge come from the taxonomy
    temperature: float
    max_side: int
    image_format: str
    orders: str

    @classmethod
    def of(cls, ws: Workspace, taxonomy: Taxonomy | None = None) -> JudgeIdentity:
        """The judge the workspace's `[judge]` names, with its taxonomy (`taxonomy`: the workspace's, loaded)."""
        section = ws.settings.judge
        taxonomy = taxonomy or load_taxonomy(ws.settings.taxonomy.path, ws.root)
        return cls(
            section.model,
            section.revision,
            load_template().hash,
            taxonomy.hash,
            section.temperature,
            section.max_side,
            section.image_format,
            section.orders,
        )

    @property
    def source(self) -> str:
        return f"judge:{self.model}@{self.revision or 'unpinned'}"

    @property
    def config(self) -> str:
        return stable_id("judge", asdict(self))

    def params(self) -> dict[str, Any]:
        """What shapes one answer besides the messages (part of the cache key)."""
        return {"temperature": self.temperature, "max_side": self.max_side, "image_format": self.image_format}


def current_judgments(store: Store, identity: JudgeIdentity) -> dict[str, Record]:
    """The configured judge's judgment of each pair it judged, by pair id."""
    return {
        record["subject_id"]: record
        for record in store.iter("judgment", judge=identity.source)
        if record["config"] == identity.config
    }


def ordinal_label(judgment: Record) -> str | None:
    """A judgment on the ordinal scale: its label, with `inconsistent` (the choice flipped with the A/B order, so
    the judge has no preference it holds to) read as a tie; None unless the judgment is ok."""
    label = judgment.get("label")
    if judgment.get("status") != "ok" or label is None:
        return None
    return "tie" if label == "inconsistent" else str(label)


def human_labels(verdicts: Iterable[Record]) -> dict[str, str]:
    """The standing verdict's label per pair (`latest_verdict`, as releases read it; unresolved pairs left out)."""
    by_pair: dict[str, list[Record]] = {}
    for verdict in verdicts:
        by_pair.setdefault(verdict["subject_id"], []).append(verdict)
    standing = {pair: latest_verdict(found) for pair, found in by_pair.items()}
    return {pair: str(v["label"]) for pair, v in standing.items() if v is not None and v["label"] in ORDINAL}


def configured_judge(ws: Workspace) -> JudgeIdentity | None:
    """The identity of the judge `[judge]` names; None while its model is empty."""
    return JudgeIdentity.of(ws) if ws.settings.judge.configured else None


@dataclass(frozen=True)
class Standing:
    """How the judge stands against humans: pairs both decided, and its quadratic-weighted kappa on them."""

    overlap: int
    quadratic_kappa: float | None


def standing(store: Store, identity: JudgeIdentity) -> Standing:
    """The configured judge against the latest human verdicts, on the ordinal scale base < tie < anti, over the
    workspace's current pairs (the pairs `judge report` measures)."""
    humans = human_labels(store.iter("verdict"))
    current = store.ids("pair", status="current")
    confusion = np.zeros((len(ORDINAL), len(ORDINAL)), dtype=np.int64)
    for pair, judgment in current_judgments(store, identity).items():
        if pair not in current:
            continue
        judged, human = ordinal_label(judgment), humans.get(pair)
        if judged is not None and human is not None:
            confusion[ORDINAL.index(human), ORDINAL.index(judged)] += 1
    overlap = int(confusion.sum())
    return Standing(overlap, measures.kappa(confusion, weights="quadratic") if overlap else None)


def gate(found: Standing, *, min_kappa: float, min_overlap: int) -> str | None:
    """The one-line reason a release may not rest on the judge alone; None when it may: a quadratic kappa against
    humans of at least `min_kappa` on at least `min_overlap` pairs."""
    measured = found.quadratic_kappa
    if found.overlap >= min_overlap and measured is not None and measured >= min_kappa:
        return None
    kappa = "undefined" if measured is None else f"{measured:.3f}"
    return (
        f"the judge may not decide rows: its quadratic kappa against humans is {kappa} on {found.overlap} "
        f"overlapping pairs (required: at least judge.min_kappa = {min_kappa} on judge.min_overlap = "
        f"{min_overlap} pairs)"
    )
