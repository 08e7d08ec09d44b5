"""Fault injection on the ``hwsim`` CLI in separate processes: kill -9 anywhere (training steps, timers,
every phase of a checkpoint write) then ``--resume`` must end with the metrics and weights of the
uninterrupted run; concurrent writers on one run directory; every corrupt-file case is one error line.

Children run through ``_fault_driver.py`` (forked after one ``import hwsim.cli``, so ~1 s each; the
``slow`` variant spawns a fresh ``python`` per child). Default module: < 2 minutes on 2 cores.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("_fault_driver.py")
EPOCHS, NB = 3, 10  # digits --split 300, --batch 32: 10 batches per epoch
TRAIN = ["train", "--model", "mlp:64-16-10", "--split", "300", "--batch", "32", "--weight", "s8.7",
         "--activation", "s8.4", "--update", "s16.14:stochastic", "--quiet"]
PHASES = ("partial", "before_rename", "after_rename", "before_json", "before_metrics")
TIMING = ("epoch_seconds", "seconds", "versions")

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork (POSIX)")


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def drive(tmp: Path, steps: list[dict], name: str = "plan") -> list[dict]:
    """Run ``steps`` through the driver; returns one result per step (with its stderr text)."""
    for i, step in enumerate(steps):
        step.setdefault("stderr", str(tmp / f"{name}.{i}.err"))
    plan, result = tmp / f"{name}.json", tmp / f"{name}.result.json"
    plan.write_text(json.dumps(steps))
    subprocess.run([sys.executable, str(DRIVER), str(plan), str(result)], check=True, env=_env(), timeout=900)
    out = json.loads(result.read_text())
    for r, step in zip(out, steps):
        r["stderr"] = Path(step["stderr"]).read_text()
    return out


def train_argv(out: Path, seed: int, epochs: int = EPOCHS) -> list[str]:
    return [*TRAIN, "--epochs", str(epochs), "--seed", str(seed), "--out", str(out)]


def resume_argv(out: Path) -> list[str]:
    return ["train", "--out", str(out), "--resume", "--quiet"]  # everything else comes from the run


def strip_timing(obj):
    if isinstance(obj, dict):
        return {k: strip_timing(v) for k, v in obj.items() if k not in TIMING}
    if isinstance(obj, list):
        return [strip_timing(v) for v in obj]
    return obj


def read_checkpoint(run: Path) -> tuple[dict, dict]:
    with np.load(run / "checkpoint.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "meta"}
        meta = json.loads(z["meta"].tobytes().decode())
    return arrays, meta


def assert_same_run(run: Path, ref: Path) -> None:
    """Final metrics (without timings), checkpoint arrays and metadata, and run.json all equal."""
    assert strip_timing(json.loads((run / "metrics.json").read_text())) == \
        strip_timing(json.loads((ref / "metrics.json").read_text()))
    arrays, meta = read_checkpoint(run)
    ref_arrays, ref_meta = read_checkpoint(ref)
    assert arrays.keys() == ref_arrays.keys()
    for k in arrays:
        np.testing.assert_array_equal(arrays[k], ref_arrays[k], err_msg=k)
    assert strip_timing(meta) == strip_timing(ref_meta)
    assert json.loads((run / "run.json").read_text()) == json.loads((ref / "run.json").read_text())
    leftovers = [p.name for p in run.iterdir() if p.name.endswith(".tmp") or p.name == "run.lock"]
    assert leftovers == [], leftovers


def snapshot(path: Path) -> dict:
    """Names, sizes, bytes and mtimes of everything under ``path`` (to prove nothing was written)."""
    if path.is_file():
        return {path.name: (path.stat().st_mtime_ns, path.read_bytes())}
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else None)
            for p in sorted(path.rglob("*"))}


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("faults")


def kill_plan(rng: random.Random, out: Path, seed: int, phases: list[str], n_steps: int = 6,
              n_timers: int = 1, epochs: int = EPOCHS, spawn: bool = False) -> list[dict]:
    """Kill points in the order a run reaches them: ``n_steps`` training steps, one checkpoint write
    per epoch (phases given), and ``n_timers`` timer kills (each backed by the next hook, so that
    every child dies), then one final ``--resume`` that must complete."""
    points = [(s, {"kind": "step", "at": s}) for s in rng.sample(range(1, epochs * NB), n_steps)]
    points += [(e * NB - 0.5, {"kind": "save", "epoch": e, "phase": p})
               for e, p in zip(range(1, epochs + 1), phases)]
    kills = [k for _, k in sorted(points, key=lambda t: t[0])]
    for i in sorted(rng.sample(range(len(kills)), n_timers), reverse=True):
        kills.insert(i, [{"kind": "timer", "after_s": round(rng.uniform(0.0, 1.0), 3)}, kills[i]])
    steps = [{"argv": train_argv(out, seed, epochs), "resume_argv": resume_argv(out), "out": str(out),
              "kill": k, "spawn": spawn} for k in kills]
    steps.append({"argv": train_argv(out, seed, epochs), "resume_argv": resume_argv(out), "out": str(out),
                  "spawn": spawn})
    return steps


@pytest.fixture(scope="module")
def campaign(work) -> dict[str, list[dict]]:
    """One driver run (imports paid once) of every process scenario; results by scenario name."""
    rng = random.Random(15)
    phases = list(PHASES) + [rng.choice(PHASES)]
    rng.shuffle(phases)
    busy, marker, release = work / "busy", work / "busy.paused", work / "busy.release"
    groups = {
        "references": [{"argv": train_argv(work / f"ref{seed}", seed)} for seed in (0, 1)],
        "race": [{"argv": train_argv(work / "race", seed), "background": True} for seed in (3, 4)],
        "busy": [{"argv": train_argv(busy, 5, epochs=4), "background": True,
                  "kill": {"kind": "pause", "at": 12, "marker": str(marker), "until": str(release)}},
                 {"argv": [*train_argv(busy, 6), "--overwrite"], "after_file": str(marker)},
                 {"argv": resume_argv(busy)},
                 {"argv": ["eval", str(busy)]},  # readers are not locked out
                 {"touch": str(release)}],
        "kills0": kill_plan(rng, work / "killed0", 0, phases[:3]),
        "kills1": kill_plan(rng, work / "killed1", 1, phases[3:]),
        "ctrlc": [{"argv": train_argv(work / "ctrlc", 0),
                   "kill": {"kind": "step", "at": 15, "signal": "INT"}},
                  {"argv": resume_argv(work / "ctrlc")}],
    }
    results = drive(work, [step for steps in groups.values() for step in steps], "campaign")
    out, i = {}, 0
    for name, steps in groups.items():
        out[name], i = results[i:i + len(steps)], i + len(steps)
    return out


@pytest.fixture(scope="module")
def references(work, campaign) -> dict[int, Path]:
    """Uninterrupted runs for seeds 0 and 1."""
    assert [r.get("rc") for r in campaign["references"]] == [0, 0], campaign["references"]
    return {seed: work / f"ref{seed}" for seed in (0, 1)}


def test_kill_9_anywhere_then_resume_equals_the_uninterrupted_run(work, campaign, references):
    results = campaign["kills0"] + campaign["kills1"]
    killed = [r for r in results if r.get("signal") == signal.SIGKILL]
    assert len(killed) >= 20, results
    assert [campaign[k][-1].get("rc") for k in ("kills0", "kills1")] == [0, 0], results
    resumed = [r for r in results if "--resume" in r["argv"]]
    assert len(resumed) >= 15
    assert any("taking over the stale lock" in r["stderr"] for r in resumed)  # reported, not silent
    assert all("Traceback" not in r["stderr"] for r in results)
    for seed, ref in references.items():
        assert_same_run(work / f"killed{seed}", ref)


def test_ctrl_c_mid_epoch_then_resume_keeps_the_epoch_statistics(work, campaign, references):
    res = campaign["ctrlc"]
    assert [r.get("rc") for r in res] == [130, 0], res
    assert "checkpoint written" in res[0]["stderr"]
    assert_same_run(work / "ctrlc", references[0])  # quant_health of the interrupted epoch included


def test_concurrent_writers_one_wins_the_other_is_refused(work, campaign):
    out = work / "race"
    results = dict(zip((3, 4), campaign["race"]))
    assert sorted(r.get("rc") for r in results.values()) == [0, 2], results
    winner = next(seed for seed, r in results.items() if r.get("rc") == 0)
    loser_err = next(r["stderr"] for r in results.values() if r.get("rc") == 2)
    assert ("in use by pid" in loser_err or "already holds a run" in loser_err) and loser_err.count("\n") == 1
    run = json.loads((out / "run.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    _, meta = read_checkpoint(out)
    assert run["seed"] == metrics["config"]["seed"] == meta["config"]["seed"] == winner  # one run, unmixed
    assert len(metrics["epoch_seconds"]) == EPOCHS


def test_overwrite_or_resume_of_a_run_in_progress_is_refused(work, campaign):
    owner, overwrite, resume, evaluate, _ = campaign["busy"]
    for r in (overwrite, resume):
        assert r.get("rc") == 2 and "in use by pid" in r["stderr"] and r["stderr"].count("\n") == 1, r
    assert evaluate.get("rc") == 0
    assert owner.get("rc") == 0, owner
    metrics = json.loads((work / "busy" / "metrics.json").read_text())
    assert len(metrics["epoch_seconds"]) == 4 and metrics["config"]["seed"] == 5


def test_real_cli_process_killed_then_resumed(work, references):
    """The console entry point itself (``python -m hwsim.cli``), killed from outside at a random moment
    after its first checkpoint, then resumed."""
    out = work / "external"
    proc = subprocess.Popen([sys.executable, "-m", "hwsim.cli", *train_argv(out, 1)], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (out / "checkpoint.npz").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(random.Random(1).uniform(0.0, 0.3))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    res = subprocess.run([sys.executable, "-m", "hwsim.cli", *resume_argv(out)], env=_env(),
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    assert_same_run(out, references[1])


# --------------------------------------------------------------------------- corrupt files
def _rewrite_checkpoint(run: Path, change) -> None:
    arrays, meta = read_checkpoint(run)
    change(arrays, meta)
    np.savez(run / "checkpoint.npz", **arrays, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))


def _truncate(run):
    data = (run / "checkpoint.npz").read_bytes()
    (run / "checkpoint.npz").write_bytes(data[: len(data) // 2])


def _nan_weight(arrays, meta):
    arrays["model/0.W"] = arrays["model/0.W"].copy()
    arrays["model/0.W"][3, 1] = np.nan


def _no_examples_seen(arrays, meta):
    """A finished epoch's batches with no examples seen (was a ZeroDivisionError)."""
    meta.update(epoch=meta["epoch"] - 1, batch=NB, history={k: v[:-1] for k, v in meta["history"].items()})


