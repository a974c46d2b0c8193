"""Terminal output: one rich console on stderr for progress and messages, stdout for results."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

err_console = Console(stderr=True)
out_console = Console(soft_wrap=True)


class ConsoleSettings:
    quiet = False


settings = ConsoleSettings()


def info(message: str) -> None:
    """A progress message (suppressed by --quiet)."""
    if not settings.quiet:
        err_console.print(message, highlight=False)


def warn(message: str) -> None:
    """A warning; always shown."""
    err_console.print(f"[yellow]warning:[/yellow] {message}", highlight=False)


class ProgressBar:
    """A counter that advances a rich bar (or nothing under --quiet), with items/s and ETA."""

    def __init__(self, progress: Progress | None, task: TaskID | None) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: int = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, n)


class SpeedColumn(ProgressColumn):
    """Items per second, or `?` before the first update (rich has no speed yet then)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = "?" if task.speed is None else f"{task.speed:.1f}"
        return Text(f"{speed} {self.unit}/s" if self.unit else speed)


@contextmanager
def progress_bar(description: str, total: int | None, unit: str = "items") -> Iterator[ProgressBar]:
    if settings.quiet or total == 0:
        yield ProgressBar(None, None)
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        SpeedColumn(unit),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=False) as progress:
        yield ProgressBar(progress, progress.add_task(description, total=total))
