"""The ``darkmirror`` command group, its logging and its error handling.

Errors a user can fix (bad spec, bad dataset line, unreachable model) print one line and
exit with status 2; Ctrl-C exits with 130 and SIGTERM (a scheduler's kill, a ``timeout``)
with 143, both leaving every finished step in place and no half-written one, so the same
command resumes.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import click

from darkmirror.errors import EXIT_USER_ERROR, DarkmirrorError

log = logging.getLogger("darkmirror")

__all__ = ["executor_options", "executor_overrides", "main", "setup_logging"]


def setup_logging(quiet: bool) -> None:
    # Progress lines from darkmirror only: other libraries' INFO chatter (a GPU machine's
    # "JAX version ... available", say) would bury them, and break the one-line errors.
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    logging.getLogger("darkmirror").setLevel(logging.WARNING if quiet else logging.INFO)
    # transformers and TRL log configuration chatter at warning level on every load. Said
    # through the environment, which transformers reads when it is imported (here or in a
    # worker process), so the CLI does not import it before a step needs it.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "transformers" in sys.modules:
        sys.modules["transformers"].logging.set_verbosity_error()


class _Terminated(BaseException):
    """SIGTERM as an exception in the main thread. Python's default for SIGTERM ends the
    process at once, so ``finally`` blocks never run and a step's temporary directory (an
    organism's half-trained stage) stays behind; raised instead, it unwinds like Ctrl-C.
    A BaseException, so no step's ``except Exception`` swallows it."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated


_RESUME_HINT = "finished steps are kept; run the same command again to resume"


class _Group(click.Group):
    def invoke(self, ctx: click.Context):  # type: ignore[override]
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _raise_terminated)
        try:
            return super().invoke(ctx)
        except DarkmirrorError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USER_ERROR)
        except KeyboardInterrupt:
            click.echo(f"\ninterrupted: {_RESUME_HINT}", err=True)
            sys.exit(130)
        except _Terminated:
            click.echo(f"\nterminated: {_RESUME_HINT}", err=True)
            sys.exit(128 + signal.SIGTERM)


@click.group(cls=_Group)
@click.version_option(package_name="darkmirror")
def main() -> None:
    """Measure how training data corrupts language models beyond what the data shows."""


def executor_overrides(executor: str | None, address: str | None) -> list[str]:
    """``--executor``/``--address`` as overrides of the spec file's ``[executor]`` table."""
    out = [f"executor.kind={json.dumps(executor)}"] if executor else []
    if address:
        out.append(f"executor.address={json.dumps(address)}")
    return out


def executor_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--executor`` and ``--address``, for every command that runs a plan."""
    command = click.option(
        "--address",
        help="Ray cluster to join (ray://HOST:10001 or auto); default: a local cluster. Run "
        "and cache directories must be on storage every worker sees.",
    )(command)
    return click.option(
        "--executor",
        type=click.Choice(["local", "ray"]),
        help="Where the steps run: in this process (default) or on a Ray cluster "
        "(pip install 'darkmirror[ray]'). Same as [executor] kind in the spec.",
    )(command)
