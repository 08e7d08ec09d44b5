"""Run directories: one owner at a time, no silent overwrite, atomic files, no orphans.

A run directory (``hwsim train --out RUN_DIR``, ``hwsim.train(out=RUN_DIR)``) holds a user's results,
so every writer goes through this module:

- `claim_run_dir` is the one way to start writing: it refuses a path that is a file, refuses to
  replace an existing run unless ``overwrite=True`` (which then swaps in an empty directory with two
  renames, so the old run stays whole until the new one owns the name), takes the exclusive lock
  (`RunLock`), and removes the temporaries that dead writers left behind (`clean_stale_temps`).
- `RunLock`: the lock file ``RUN_DIR/run.lock`` holds the owner's pid, host and start time as JSON
  and an exclusive ``flock`` while the owner runs. The kernel drops the ``flock`` when the owner dies
  (even by ``kill -9``), so a lock file whose ``flock`` can be taken belongs to a dead process: it is
  taken over and reported (the callback ``report`` gets one line naming the dead pid), never reused
  silently. A lock held by a live process is a `RunDirBusy` error naming its pid. POSIX only
  (``fcntl``); on network file systems without ``flock`` support the lock is advisory at best.
- `atomic_write` / `write_json`: write a temporary ``.NAME.PID.XXXX.tmp`` beside the target, then
  ``os.replace`` it; a reader sees the old file or the new one, never half of one. The writer's pid
  in the name lets `clean_stale_temps` remove only the temporaries of processes that are gone.

Errors are `RunDirError` (a ``ValueError``: the CLI prints it as one line and exits with status 2).
"""
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "LOCK_FILE",
    "RUN_MARKERS",
    "RunDirBusy",
    "RunDirError",
    "RunLock",
    "atomic_write",
    "claim_run_dir",
    "clean_stale_temps",
    "is_run_dir",
    "pid_alive",
    "write_json",
]

#: The lock file inside a run directory.
LOCK_FILE = "run.lock"
#: Files whose presence makes a directory a run (what ``overwrite`` protects).
RUN_MARKERS = ("run.json", "checkpoint.npz", "metrics.json")
# .NAME.PID.RANDOM.tmp (atomic_write) and .DIRNAME.(old|new).PID.tmp (an overwrite's sibling dirs)
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")
_SWAP = re.compile(r"^\.(?P<name>.+)\.(?P<kind>old|new)\.(?P<pid>\d+)\.tmp$")


class RunDirError(ValueError):
    """A run directory cannot be used as asked (the message names the path and what to do)."""


class RunDirBusy(RunDirError):
    """Another live process owns the run directory (``owner``: its lock record)."""

    def __init__(self, message: str, owner: dict):
        super().__init__(message)
        self.owner = owner


def _report_stderr(line: str) -> None:
    print(f"hwsim: {line}", file=sys.stderr, flush=True)


def pid_alive(pid: int) -> bool:
    """True when a process ``pid`` exists on this host (``kill(pid, 0)``; permission denied = alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write(path: Path, write: Callable[[Any], Any]) -> None:
    """Call ``write(binary file object)`` on ``.NAME.PID.XXXX.tmp`` in ``path``'s folder, flush it to
    disk, then rename it to ``path`` (readers see the old or the new file, never a partial one)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj: Any) -> None:
    """``obj`` as indented JSON (one trailing newline), written with `atomic_write`."""
    atomic_write(path, lambda f: f.write((json.dumps(obj, indent=2) + "\n").encode()))


def is_run_dir(path: Path) -> bool:
    """True when ``path`` is a directory holding any of `RUN_MARKERS`."""
    path = Path(path)
    return path.is_dir() and any((path / m).exists() for m in RUN_MARKERS)


def clean_stale_temps(directory: Path) -> list[Path]:
    """Remove the ``.NAME.PID.XXXX.tmp`` files of ``directory`` whose writer pid is not running (and
    pid-less ``.NAME.XXXX.tmp`` files of older hwsim versions); returns the removed paths. Call it
    only while holding the directory's `RunLock`."""
    removed = []
    for p in Path(directory).iterdir():
        if not (p.name.startswith(".") and p.name.endswith(".tmp") and p.is_file()):
            continue
        m = _TEMP.match(p.name)
        if m is not None and pid_alive(int(m["pid"])):
            continue
        try:
            p.unlink()
            removed.append(p)
        except FileNotFoundError:
            pass
    return removed


