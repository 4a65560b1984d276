"""Errors about the user's input, shown as one line without a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Union


class InputError(SystemExit):
    """Bad input (a missing file, a malformed transforms file, ...).

    A `SystemExit`, so that when nothing catches it (as in `ns-train`), Python prints the one
    line `hypnerf-ns: <path>: <problem>` and exits with status 1 instead of a traceback.
    """

    def __init__(self, path: Union[str, Path], problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"hypnerf-ns: {path}: {problem}")

    def __str__(self) -> str:
        return str(self.code)
