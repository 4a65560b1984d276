"""Progress bars (rich, as nerfstudio shows them): one style for every loop that runs more than a few seconds."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

CONSOLE = Console()


def progress_bar(info: bool = False, console: Console = CONSOLE) -> Progress:
    """description, bar, done / total, [the task's `info` field,] elapsed and remaining time."""
    extra = (TextColumn("{task.fields[info]}"),) if info else ()
    columns = (TextColumn("[bold blue]{task.description}"), BarColumn(), MofNCompleteColumn(), *extra, TimeElapsedColumn(), TimeRemainingColumn())
    return Progress(*columns, console=console)