def _garbage_meta(run):
    arrays, _ = read_checkpoint(run)
    np.savez(run / "checkpoint.npz", **arrays, meta=np.frombuffer(b"{garbage", np.uint8))


BOTH, RESUME = ("resume", "eval"), ("resume",)
#: name -> (damage(run_dir), text of the error line, commands that read what is damaged)
CHECKPOINT_CASES = {
    "truncated": (_truncate, "corrupt checkpoint", BOTH),
    "empty": (lambda run: (run / "checkpoint.npz").write_bytes(b""), "empty file", BOTH),
    "meta_json": (_garbage_meta, "corrupt checkpoint", BOTH),
    "nan_weight": (lambda run: _rewrite_checkpoint(run, _nan_weight), "weight '0.W' holds non-finite values",
                   BOTH),
    "step": (lambda run: _rewrite_checkpoint(run, lambda a, m: m.update(step=m["step"] + 1)), "'step'",
             RESUME),
    "seen": (lambda run: _rewrite_checkpoint(run, _no_examples_seen), "'partial'", RESUME),
    "adam_m": (lambda run: _rewrite_checkpoint(run, lambda a, m: a.pop("optim/0.W.m")),
               "holds ['v'], expected ['m', 'v']", RESUME),
    "history": (lambda run: _rewrite_checkpoint(run, lambda a, m: m["history"]["train_loss"].pop()),
                "'history'", RESUME),
    "t": (lambda run: _rewrite_checkpoint(run, lambda a, m: a.update({"optim/t": np.asarray(0)})), "'t'",
          RESUME),
    "no_meta_keys": (lambda run: _rewrite_checkpoint(run, lambda a, m: m.clear()), "cannot resume", RESUME),
}


