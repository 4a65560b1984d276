"""Progress bars (rich, as nerfstudio shows them): one style for every loop that runs more than a few seconds."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

CONSOLE = Console()


def progress_bar(info: bool = False, console: Console = CONSOLE) -> Progress:
    """description, bar, done / total, [the task's `info` field,] elapsed and remaining time."""
    extra = (TextColumn("{task.fields[info]}"),) if info else ()
    columns = (
        TextColumn("[bold blue]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    return Progress(*columns, console=console)


@contextmanager
def loss_bar(description: str, steps: int) -> Iterator[Callable[[int, float], None]]:
    """A progress bar of `steps` optimisation steps; yields the `on_step(step, loss)` callback that advances it."""
    with progress_bar(info=True) as progress:
        task = progress.add_task(description, total=steps, info="")
        yield lambda step, loss: progress.update(task, advance=1, info=f"loss {loss:.4f}")
