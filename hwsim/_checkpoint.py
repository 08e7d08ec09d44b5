"""Checkpoints: one ``checkpoint.npz`` per run directory, written atomically (temp file + rename).

The npz holds ``model/<layer>.<name>`` arrays (weights and buffers), ``optim/<key>`` arrays
(optimizer state) and ``meta``: the JSON metadata as uint8 bytes, so one file is the whole state
and loading needs no pickle. ``checkpoint.json`` beside it is a human-readable copy of ``meta``.

A checkpoint is data a user hands back to us: `load` and `check_meta` / `apply_states` turn a
truncated, empty, tampered or non-finite file into one `CheckpointError` line naming the file and
what is wrong, before any state changes.
"""
from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np

from ._rundir import atomic_write, write_json

__all__ = [
    "CHECKPOINT",
    "CheckpointError",
    "apply_states",
    "atomic_write",
    "check_meta",
    "load",
    "save",
    "write_json",
]

CHECKPOINT = "checkpoint.npz"
#: The per-epoch lists of a checkpoint's ``history``: a classification run's, a regression (mse) run's
_HISTORY = ("train_loss", "train_accuracy", "test_accuracy_per_epoch", "test_loss_per_epoch", "epoch_seconds",
            "lr", "quant_health")
_REGRESSION_HISTORY = ("train_loss", "test_mse_per_epoch", "test_loss_per_epoch", "epoch_seconds", "lr",
                       "quant_health")


class CheckpointError(ValueError):
    """A checkpoint file is unreadable or inconsistent (the message names the file)."""