def _cases(work: Path, ref: Path) -> list[tuple[str, Path, list[str], str]]:
    """(name, path that must stay unchanged, argv, text the error line must contain)."""
    cases = []
    for name, (damage, needle, commands) in CHECKPOINT_CASES.items():
        for command in commands:
            run = work / f"corrupt-{name}-{command}"
            shutil.copytree(ref, run)
            damage(run)
            argv = resume_argv(run) if command == "resume" else ["eval", str(run)]
            cases.append((f"{name}-{command}", run, argv, needle))
    for command in ("resume", "eval"):
        run = work / f"garbage-run-json-{command}"
        shutil.copytree(ref, run)
        (run / "run.json").write_text("{not json")
        argv = resume_argv(run) if command == "resume" else ["eval", str(run)]
        cases.append((f"run.json-{command}", run, argv, "run.json: not valid JSON"))
    afile = work / "a-file"
    afile.write_text("x")
    cases.append(("out-is-a-file", afile, train_argv(afile, 0), "exists and is not a directory"))
    adir = work / "a-dir"
    adir.mkdir()
    cases.append(("csv-is-a-dir", adir, ["cost", "--model", "mlp:64-10", "--csv", str(adir)], "--csv"))
    data = work / "nan.npz"
    X = np.random.default_rng(0).random((40, 4), dtype=np.float32)
    X[9, 2] = np.nan
    np.savez(data, X=X, y=np.arange(40) % 2)
    argv = ["train", "--data", f"npz:{data}", "--model", "mlp:4-2", "--out", str(work / "nan-out")]
    cases.append(("nan-data", work / "nan-out", argv, "X holds NaN at index (9, 2)"))
    text = work / "text.npz"
    text.write_text("hello\n")
    cases.append(("text-npz", work / "text-out", ["train", "--data", f"npz:{text}", "--out",
                                                  str(work / "text-out")], "not an .npz archive"))
    cases.append(("existing-run", ref.parent / "existing", [*train_argv(ref.parent / "existing", 0)],
                  "already holds a run"))
    shutil.copytree(ref, ref.parent / "existing")
    for name, seed in (("seed-negative", "-1"), ("seed-2**64", str(2**64))):
        cases.append((name, work / "seed-out", [*train_argv(work / "seed-out", 0), "--seed", seed], "--seed"))
    return cases


