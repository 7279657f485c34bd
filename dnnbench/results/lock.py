"""One writer per results folder: an exclusive lock held for the length of a run (or a merge, a
baseline or report write into the folder).

The lock is flock(2) on RESULTS/.lock, so the kernel releases it when its process dies, however it
dies; the file itself names the holder (process id, start time, command). A second writer gets one
line naming the holder; a lock file left by a dead process is taken over with a notice.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from dnnbench.core.errors import BadInput

LOCK = ".lock"


class FolderBusy(BadInput):
    """Another live process holds the folder's lock."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        return {}


class FolderLock:
    """`with FolderLock(folder, "run"):` — exclusive use of `folder` for a run, merge, baseline or report."""

    def __init__(self, folder: str | os.PathLike, purpose: str) -> None:
        self.folder = Path(folder)
        self.purpose = purpose
        self.path = self.folder / LOCK
        self._fd: int | None = None
        self.notice: str | None = None  # set when a dead process's lock file was taken over: show it

    def acquire(self) -> FolderLock:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise BadInput(f"cannot write to {self.folder} ({exc.strerror}); choose another --results folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            held = _holder(self.path)
            raise FolderBusy(
                f"{self.folder} is in use by process {held.get('pid', '?')} ({held.get('purpose', 'a run')}, started "
                f"{held.get('started_at', '?')}: {held.get('command', '?')}); wait for it to finish or choose another "
                "results folder"
            ) from None
        previous = _holder(self.path)
        if previous.get("pid") and previous.get("pid") != os.getpid() and not _alive(int(previous["pid"])):
            self.notice = (
                f"dnnbench: notice: taking over the lock of {self.folder} left by process {previous['pid']} "
                f"({previous.get('purpose', 'a run')} started {previous.get('started_at', '?')}), which is gone"
            )
        record = {
            "pid": os.getpid(),
            "purpose": self.purpose,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": " ".join(shlex.quote(a) for a in sys.argv),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        self._fd = fd
        # Forked children (DataLoader workers) must not keep the lock alive: a killed run's workers
        # linger for seconds, and the folder has to be free for --resume as soon as the run is gone.
        os.register_at_fork(after_in_child=self._forget)
        return self

    def _forget(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)  # an empty lock file: nobody holds it
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()