def save(run_dir, model_state: dict, optim_state: dict, meta: dict) -> Path:
    """Write ``run_dir/checkpoint.npz`` (and ``checkpoint.json``) atomically; returns the npz path."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(meta, indent=2)
    arrays = {**{f"model/{k}": v for k, v in model_state.items()},
              **{f"optim/{k}": v for k, v in optim_state.items()},
              "meta": np.frombuffer(text.encode(), dtype=np.uint8)}
    path = run_dir / CHECKPOINT
    atomic_write(path, lambda f: np.savez(f, **arrays))
    write_json(run_dir / "checkpoint.json", meta)
    return path


def load(run_dir) -> tuple[dict, dict, dict]:
    """(model state, optimizer state, meta) from ``run_dir/checkpoint.npz``.

    FileNotFoundError when it is absent; `CheckpointError` naming the file when it is not a readable
    npz without pickles, lacks its metadata, or holds a non-finite array.
    """
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint to resume from: {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise ValueError("a single .npy array, not an npz archive")
            model = {k[6:]: z[k] for k in z.files if k.startswith("model/")}
            optim = {k[6:]: z[k] for k in z.files if k.startswith("optim/")}
            if "meta" not in z.files:
                raise ValueError("no 'meta' entry")
            meta = json.loads(z["meta"].tobytes().decode())
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        reason = "empty file" if path.stat().st_size == 0 else f"{type(exc).__name__}: {exc}"
        raise CheckpointError(f"{path}: corrupt checkpoint, not a readable npz ({reason}); restore it or "
                              f"start the run again with --overwrite") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: corrupt checkpoint metadata (a JSON object expected)")
    for kind, arrays in (("weight", model), ("optimizer state", optim)):
        for key, a in arrays.items():
            if a.dtype.kind not in "biuf":
                raise CheckpointError(f"{path}: {kind} {key!r} has dtype {a.dtype}, not a number array")
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                first = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
                raise CheckpointError(f"{path}: {kind} {key!r} holds non-finite values (first at index "
                                      f"{first}); the checkpoint is damaged")
    return model, optim, meta


def _fail(path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"{path}: inconsistent checkpoint metadata: {what}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_meta(path: Path, meta: dict, *, n_examples: int, batch: int, regression: bool) -> None:
    """`CheckpointError` unless the position (``epoch``, ``batch``, ``step``), ``history`` and
    ``partial`` of ``meta`` agree with each other and with ``n_examples`` examples in minibatches of
    ``batch`` (``step = epoch * batches_per_epoch + batch``; ``partial.seen`` = the examples of the
    epoch's first ``batch`` batches). ``history`` holds one entry per epoch in each list a run of
    this kind records: ``regression`` (an mse run) has ``test_mse_per_epoch`` where classification
    has ``train_accuracy`` and ``test_accuracy_per_epoch``."""
    nb = -(-n_examples // batch)
    for key in ("epoch", "batch", "step"):
        if not _is_int(meta.get(key)) or meta[key] < 0:
            raise _fail(path, f"{key!r} must be an integer >= 0, got {meta.get(key)!r}")
    epoch, b, step = meta["epoch"], meta["batch"], meta["step"]
    if b > nb:
        raise _fail(path, f"'batch' {b} exceeds the {nb} batches of an epoch")
    if step != epoch * nb + b:
        raise _fail(path, f"'step' {step} != epoch {epoch} * {nb} batches + batch {b}")
    hist = meta.get("history")
    keys = _REGRESSION_HISTORY if regression else _HISTORY
    if not isinstance(hist, dict) or any(not isinstance(hist.get(k), list) or len(hist[k]) != epoch
                                         for k in keys):
        raise _fail(path, f"'history' must hold {epoch} entries for each of {', '.join(keys)}")
    part = meta.get("partial")
    seen = min(b * batch, n_examples)
    if (not isinstance(part, dict) or not all(_is_num(part.get(k)) for k in ("loss", "seconds"))
            or not _is_int(part.get("seen")) or part["seen"] != seen
            or not _is_int(part.get("correct")) or not 0 <= part["correct"] <= seen):
        raise _fail(path, f"'partial' must hold loss, seconds, seen = {seen} and 0 <= correct <= seen "
                          f"for {b} batches of {batch}")
    stats = part.get("stats", {})
    if not isinstance(stats, dict) or not all(
            isinstance(r, dict) and all(isinstance(s, dict) for s in r.values()) for r in stats.values()):
        raise _fail(path, "'partial.stats' must map layer -> role -> statistics")


def apply_states(path: Path, model, opt, model_state: dict, optim_state: dict, step: int) -> None:
    """Load the weights into ``model`` and the state into ``opt`` (an `hwsim` Adam or SGD), after
    checking the optimizer entries: ``t`` = ``step``, ``lr`` finite, and per parameter exactly the
    moment arrays the optimizer keeps (Adam: m, v; SGD with momentum: v; none before the first step)
    in the parameter's shape. `CheckpointError` naming ``path`` otherwise."""
    from ._optim import Adam

    t, lr = optim_state.get("t"), optim_state.get("lr")
    if t is None or lr is None or np.ndim(t) or np.ndim(lr) or int(t) != step or not float(lr) > 0:
        raise CheckpointError(f"{path}: optimizer state 't' must be the step count {step} and 'lr' > 0, "
                              f"got t={t!r}, lr={lr!r}")
    moments = ({"m", "v"} if isinstance(opt, Adam) else {"v"} if getattr(opt, "momentum", 0) else set())
    known = {"t", "lr"}
    for layer, name in opt.slots:
        prefix = f"{layer.index}.{name}."
        have = {k[len(prefix):] for k in optim_state if k.startswith(prefix)}
        want = moments if step else set()
        if have != want:
            raise CheckpointError(f"{path}: optimizer state of {layer.name}.{name} holds "
                                  f"{sorted(have) or 'nothing'}, expected {sorted(want) or 'nothing'}")
        shape = getattr(layer, name).shape
        for k in have:
            if optim_state[prefix + k].shape != shape:
                raise CheckpointError(f"{path}: optimizer state {prefix + k!r} has shape "
                                      f"{optim_state[prefix + k].shape}, the parameter {shape}")
        known |= {prefix + k for k in have}
    extra = sorted(set(optim_state) - known)
    if extra:
        raise CheckpointError(f"{path}: unexpected optimizer state {extra}")
    try:
        model.load_state_dict(model_state)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: the weights do not fit the model: {exc}") from None
    opt.load_state_dict(optim_state)
