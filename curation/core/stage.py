"""The stage contract: what a stage needs and makes, what is pending, and how one batch becomes records.

A stage never writes to the store. `plan` reads what it needs and returns the pending units of work and a
factory for the compute that turns them into `Output`s; the executor (curation.core.executor) does the rest:
the workspace lock, the ledger, batching, one transaction per output, progress, statistics and interruption.
The compute factory and the units are plain picklable values, so the compute can run in another process.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from curation.core.store import Record, Store

if TYPE_CHECKING:
    from curation.core.workspace import Workspace


@dataclass
class Output:
    """What compute made of some units: records per kind, image bytes, counts, and how many units it finished.

    The executor writes `images` (content-addressed) first, then every record in one transaction with a journal
    of its `moves` (a finished folder to rename into place), which it carries out once the transaction commits.
    Kinds in `keep_existing` never overwrite a stored record.
    `details` reach the caller in the result (never the store): what the compute found out, such as a diff.
    """

    records: dict[str, list[Record]] = field(default_factory=dict)
    images: list[bytes] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    advance: int = 0
    moves: list[tuple[Path, Path]] = field(default_factory=list)
    keep_existing: frozenset[str] = frozenset()
    state: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


class Compute(Protocol):
    """Turns a sequence of units into outputs, streamed as batches finish."""

    def run(self, units: Sequence[Any]) -> Iterator[Output]: ...


ComputeFactory = Callable[[], AbstractContextManager[Compute]]


@dataclass
class Work:
    """A stage's pending work: the units, the compute that processes them, and what to commit before it starts.

    `portable` turns some units into equal ones that carry their inputs (image bytes) instead of naming
    workspace files; the Ray executor applies it to each chunk it sends to another process, the local one never.
    """

    units: Sequence[Any]
    compute: ComputeFactory | None = None
    portable: Callable[[Sequence[Any]], Sequence[Any]] | None = None
    before: Output | None = None
    label: str = ""
    unit: str = "items"
    total: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageResult:
    """What one execution of a stage did; `work` is how many records it added or changed."""

    stage: str
    run_id: int | None = None
    counts: Counter[str] = field(default_factory=Counter)
    details: dict[str, Any] = field(default_factory=dict)
    written: int = 0
    seconds: float = 0.0
    summary: str = ""

    @property
    def nothing_to_do(self) -> bool:
        return self.run_id is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "run_id": self.run_id,
            "written": self.written,
            "seconds": round(self.seconds, 3),
            **dict(self.counts),
            **self.details,
        }


class Stage(ABC):
    """One step of the pipeline. Subclasses declare `name`, `needs` and `makes` and implement `pending` and `plan`."""

    name: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ()
    makes: ClassVar[tuple[str, ...]] = ()
    # Whether the compute may run on Ray actors (`[executor] kind = "ray"`): it reads only what its units and
    # factory carry (model files aside), never the workspace. Stages that read the store while computing stay local.
    distributable: ClassVar[bool] = False

    @abstractmethod
    def pending(self, ws: Workspace) -> int:
        """How much work is waiting, cheaply (no model loaded, no server called)."""

    @abstractmethod
    def plan(self, ws: Workspace, options: Any = None) -> Work | None:
        """The pending work, read from the store; None (or no units) when there is nothing to do."""

    def derive(self, store: Store, output: Output) -> dict[str, list[Record]]:
        """Records that follow from an output once it is written (read from the store inside the output's own
        transaction, so they land with it); none by default."""
        return {}

    def summary(self, result: StageResult) -> str:
        """One line for `widespec run` and the stage's command."""
        shown = ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items()) if v)
        return shown or "nothing to do"

    def work_done(self, result: StageResult) -> int:
        """How much work an execution did, for `widespec run` (records added or changed, by default)."""
        return result.written

    def co_writer(self, options: Any = None) -> str | None:
        """A label (`shard 1/2`) when the options make this process one of several explicit co-writers that
        share the workspace lock; None (the default) takes it exclusively."""
        return None
