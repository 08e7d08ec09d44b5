"""Runs ``hwsim`` CLI invocations in fresh processes, optionally killing them at a chosen point.

``python _fault_driver.py PLAN.json RESULT.json``: PLAN is a list of steps ``{"argv": [...], "kill":
KILL or null, "stderr": PATH}``; each step runs ``hwsim.cli.main(argv)`` in a child process (forked
from this one after ``import hwsim.cli``, so the imports are paid once; ``"spawn": true`` in a step
runs it in a fresh ``python -c`` process instead: hooks, then ``hwsim.cli.main``), waits for it and records
``{"rc": exit status}`` or ``{"signal": number}`` (and the argv run) in RESULT. KILL says where the
child sends itself a signal (``"signal"``: "KILL" (default) or "INT"):

- ``{"kind": "step", "at": S}``: when global training step S begins;
- ``{"kind": "timer", "after_s": T}``: T seconds after the child starts (anywhere: claiming the
  directory, loading data, training, writing);
- ``{"kind": "pause", "at": S, "marker": M, "until": U}``: no signal; at global step S create file
  M, then wait until file U exists (holds the run directory for a concurrency test);
- ``{"kind": "save", "epoch": E, "phase": P}``: while writing the end-of-epoch-E checkpoint, at
  phase ``"partial"`` (half of checkpoint.npz's temporary written), ``"before_rename"`` /
  ``"after_rename"`` (around its ``os.replace``), ``"before_json"`` (before checkpoint.json is
  renamed into place) or ``"before_metrics"`` (before metrics.json is).
"""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time


def install(kill) -> None:
    """Arm the hook of ``kill`` (one KILL, a list of them, or None) in this (child) process."""
    if isinstance(kill, list):
        for k in kill:
            install(k)
        return
    if not kill:
        return
    sig = signal.SIGINT if kill.get("signal") == "INT" else signal.SIGKILL

    def fire() -> None:
        os.kill(os.getpid(), sig)

    kind = kill["kind"]
    if kind == "timer":
        t = threading.Timer(kill["after_s"], fire)
        t.daemon = True
        t.start()
        return
    from hwsim import _checkpoint, _train

    if kind in ("step", "pause"):
        original_step = _train._train_step

        def step_hook(model, loss_fn, opt, scheme, xb, yb, step):
            if step == kill["at"] and kind == "step":
                fire()
            elif step == kill["at"]:
                open(kill["marker"], "w").close()
                while not os.path.exists(kill["until"]):
                    time.sleep(0.01)
            return original_step(model, loss_fn, opt, scheme, xb, yb, step)

        _train._train_step = step_hook
        return
    assert kind == "save", kind
    armed = {"on": False}
    original_save, original_write, original_replace = _checkpoint.save, _checkpoint.atomic_write, os.replace

    def save_hook(run_dir, model_state, optim_state, meta):
        armed["on"] = meta["epoch"] == kill["epoch"] and meta["batch"] == 0
        return original_save(run_dir, model_state, optim_state, meta)

    def write_hook(path, write):
        if armed["on"] and kill["phase"] == "partial" and str(path).endswith("checkpoint.npz"):
            def half(f):
                buf = io.BytesIO()
                write(buf)
                f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
                f.flush()
                os.fsync(f.fileno())
                fire()
            return original_write(path, half)
        return original_write(path, write)

    def replace_hook(src, dst):
        name = os.path.basename(str(dst))
        phase = kill["phase"]
        hit = ((phase == "before_rename" and name == "checkpoint.npz")
               or (phase == "before_json" and name == "checkpoint.json")
               or (phase == "before_metrics" and name == "metrics.json" and armed["on"]))
        if armed["on"] and hit:
            fire()
        original_replace(src, dst)
        if armed["on"] and phase == "after_rename" and name == "checkpoint.npz":
            fire()

    _checkpoint.save, _checkpoint.atomic_write, os.replace = save_hook, write_hook, replace_hook


def _child(step: dict) -> None:
    fd = os.open(step["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 2)
    out = os.open(step.get("stdout", os.devnull), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, 1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    install(step.get("kill"))
    from hwsim.cli import main

    try:
        rc = main(step["argv"])
    except SystemExit as exc:  # argparse errors
        rc = exc.code if isinstance(exc.code, int) else 2
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


def _spawned(step: dict) -> dict:
    code = (f"import sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
            f"import _fault_driver as d; d.install({step.get('kill')!r}); from hwsim.cli import main; "
            f"sys.exit(main({step['argv']!r}))")
    with open(step["stderr"], "w") as err, open(step.get("stdout", os.devnull), "w") as out:
        rc = subprocess.run([sys.executable, "-c", code], check=False, stderr=err, stdout=out).returncode
    return {"signal": -rc} if rc < 0 else {"rc": rc}


def _status(status: int) -> dict:
    return {"signal": os.WTERMSIG(status)} if os.WIFSIGNALED(status) else {"rc": os.WEXITSTATUS(status)}


def run_plan(plan: list[dict]) -> list[dict]:
    """Run every step in order (see the module docstring), plus: ``"resume_argv"`` with ``"out"``
    runs ``resume_argv`` when ``out/run.json`` exists (an earlier step got as far as starting the
    run); ``"background": true`` does not wait for the child (all are awaited at the end);
    ``"after_file": F`` first waits until F exists; ``{"touch": F}`` only creates F."""
    results: list[dict] = []
    background = {}
    for step in plan:
        if step.get("after_file"):
            while not os.path.exists(step["after_file"]):
                time.sleep(0.01)
        if "touch" in step:
            open(step["touch"], "w").close()
            open(step["stderr"], "w").close()
            results.append({"rc": 0, "argv": []})
            continue
        if step.get("resume_argv") and os.path.exists(os.path.join(step["out"], "run.json")):
            step = {**step, "argv": step["resume_argv"]}
        if step.get("spawn"):
            results.append({**_spawned(step), "argv": step["argv"]})
            continue
        pid = os.fork()
        if pid == 0:
            try:
                _child(step)
            finally:
                os._exit(99)
        results.append({"argv": step["argv"]})
        if step.get("background"):
            background[pid] = results[-1]
        else:
            results[-1].update(_status(os.waitpid(pid, 0)[1]))
    for pid, result in background.items():
        result.update(_status(os.waitpid(pid, 0)[1]))
    return results


if __name__ == "__main__":
    from numba.core.registry import cpu_target

    import hwsim.cli  # noqa: F401  (imported once, before the children fork)

    cpu_target.target_context.refresh()  # Numba's one-time setup (no threads): ~2 s saved per child

    with open(sys.argv[1]) as fh:
        plan = json.load(fh)
    with open(sys.argv[2], "w") as fh:
        json.dump(run_plan(plan), fh)
