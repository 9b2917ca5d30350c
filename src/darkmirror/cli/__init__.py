"""The ``darkmirror`` command.

Errors a user can fix (bad spec, bad dataset line, unreachable model) print one line and
exit with status 2; Ctrl-C exits with 130 and leaves every finished step in place, so the
same command resumes. One module per family of commands; importing them registers them.
"""

from darkmirror.cli import audit, browse, runs, scan, stress  # noqa: F401  (registers the commands)
from darkmirror.cli.app import main

__all__ = ["main"]
