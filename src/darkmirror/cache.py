"""Where darkmirror keeps what it builds once and reuses: the organism, step outputs.

``DARKMIRROR_CACHE`` overrides the location; the default follows XDG
(``~/.cache/darkmirror``).

Every cached entry is a directory written under a temporary name and renamed into place
when complete, so a crash or Ctrl-C never leaves a half-written entry that looks finished.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path


def cache_root() -> Path:
    env = os.environ.get("DARKMIRROR_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "darkmirror"


_TMP_MARK = ".tmp-"


def clear_stale_temporaries(parent: Path) -> None:
    """Remove the temporary directories :func:`atomic_directory` left in ``parent``.

    Only a process killed without cleanup (SIGKILL, power loss) leaves them. Call it only
    while holding the lock that keeps every other writer out of ``parent``: a live writer's
    directory looks the same.
    """
    for stale in parent.glob(f".*{_TMP_MARK}*"):
        shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(final: Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``final``; rename it to ``final`` on success.

    On any exception (KeyboardInterrupt included) the temporary directory is removed and
    ``final`` is left as it was. If another process finished ``final`` first, its result
    is kept and ours discarded.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}{_TMP_MARK}{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
