"""One daemon per home folder: a second one took the first one's running jobs for cut off by a restart and
failed them."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


class CannotStart(Exception):
    """The daemon cannot start as asked; the message says why and what to do."""


@contextmanager
def one_daemon_per_home(home: Path) -> Iterator[None]:
    """Held while the daemon runs; the system drops it when the process ends, however it ends."""
    with (home / "daemon.lock").open("a+") as lock:
        try:
            _lock(lock)
        except OSError:
            raise CannotStart(
                f"another daemon is running with the home folder {home}: stop it first, "
                "or give this one its own --home"
            ) from None
        yield


def _lock(file: IO[str]) -> None:
    if sys.platform == "win32":
        import msvcrt

        file.seek(0)
        msvcrt.locking(file.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
