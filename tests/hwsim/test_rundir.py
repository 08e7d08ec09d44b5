"""Run-directory ownership: the lock, stale locks, refusing and replacing runs, atomic writes, orphans."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from hwsim._rundir import (
    LOCK_FILE,
    RunDirBusy,
    RunDirError,
    RunLock,
    atomic_write,
    claim_run_dir,
    clean_stale_temps,
    is_run_dir,
    pid_alive,
    write_json,
)


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    pid = int(proc.stdout)
    assert not pid_alive(pid)
    return pid


def make_run(path, extra=()):
    path.mkdir(parents=True, exist_ok=True)
    write_json(path / "run.json", {"model": "mlp:4-2"})
    for name in extra:
        (path / name).write_text(name)
    return path


def test_lock_excludes_a_second_owner_and_names_the_pid(tmp_path):
    with claim_run_dir(tmp_path / "r") as lock:
        record = json.loads((tmp_path / "r" / LOCK_FILE).read_text())
        assert record["pid"] == os.getpid() and lock.stale_owner is None
        with pytest.raises(RunDirBusy, match=f"in use by pid {os.getpid()}") as info:
            claim_run_dir(tmp_path / "r")
        assert info.value.owner["pid"] == os.getpid()
        with pytest.raises(RunDirBusy):
            claim_run_dir(tmp_path / "r", resume=False, overwrite=True)  # never replaces a live run
    assert not (tmp_path / "r" / LOCK_FILE).exists()  # released
    claim_run_dir(tmp_path / "r").release()


def test_lock_held_by_another_live_process(tmp_path):
    code = ("import sys, time; sys.path.insert(0, sys.argv[2]); from hwsim._rundir import RunLock; "
            "l = RunLock(sys.argv[1]); print('locked', flush=True); sys.stdin.readline()")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    tmp_path.joinpath("r").mkdir()
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "r"), root], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirBusy, match=f"pid {proc.pid}"):
            RunLock(tmp_path / "r")
    finally:
        proc.stdin.close()
        proc.wait()
    RunLock(tmp_path / "r").release()  # the owner exited: free again


def test_stale_lock_of_a_dead_process_is_reported_and_taken_over(tmp_path, dead_pid):
    run = make_run(tmp_path / "r")
    (run / LOCK_FILE).write_text(json.dumps({"pid": dead_pid, "host": "h", "started": "t"}))
    lines = []
    with claim_run_dir(run, resume=True, report=lines.append) as lock:
        assert lock.stale_owner["pid"] == dead_pid
        assert json.loads((run / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert len(lines) == 1 and f"pid {dead_pid}" in lines[0] and "stale lock" in lines[0]


def test_existing_run_is_refused_without_overwrite(tmp_path):
    run = make_run(tmp_path / "r", ["metrics.json"])
    before = sorted(p.name for p in run.iterdir())
    with pytest.raises(RunDirError, match="already holds a run; pass --overwrite"):
        claim_run_dir(run)
    assert sorted(p.name for p in run.iterdir()) == before
    with pytest.raises(RunDirError, match="exclude"):
        claim_run_dir(run, resume=True, overwrite=True)


def test_overwrite_replaces_the_run_atomically(tmp_path):
    run = make_run(tmp_path / "r", ["metrics.json", "report.md"])
    with claim_run_dir(run, overwrite=True) as lock:
        assert lock.path == run
        assert sorted(p.name for p in run.iterdir()) == [LOCK_FILE]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no swap directories left
    assert not is_run_dir(run)


def test_interrupted_overwrite_is_undone(tmp_path, dead_pid):
    """A kill between the two renames leaves the old run beside the name: restored on the next claim."""
    old = make_run(tmp_path / f".r.old.{dead_pid}.tmp", ["metrics.json"])
    (tmp_path / f".r.new.{dead_pid}.tmp").mkdir()
    lines = []
    with claim_run_dir(tmp_path / "r", resume=True, report=lines.append):
        assert (tmp_path / "r" / "metrics.json").read_text() == "metrics.json"
    assert not old.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["r"]
    assert "restored" in lines[0]


def test_paths_that_are_not_directories_are_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(RunDirError, match="exists and is not a directory"):
        claim_run_dir(tmp_path / "f")
    with pytest.raises(FileNotFoundError, match="no run to resume"):
        claim_run_dir(tmp_path / "missing", resume=True)
    assert not (tmp_path / "missing").exists()
    assert (tmp_path / "f").read_text() == "x"


def test_a_directory_without_a_run_is_used_as_is(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    claim_run_dir(tmp_path).release()
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path, dead_pid):
    run = make_run(tmp_path / "r")
    dead = run / f".checkpoint.npz.{dead_pid}.abc123_x.tmp"
    live = run / f".metrics.json.{os.getpid()}.zz9.tmp"
    legacy = run / ".checkpoint.npz.k2j3h4g5.tmp"  # written by hwsim before temporaries named their pid
    for p in (dead, live, legacy):
        p.write_bytes(b"partial")
    with claim_run_dir(run, resume=True):
        pass
    assert not dead.exists() and not legacy.exists() and live.exists()
    assert clean_stale_temps(run) == []


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "a.json"
    write_json(path, {"v": 1})

    def fail(f):
        f.write(b"half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_write(path, fail)
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
