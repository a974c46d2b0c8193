"""One pair, one fate: what is now believed about a pair, decided in one place.

Given a pair's evidence (the text decision about its variant, its clip decision, its verdicts and the configured
judge's judgment) and the release's rows mode, `fate` answers: accepted, rejected or undecided; by whom (`human`,
`judge`, `clip` or `text`); why; where a release puts it (`train`, `hard_negative` or nowhere); and the
preference label the evidence supports (which image follows the anti-aesthetic prompt better), if any.
Export, pending export, round planning, the report, status and the audit's `--decided-by` all ask this module.

The rules, in order:
1. A variant the text checks rejected (or could not check) is rejected by `text`: never released.
2. The human verdict that stands (the latest round's) decides: anti accepts, base or tie rejects; unresolved
   decides nothing.
3. A clip reject rejects. A clip accept accepts in `accepted` mode; in `judged` mode a judge accept (the anti image
   in every order it was asked) accepts where CLIP did not reject.
4. Otherwise the pair is undecided.
A rejection by a human or by CLIP makes a hard negative. A preference label is given only where the deciding
evidence compares the two images under the anti prompt: a human anti or base verdict, a judge accept, a clip
accept, or a clip reject on comparative gates alone (direction, probes). A failed score, a lost subject
(content_kept), low fidelity or a tie says nothing about which image follows the prompt better.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from curation.core.store import Record
from curation.core.verdicts import latest_verdict

RowsMode = Literal["human", "accepted", "judged"]
Outcome = Literal["accepted", "rejected", "undecided"]
Decider = Literal["human", "judge", "clip", "text"]
Placement = Literal["train", "hard_negative"]
Chosen = Literal["anti", "base"]

DECIDERS: tuple[str, ...] = ("clip", "human", "judge")  # who can place a released row
# Clip gates that compare the two images under the anti prompt (a reject on these alone says the base is better).
COMPARATIVE_GATES = ("direction", "probe:")


@dataclass(frozen=True)
class Evidence:
    """Everything written about one pair that bears on its fate."""

    decisions: list[Record] = field(default_factory=list)  # its clip decisions and its variant's text decisions
    verdicts: list[Record] = field(default_factory=list)
    judgment: Record | None = None  # the configured judge's, when one is configured


@dataclass(frozen=True)
class Fate:
    outcome: Outcome
    by: Decider | None
    why: str
    placement: Placement | None = None
    chosen: Chosen | None = None  # the preference label: which image follows the anti prompt better

    @property
    def decided_by(self) -> str | None:
        """Who placed a released row (`human`, `judge` or `clip`), None where the pair is placed nowhere."""
        return self.by if self.placement is not None else None


def latest_record(records: Iterable[Record]) -> Record | None:
    """The most recently written record (ties broken by id, so the choice is deterministic)."""
    return max(records, key=lambda r: (r["created_at"], r["id"]), default=None)


def latest_decisions(decisions: Iterable[Record]) -> dict[str, Record]:
    """The latest decision per stage (`text`, `clip`)."""
    by_stage: dict[str, list[Record]] = {}
    for decision in decisions:
        by_stage.setdefault(decision["stage"], []).append(decision)
    return {stage: record for stage, items in by_stage.items() if (record := latest_record(items)) is not None}


def judge_accepts(judgment: Record | None) -> bool:
    """Whether the judge, in every order it was asked, found the anti image follows the prompt better."""
    return judgment is not None and judgment["status"] == "ok" and judgment["label"] == "anti"


def comparative_reject(decision: Record) -> bool:
    """Whether a clip reject rests on comparative gates alone (every failed gate scored, none absolute)."""
    failed = [r for r in decision["reasons"] if " within ±" not in r]  # review notes ride along with rejects
    return bool(failed) and all(r.startswith(COMPARATIVE_GATES) and " < " in r for r in failed)


def fate(evidence: Evidence, mode: RowsMode) -> Fate:
    """The fate of one pair under the release's rows mode (the module's rules, above)."""
    latest = latest_decisions(evidence.decisions)
    text = latest.get("text")
    if text is not None and text["outcome"] == "reject":
        return Fate("rejected", "text", "; ".join(text["reasons"]) or "the text checks rejected the variant")
    verdict = latest_verdict(evidence.verdicts)
    if verdict is not None and verdict["label"] == "anti":
        return Fate("accepted", "human", f"round {verdict['round']}: anti", "train", "anti")
    if verdict is not None and verdict["label"] in ("base", "tie"):
        chosen: Chosen | None = "base" if verdict["label"] == "base" else None
        return Fate("rejected", "human", f"round {verdict['round']}: {verdict['label']}", "hard_negative", chosen)
    clip = latest.get("clip")
    if clip is not None and clip["outcome"] == "reject":
        chosen = "base" if comparative_reject(clip) else None
        return Fate("rejected", "clip", "; ".join(clip["reasons"]), "hard_negative", chosen)
    if clip is not None and clip["outcome"] == "accept" and mode == "accepted":
        return Fate("accepted", "clip", "; ".join(clip["reasons"]), "train", "anti")
    if mode == "judged" and judge_accepts(evidence.judgment):
        return Fate("accepted", "judge", "the judge chose the anti image in every order", "train", "anti")
    if clip is None:
        return Fate("undecided", None, "no clip decision yet")
    waiting = {"human": "a human round", "accepted": "a human round", "judged": "the judge or a human round"}[mode]
    return Fate("undecided", None, f"clip {clip['outcome']}; waiting for {waiting}")
