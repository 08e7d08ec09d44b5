"""Checkpoints: one ``checkpoint.npz`` per run directory, written atomically (temp file + rename).

The npz holds ``model/<layer>.<name>`` arrays (weights and buffers), ``optim/<key>`` arrays
(optimizer state) and ``meta``: the JSON metadata as uint8 bytes, so one file is the whole state
and loading needs no pickle. ``checkpoint.json`` beside it is a human-readable copy of ``meta``.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

CHECKPOINT = "checkpoint.npz"


def atomic_write(path: Path, write) -> None:
    """Call ``write(file_object)`` on a temp file in ``path``'s folder, then rename it to ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj) -> None:
    atomic_write(path, lambda f: f.write((json.dumps(obj, indent=2) + "\n").encode()))


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
    """(model state, optimizer state, meta) from ``run_dir/checkpoint.npz``."""
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint to resume from: {path} does not exist")
    with np.load(path, allow_pickle=False) as z:
        model = {k[6:]: z[k] for k in z.files if k.startswith("model/")}
        optim = {k[6:]: z[k] for k in z.files if k.startswith("optim/")}
        meta = json.loads(z["meta"].tobytes().decode())
    return model, optim, meta
