"""The CLI's one writer: results to stdout, messages and progress to stderr."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

#: The width of output that goes to a pipe or a file (rich's own default there is 80 columns, which
#: folds a table's every row); ``COLUMNS`` still sets it.
PIPED_WIDTH = 1000


def _console(stream, **kwargs) -> Console:
    """No markup: what is printed holds names users chose (``trap [/x]``), which rich would read
    as its own tags, dropping text or raising; styles are given as ``Text`` styles instead."""
    piped = not stream.isatty() and not os.environ.get("COLUMNS")
    return Console(highlight=False, markup=False, width=PIPED_WIDTH if piped else None, **kwargs)


out = _console(sys.stdout)
err = _console(sys.stderr, stderr=True)


def command_name() -> str:
    """How the user can type this command again: ``taxopost`` when it is on PATH, else its path."""
    running = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    on_path = shutil.which("taxopost")
    if running is None or (on_path and Path(on_path).resolve() == running):
        return "taxopost"
    try:
        return str(running.relative_to(Path.cwd()))
    except ValueError:
        return str(running)


def fail(message: str, *, code: int = 2) -> int:
    """Print ``taxopost: error: message`` on stderr and return the exit code."""
    err.print(f"taxopost: error: {message}", markup=False, soft_wrap=True)
    return code


def warn(message: str) -> None:
    err.print(f"taxopost: warning: {message}", markup=False, soft_wrap=True)


class Bar:
    """Call with a count to advance; :meth:`update` to set position, total and label."""

    def __init__(self, progress: Progress | None, task: int | None) -> None:
        self._progress, self._task = progress, task

    def __call__(self, n: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def update(self, *, completed: int, total: int, description: str | None = None) -> None:
        if self._progress is not None:
            fields = {"description": description} if description else {}
            self._progress.update(self._task, completed=completed, total=total, **fields)


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Bar]:
    """Yield a :class:`Bar`; drawn on a terminal only (plain pipes and CI stay clean)."""
    if not err.is_terminal:
        yield Bar(None, None)
        return
    columns = (TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        yield Bar(progress, progress.add_task(description, total=total))