@pytest.fixture(scope="module")
def corrupt_results(work, references):
    cases = _cases(work, references[0])
    before = {name: snapshot(path) for name, path, _, _ in cases}
    results = drive(work, [{"argv": argv} for _, _, argv, _ in cases], "corrupt")
    return {name: (r, needle, before[name], snapshot(path))
            for (name, path, _, needle), r in zip(cases, results)}


CASE_NAMES = ([f"{n}-{c}" for n, case in CHECKPOINT_CASES.items() for c in case[2]]
              + ["run.json-resume", "run.json-eval", "out-is-a-file", "csv-is-a-dir", "nan-data", "text-npz",
                 "existing-run", "seed-negative", "seed-2**64"])


@pytest.mark.parametrize("name", CASE_NAMES)
def test_corrupt_input_is_one_error_line_and_nothing_is_written(corrupt_results, name):
    result, needle, before, after = corrupt_results[name]
    err = result["stderr"]
    assert result.get("rc") == 2, (name, result)
    assert "Traceback" not in err and needle in err, (name, err)
    lines = [line for line in err.splitlines() if line]
    # argparse: usage, then the error
    argparse_usage = lines[0].startswith("usage:") and "--seed" in lines[-1]
    assert len(lines) == 1 or argparse_usage, err
    assert after == before, name


# --------------------------------------------------------------------------- the long variant
@pytest.mark.slow
def test_kill_9_long_variant_fresh_processes(work, references):
    """Five seeds, fresh ``python`` per child (no fork), 14+ kills each."""
    rng = random.Random(1515)
    for seed in (0, 1, 2, 3, 4):
        ref = work / f"slowref{seed}"
        assert drive(work, [{"argv": train_argv(ref, seed, 4)}], f"slowref{seed}")[0]["rc"] == 0
        out = work / f"slowkilled{seed}"
        plan = kill_plan(rng, out, seed, [rng.choice(PHASES) for _ in range(4)], n_steps=9, n_timers=2,
                         epochs=4, spawn=True)
        results = drive(work, plan, f"slowkills{seed}")
        assert sum(r.get("signal") == signal.SIGKILL for r in results) >= 14 and results[-1].get("rc") == 0
        assert_same_run(out, ref)
