"""Exceptions a user can act on.

Every message says what went wrong and what to do; CLI entry points print them
bilingually (Chinese first) and exit non-zero.
"""


class GridgovError(Exception):
    """Base class of every error gridgov raises on purpose."""


class CRSError(GridgovError):
    """A coordinate system was missing, unknown, or did not match what was expected."""


class CodeError(GridgovError):
    """A division code (区划代码) is malformed or does not nest in its parent."""


class GridValidationError(GridgovError):
    """A grid (or a boundary file) failed its checks; ``problems`` lists every one found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s): " + "; ".join(self.problems[:5]))


class StoreError(GridgovError):
    """The store is missing, unreachable or not initialised (run ``gridgov init``)."""


class SourceError(GridgovError):
    """An input file is unusable as a whole (unreadable, or no recognisable columns)."""


class SettingsError(GridgovError):
    """A setting (``GRIDGOV_*``) has a value outside what it accepts; the message names both."""