class RunLock:
    """The exclusive lock of one run directory (see the module docstring); use `claim_run_dir`.

    ``path``: the run directory; ``stale_owner``: the lock record of a dead previous owner that was
    taken over, else None. `release` (or leaving the ``with`` block) removes the lock file.
    """

    def __init__(self, directory: Path, report: Callable[[str], None] = _report_stderr):
        import fcntl

        self.path = Path(directory)
        self.stale_owner: dict | None = None
        lock_path = self.path / LOCK_FILE
        while True:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                owner = _read_record(lock_path)
                raise RunDirBusy(f"run directory {self.path} is in use by pid {owner.get('pid', '?')} on "
                                 f"{owner.get('host', '?')} (lock file {lock_path}); wait for it to finish "
                                 f"or use another directory", owner) from None
            try:  # the file may have been released (unlinked) between our open and flock
                same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._fd = fd
        previous = _read_record(lock_path)
        if previous:
            self.stale_owner = previous
            report(f"taking over the stale lock {lock_path}: its owner pid {previous.get('pid', '?')} on "
                   f"{previous.get('host', '?')} (started {previous.get('started', '?')}) exited without "
                   f"releasing it")
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "argv": sys.argv}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        os.fsync(fd)

    def _moved(self, directory: Path) -> None:
        """The directory was renamed to ``directory`` (the lock's inode moved with it)."""
        self.path = Path(directory)

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path / LOCK_FILE)
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self):  # -> RunLock
        return self

    def __exit__(self, *exc) -> bool:
        self.release()
        return False


def _read_record(lock_path: Path) -> dict:
    try:
        rec = json.loads(lock_path.read_text() or "{}")
    except (OSError, ValueError):
        return {"pid": "?"} if lock_path.exists() and lock_path.stat().st_size else {}
    return rec if isinstance(rec, dict) else {"pid": "?"}


def _clean_stale_swaps(path: Path, report: Callable[[str], None]) -> None:
    """Sibling directories left by an overwrite that was killed: a lone ``.old`` copy is the old run
    (restored when ``path`` is gone), everything else of a dead pid is removed."""
    parent = path.parent
    if not parent.is_dir():
        return
    for p in sorted(parent.iterdir()):
        m = _SWAP.match(p.name)
        if m is None or m["name"] != path.name or pid_alive(int(m["pid"])) or not p.is_dir():
            continue
        if m["kind"] == "old" and not path.exists():
            os.rename(p, path)
            report(f"restored {path} from {p.name}, left by an overwrite that was interrupted")
        else:
            shutil.rmtree(p, ignore_errors=True)


def claim_run_dir(path, *, resume: bool = False, overwrite: bool = False,
                  report: Callable[[str], None] = _report_stderr) -> RunLock:
    """Take ownership of run directory ``path`` for writing; returns its held `RunLock`.

    ``resume=False``: ``path`` may be missing (created), empty or a directory without a run; an
    existing run (`is_run_dir`) is refused unless ``overwrite=True``, which replaces it with an empty
    directory atomically (the old run is removed only once the new directory holds the name).
    ``resume=True``: ``path`` must be an existing run. Either way a file at ``path`` is refused, a
    live owner is `RunDirBusy`, a dead owner's lock is taken over (``report`` gets one line), and the
    stale temporaries of dead writers are removed. Nothing is written before every check passed.
    """
    path = Path(path)
    if resume and overwrite:
        raise RunDirError("resume and overwrite exclude each other: resume continues the run, overwrite "
                          "replaces it")
    if path.exists() and not path.is_dir():
        raise RunDirError(f"run directory {path} exists and is not a directory; choose another path")
    _clean_stale_swaps(path, report)
    if resume and not is_run_dir(path):
        raise FileNotFoundError(f"no run to resume in {path}: it holds no run.json or checkpoint.npz")
    if not path.exists():
        if not path.parent.is_dir() and path.parent.exists():
            raise RunDirError(f"run directory {path}: its parent is not a directory")
        path.mkdir(parents=True, exist_ok=True)
    lock = RunLock(path, report)
    try:
        if not resume and is_run_dir(path):
            if not overwrite:
                raise RunDirError(f"{path} already holds a run; pass --overwrite (overwrite=True) to replace "
                                  f"it or --resume (resume=True) to continue it")
            lock = _swap_in_empty(path, lock, report)
        clean_stale_temps(path)
    except BaseException:
        lock.release()
        raise
    return lock


def _swap_in_empty(path: Path, old_lock: RunLock, report: Callable[[str], None]) -> RunLock:
    """Replace locked run ``path`` by a new empty, locked directory: two renames, then delete the old."""
    pid = os.getpid()
    new = path.parent / f".{path.name}.new.{pid}.tmp"
    old = path.parent / f".{path.name}.old.{pid}.tmp"
    new.mkdir()
    new_lock = RunLock(new, report)
    try:
        os.rename(path, old)
        old_lock._moved(old)
        try:
            os.rename(new, path)
        except OSError:
            os.rename(old, path)
            old_lock._moved(path)
            raise
        new_lock._moved(path)
    except BaseException:
        new_lock.release()
        shutil.rmtree(new, ignore_errors=True)
        raise
    old_lock.release()
    shutil.rmtree(old, ignore_errors=True)
    return new_lock
