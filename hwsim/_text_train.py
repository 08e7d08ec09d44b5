"""Character-level language-model training with truncated BPTT (the seed's text8 protocol, 001:763–780).

The training text is cut into ``batch`` parallel streams; each update takes the next ``bptt``
characters of every stream (one-hot inputs, the following characters as targets), so a recurrent
layer's state carries from one chunk to the next (``carry``; gradients stop at the chunk boundary)
and is reset at the start of every epoch and every ``reset_every`` updates. Loss: softmax
cross-entropy at every step, averaged over the ``batch · bptt`` positions; the metric is bits per
character (bpc), that mean in bits. The global gradient norm is clipped to ``clip`` (hwsim's
choice for stable short runs; 0 disables it). Deterministic: no shuffling, seeds only through the
precision policy and initialisation.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

from . import _checkpoint, _rundir
from ._optim import make_optimizer
from ._precision import Precision
from ._text import TextData, load_text
from .layers import SoftmaxCrossEntropy

__all__ = ["cmd_train_text", "evaluate_text", "is_text_spec", "train_text"]

LN2 = math.log(2.0)


def is_text_spec(spec: str | None) -> bool:
    """True for the text data specs (``text``, ``text:PATH``)."""
    return isinstance(spec, str) and (spec == "text" or spec.startswith("text:"))


def _streams(codes: np.ndarray, batch: int, what: str) -> np.ndarray:
    n = (len(codes) - 1) // batch
    if n < 2:
        raise ValueError(f"{what}: {len(codes)} characters are too few for {batch} streams (batch too large)")
    return codes[:n * batch + 1], n


def _chunks(codes: np.ndarray, batch: int, bptt: int, what: str):
    """Yield (inputs (batch, T), targets (batch, T)) chunk by chunk along ``batch`` streams."""
    codes, n = _streams(codes, batch, what)
    x = codes[:n * batch].reshape(batch, n)
    y = codes[1:n * batch + 1].reshape(batch, n)
    for i in range(0, n, bptt):
        yield x[:, i:i + bptt], y[:, i:i + bptt]


def _set_carry(model, carry: bool, reset: bool) -> None:
    for layer in model.layers:
        if hasattr(layer, "carry"):
            layer.carry = carry
            if reset:
                layer.reset_state()


def _onehot(codes: np.ndarray, vocab: int, dtype) -> np.ndarray:
    return np.eye(vocab, dtype=dtype)[codes]


def _check_model(model, data: TextData) -> None:
    if tuple(model.input_shape) != (data.vocab,) or tuple(model.output_shape) != (data.vocab,):
        raise ValueError(f"the model maps {model.input_shape} -> {model.output_shape} per step; the text "
                         f"{data.name!r} needs ({data.vocab},) -> ({data.vocab},) (its alphabet size), "
                         f"e.g. seq:{data.vocab},cgru(256),dense({data.vocab})")


def evaluate_text(model, codes: np.ndarray, vocab: int, *, batch: int = 16, bptt: int = 100) -> float:
    """Bits per character of the model's next-character predictions on ``codes`` (states carried
    across chunks, inference mode)."""
    dtype = model.parameters()[0][2].dtype
    _set_carry(model, True, True)
    loss_fn, total, count = SoftmaxCrossEntropy(), 0.0, 0
    try:
        for xb, yb in _chunks(codes, batch, bptt, "validation text"):
            logits = model.forward(_onehot(xb, vocab, dtype), training=False)
            loss = float(loss_fn.forward(logits.reshape(-1, vocab).astype(np.float64), yb.reshape(-1)))
            total += loss * yb.size
            count += yb.size
    finally:
        _set_carry(model, False, True)
    return total / count / LN2


def _clip(model, clip: float) -> None:
    grads = [g for layer in model.layers for g in layer.grads().values()]
    norm = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads))
    if clip and norm > clip:
        for g in grads:
            g *= g.dtype.type(clip / norm)


def _sparsities(model) -> dict:
    out = {}
    for layer in model.layers:
        if hasattr(layer, "reset_sparsity"):
            out[layer.name] = layer.sparsity
            layer.reset_sparsity()
    return out


def train_text(model, data: TextData, precision: Precision, *, epochs: int, batch: int = 64, bptt: int = 50,
               optimizer: str = "adam", lr: float = 1e-3, clip: float = 5.0, reset_every: int = 1000,
               max_updates: int | None = None, out=None, progress: bool = True) -> dict:
    """Train ``model`` (per-step input and output width = the alphabet size, e.g.
    ``seq:27,cgru(256),dense(27)``) on ``data`` at ``precision``; returns the metrics dict:
    ``train_bpc`` / ``valid_bpc`` / ``epoch_seconds`` / ``gate_sparsity`` (per epoch; sparsity of each
    conditional layer's update gate over the epoch's training steps), ``valid_bpc_final``.
    ``max_updates``: stop each epoch after this many updates (short runs). With ``out``:
    ``out/metrics.json`` and ``out/checkpoint.npz`` (model and optimizer state) after every epoch (no
    resume for text runs). Progress: one line per epoch on stderr when ``progress``.
    """
    for name, v in (("epochs", epochs), ("batch", batch), ("bptt", bptt), ("reset_every", reset_every)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if max_updates is not None and (not isinstance(max_updates, int) or max_updates < 1):
        raise ValueError(f"max_updates must be None or an integer >= 1, got {max_updates!r}")
    if not (clip >= 0 and math.isfinite(clip)):
        raise ValueError(f"clip must be >= 0 (0 = no clipping), got {clip!r}")
    _check_model(model, data)
    _streams(data.train, batch, "training text")
    model.set_precision(precision)
    opt = make_optimizer(optimizer, model, lr=lr)
    dtype = model.parameters()[0][2].dtype
    loss_fn = SoftmaxCrossEntropy()
    hist: dict = {"train_bpc": [], "valid_bpc": [], "epoch_seconds": [], "gate_sparsity": []}
    meta = {"model": getattr(model, "spec", repr(model)), "data": data.to_dict(),
            "precision": precision.to_dict(),
            "config": {"epochs": epochs, "batch": batch, "bptt": bptt, "optimizer": optimizer, "lr": lr,
                       "clip": clip, "reset_every": reset_every, "max_updates": max_updates}}
    step = 0
    for epoch in range(epochs):
        for layer in model.layers:
            if hasattr(layer, "on_epoch_start"):
                layer.on_epoch_start(epoch)
        _set_carry(model, True, True)
        _sparsities(model)
        t0, total, count, updates = time.perf_counter(), 0.0, 0, 0
        for xb, yb in _chunks(data.train, batch, bptt, "training text"):
            if updates and updates % reset_every == 0:
                _set_carry(model, True, True)
            model.set_step(step)
            logits = model.forward(_onehot(xb, data.vocab, dtype), training=True)
            loss = float(loss_fn.forward(logits.reshape(-1, data.vocab), yb.reshape(-1)))
            if not math.isfinite(loss):
                raise FloatingPointError(f"training diverged: non-finite loss at epoch {epoch + 1}, step "
                                         f"{step}")
            model.backward(loss_fn.backward().reshape(logits.shape))
            _clip(model, clip)
            opt.step()
            total += loss * yb.size
            count += yb.size
            step += 1
            updates += 1
            if max_updates is not None and updates >= max_updates:
                break
        seconds = time.perf_counter() - t0
        hist["gate_sparsity"].append(_sparsities(model))
        hist["train_bpc"].append(total / count / LN2)
        hist["valid_bpc"].append(evaluate_text(model, data.valid, data.vocab))
        hist["epoch_seconds"].append(seconds)
        _set_carry(model, False, True)
        if progress:
            print(f"epoch {epoch + 1}/{epochs}: train {hist['train_bpc'][-1]:.3f} bpc, valid "
                  f"{hist['valid_bpc'][-1]:.3f} bpc ({seconds:.1f} s, {updates} updates)", file=sys.stderr)
        metrics = {**hist, "valid_bpc_final": hist["valid_bpc"][-1], **meta}
        if out is not None:
            _checkpoint.save(out, model.state_dict(), opt.state_dict(), {**meta, "epoch": epoch + 1})
            _checkpoint.write_json(Path(out) / "metrics.json", metrics)
    return metrics


def cmd_train_text(args) -> int:
    """``hwsim train --data text[:PATH] --model seq:V,...``: `train_text` into RUN_DIR (``--resume``,
    ``--scheme``, ``--split``, ``--schedule``, weight decay and SGD momentum are not supported here)."""
    from ._cli_common import precision_from_args
    from ._model import build_model
    from ._report import md_table

    unsupported = [flag for flag, on in (("--resume", args.resume),
                                         ("--scheme", getattr(args, "scheme", None)),
                                         ("--split", args.split), ("--schedule", args.schedule),
                                         ("--weight-decay", args.weight_decay)) if on]
    if unsupported:
        raise ValueError(f"text data: {', '.join(unsupported)} not supported for character-level training")
    data = load_text(args.data)
    precision = precision_from_args(args)
    model = build_model(args.model, (data.vocab,), data.vocab, seed=args.seed)
    out = Path(args.out)
    with _rundir.claim_run_dir(out,
                               overwrite=getattr(args, "overwrite", False)):  # one writer, no silent reuse
        # split/scheme None: the keys `hwsim eval` reads (it does not evaluate text runs: use evaluate_text)
        _rundir.write_json(out / "run.json", {"model": args.model, "data": args.data, "seed": args.seed,
                                              "split": None, "scheme": None,
                                              "bptt": args.bptt, "batch": args.batch, "lr": args.lr,
                                              "precision": precision.to_dict(), "dataset": data.to_dict()})
        m = train_text(model, data, precision, epochs=args.epochs, batch=args.batch, bptt=args.bptt,
                       optimizer=args.optimizer, lr=args.lr, out=out, progress=not args.quiet)
    print(md_table(["run", "valid bpc", "train bpc", "epochs", "precision"], [[
        str(out), f"{m['valid_bpc_final']:.3f}", f"{m['train_bpc'][-1]:.3f}", len(m["epoch_seconds"]),
        str(precision)]]))
    print(f"wrote {out / 'metrics.json'}")
    return 0
