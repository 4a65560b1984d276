"""Errors shown to the user as one line without a traceback."""

from __future__ import annotations

from pathlib import Path


class HypnerfError(SystemExit):
    """An error to report in one line: `hypnerf-ns: <message>`, exit status 1.

    A `SystemExit`, so that when nothing catches it (as in `ns-train`), Python prints the line
    and exits instead of printing a traceback. Callers and tests can still catch it.
    """

    def __init__(self, message: str) -> None:
        super().__init__(f"hypnerf-ns: {message}")

    def __str__(self) -> str:
        return str(self.code)


class InputError(HypnerfError):
    """Bad input (a missing file, a malformed transforms file, ...), naming the file."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class DivergedError(HypnerfError):
    """Training produced a non-finite loss; stops before the optimiser step spoils the weights."""
