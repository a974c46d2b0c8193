"""Async work streamed to the executor in batches: the worker pool of every stage that waits on an endpoint.

A stage gives an async function that turns one unit into a record (an LLM rewrite, a VLM judgment); the pool runs
`concurrency` workers on one event loop and hands the executor an `Output` every `batch_size` records or
`FLUSH_EVERY_S` seconds. The loop runs only inside the generator's steps, so nothing is computed while the
executor commits; however the generator ends (done, failed, closed early, Ctrl-C) the workers are stopped first.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from curation.core.stage import Output
from curation.core.store import Record

FLUSH_EVERY_S = 1.0
PREPARE_EVERY = 256  # units prepared together (a batched cache lookup, say), ahead of the workers

Unit = TypeVar("Unit")


@dataclass(frozen=True)
class Done:
    """One unit's result: its record of `kind`, and what to add to the run's counts."""

    kind: str
    record: Record
    counts: Mapping[str, int] = field(default_factory=dict)


Work = Callable[[Unit], Awaitable[Done]]


@dataclass
class AsyncPool(Generic[Unit]):
    """Workers on `runner`'s event loop, streaming their records as the executor's outputs."""

    runner: asyncio.Runner
    concurrency: int
    batch_size: int
    prepare: Callable[[Sequence[Unit]], None] | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def run(self, units: Sequence[Unit], work: Work[Unit]) -> Iterator[Output]:
        """`work` on every unit; an output whenever a batch is due. What was finished when Ctrl-C came is
        handed over before the interruption goes on."""
        batches: asyncio.Queue[Output | None] = asyncio.Queue()
        task = self.runner.get_loop().create_task(self._pool(units, work, batches))
        self.tasks.add(task)
        taken: list[Output | None] = []
        try:
            while True:
                self.runner.run(_take(batches, taken))
                if (batch := taken.pop()) is None:
                    break
                yield batch
            self.runner.run(_joined(task))  # the pool's failure, if it had one
        except KeyboardInterrupt:
            self._stop(task)
            while not batches.empty():
                if (batch := batches.get_nowait()) is not None:
                    yield batch
            raise
        finally:
            self._stop(task)

    def _stop(self, task: asyncio.Task[None]) -> None:
        if not task.done():
            task.cancel()
            self.runner.run(asyncio.wait([task]))
        if not task.cancelled():
            task.exception()  # retrieved: raised above when the generator got that far, else moot
        self.tasks.discard(task)

    def stop(self) -> None:
        """Stop every pool still running (a generator left unfinished and not yet closed)."""
        for task in list(self.tasks):
            self._stop(task)

    async def _pool(self, units: Sequence[Unit], work: Work[Unit], batches: asyncio.Queue[Output | None]) -> None:
        buffer: dict[str, list[Record]] = {}
        counts: Counter[str] = Counter()
        done = 0
        last_flush = time.monotonic()

        def flush() -> None:
            nonlocal buffer, counts, done, last_flush
            if done:
                batches.put_nowait(Output(records=buffer, counts=counts, advance=done))
                buffer, counts, done = {}, Counter(), 0
            last_flush = time.monotonic()

        def feed() -> Iterator[Unit]:
            for start in range(0, len(units), PREPARE_EVERY):
                chunk = units[start : start + PREPARE_EVERY]
                if self.prepare is not None:
                    self.prepare(chunk)
                yield from chunk

        queue = feed()  # shared by the workers: each takes the next unit when it is free

        async def worker() -> None:
            nonlocal done
            for unit in queue:
                result = await work(unit)
                buffer.setdefault(result.kind, []).append(result.record)
                counts.update(result.counts)
                done += 1
                if done >= self.batch_size or time.monotonic() - last_flush >= FLUSH_EVERY_S:
                    flush()
                    while batches.qsize() > 1:  # the executor has a batch to commit already: wait for it to take it
                        await asyncio.sleep(0)

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(self.concurrency, max(1, len(units)))):
                    group.create_task(worker())
        except BaseExceptionGroup as failures:
            raise failures.exceptions[0] from None  # the first failure stopped the pass; report it alone
        finally:
            flush()
            batches.put_nowait(None)


async def _joined(task: asyncio.Task[None]) -> None:
    await task


async def _take(queue: asyncio.Queue[Any], into: list[Any]) -> None:
    """The next batch, handed over through `into`: Python 3.11's Runner.run formats the repr of its task, result
    included, on every call (signal.getsignal), and the repr of a batch of 200 records costs milliseconds."""
    into.append(await queue.get())
