"""The training loop: mini-batch training at a precision policy, evaluation, checkpoints, resume.

Determinism: the batch order of epoch ``e`` is ``numpy.random.default_rng([seed, e]).permutation``,
quantization seeds follow the rule in ``hwsim._precision`` (a function of the policy seed, layer,
role and global step) and dropout masks the one in ``hwsim.layers.Dropout``; so a run resumed from
a checkpoint (written at the end of every epoch, or on Ctrl-C after the current batch) produces the
same weights, bit for bit, as an uninterrupted run.

Scheme hooks (``scheme=``, any object; every method optional):
- ``on_gradients(model, step)``: after backward, before the optimizer — add a regularization
  gradient in place to the arrays of ``layer.grads()`` (e.g. L1, group lasso).
- ``after_step(model, step)``: after every optimizer step — e.g. re-apply pruning masks in place to
  ``layer.params()`` arrays (or via ``layer.set_param``).
- ``on_epoch_end(model, epoch, metrics)``: after each epoch's evaluation (metrics so far).
"""
from __future__ import annotations

import math
import platform
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import _checkpoint
from ._anneal import anneal_after_step, anneal_record
from ._optim import make_optimizer, parse_schedule
from ._precision import ROLES, Precision, RoleFormat
from ._xp import get_array_module
from .layers import DivergenceError, SoftmaxCrossEntropy
from .layers._dense import WeightedLayer


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of a run (stored in checkpoints; a resume must match them)."""

    epochs: int
    batch: int
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    try:
        hwsim_version = version("hwsim")
    except PackageNotFoundError:
        hwsim_version = "unknown"
    return {"hwsim": hwsim_version, "numpy": np.__version__, "python": platform.python_version()}


def _as_arrays(model, X, y):
    """X in the model's parameter dtype and array module, y as int64 class indices."""
    params = model.parameters()
    ref = params[0][2] if params else np.zeros(0, np.float32)
    xp = get_array_module(ref)
    X = xp.asarray(X, dtype=ref.dtype if ref.dtype.kind == "f" else np.float32)
    expect = tuple(model.input_shape)
    if tuple(X.shape[1:]) != expect:
        raise ValueError(f"data have example shape {tuple(X.shape[1:])}, the model expects {expect}")
    return X, xp.asarray(y).astype(np.int64, copy=False)


def evaluate(model, X, y, precision: Precision | None = None, *, batch: int = 1024) -> dict:
    """``{"accuracy": fraction correct, "loss": mean cross-entropy}`` of inference at ``precision``
    (the model's current policy when None)."""
    if precision is not None:
        model.set_precision(precision)
    X, y = _as_arrays(model, X, y)
    if len(X) == 0:
        raise ValueError("evaluate needs at least one example")
    loss_fn = SoftmaxCrossEntropy()
    total, correct = 0.0, 0
    for i in range(0, len(X), batch):
        logits = model.forward(X[i:i + batch], training=False)
        yb = y[i:i + batch]
        total += float(loss_fn.forward(logits, yb)) * len(yb)
        correct += int((logits.argmax(axis=1) == yb).sum())
    return {"accuracy": correct / len(X), "loss": total / len(X)}


def quant_health(model) -> dict:
    """``{layer: {role: {n, saturated, flushed_to_zero, max_abs_error, mean_abs_error}}}`` (fractions
    of the elements quantized since the last ``model.reset_stats()``)."""
    out = {}
    for layer in model.layers:
        roles = {}
        for role in ROLES:
            st = layer.stats.get(role)
            if st is not None and st.n:
                mean = st.mean_abs_error
                roles[role] = {"n": st.n, "saturated": st.fraction_saturated,
                               "flushed_to_zero": st.fraction_flushed_to_zero,
                               "max_abs_error": st.max_abs_error,
                               "mean_abs_error": None if math.isnan(mean) else mean}
        if roles:
            out[layer.name] = roles
    return out


@contextmanager
def _restoring_precision(model, precision: Precision):
    """Re-apply ``precision`` on exit (undoes `_prequantize_inputs`' flag)."""
    try:
        yield
    finally:
        model.set_precision(precision)


class _InterruptFlag:
    """Defers Ctrl-C to the end of the current batch (main thread only; a second Ctrl-C aborts)."""

    def __init__(self):
        self.set = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.set:
            raise KeyboardInterrupt
        self.set = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


def _prequantize_inputs(model, *arrays):
    """Quantize the data once when the first arithmetic layer would quantize its input with a
    deterministic `RoleFormat` (same values every batch; quantization is elementwise, so reshapes
    and zero padding before it do not matter). Returns the arrays; that layer then skips it."""
    first = next((l for l in model.layers if not l.passes_grid), None)
    q = None if first is None else first.precision.activation
    if not (isinstance(first, WeightedLayer) and first.quantize_input and isinstance(q, RoleFormat)
            and q.rounding != "stochastic"):
        return arrays
    out = tuple(first.quantize("activation", a, 0) if len(a) else a for a in arrays)
    first.quantize_input = False
    return out


def _diagnose(model, xb, yb, err: DivergenceError | None = None) -> DivergenceError:
    """Locate the first non-finite tensor of a batch whose loss was not finite (or that raised
    ``err``): a master weight made non-finite by the previous update, else the first layer and role
    of this batch's forward/backward pass."""
    for layer in model.layers:
        for name, a in layer.params().items():
            if not bool(get_array_module(a).isfinite(a).all()):
                return DivergenceError(layer.name, "update", f"master weight {name!r} became non-finite")
    if err is not None:
        return err
    model.set_flags(check_finite=True)
    try:
        logits = model.forward(xb, training=True)
        model.backward(_loss_grad(logits, yb))
    except DivergenceError as err:
        return err
    finally:
        model.set_flags(check_finite=False)
    return DivergenceError("loss", "loss", "the logits are finite but the loss is not")


def _loss_grad(logits, yb):
    fn = SoftmaxCrossEntropy()
    fn.forward(logits, yb)
    return fn.backward()


def _train_step(model, loss_fn, opt, scheme, xb, yb, step: int):
    """Forward, loss, backward, scheme hooks and the optimizer step of one batch: (loss, logits)."""
    logits = model.forward(xb, training=True)
    loss = float(loss_fn.forward(logits, yb))
    if not math.isfinite(loss):
        raise _diagnose(model, xb, yb)
    model.backward(loss_fn.backward())
    if scheme is not None and hasattr(scheme, "on_gradients"):
        scheme.on_gradients(model, step)
    opt.step()
    if scheme is not None and hasattr(scheme, "after_step"):
        scheme.after_step(model, step)
    return loss, logits


def train(model, data, precision: Precision, *, epochs: int, batch: int, optimizer: str = "adam",
          lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 0.0, schedule=None,
          seed: int = 0, out=None, resume: bool = False, progress: bool = True, scheme=None,
          health_every: int = 10) -> dict:
    """Train ``model`` on ``data`` (an ``hwsim.Dataset``: X_train, y_train, X_test, y_test,
    input_shape, num_classes, name) at ``precision``; returns the metrics dict.

    Loss: softmax cross-entropy. ``optimizer``: "adam" or "sgd" (``momentum``); ``weight_decay``:
    L2; ``schedule``: None, "step:STEP[:GAMMA]", "cosine[:MIN_LR]" or a schedule object (per epoch).
    Metrics: ``test_accuracy`` (final), ``train_loss`` / ``train_accuracy`` /
    ``test_accuracy_per_epoch`` / ``test_loss_per_epoch`` / ``epoch_seconds`` (per epoch; seconds
    of the training batches only, without evaluation and checkpointing), ``lr`` per epoch,
    ``precision`` (``precision.to_dict()``), ``quant_health`` (per epoch: `quant_health`, over the
    quantizations of every ``health_every``-th batch — collecting statistics costs about a third of
    a quantize call, so it is sampled; 1 = every batch), ``annealing`` (per epoch, only for models
    with noisy or mollified layers: each one's schedule state, `hwsim._anneal.anneal_record`).
    With ``out``: ``out/metrics.json`` and ``out/checkpoint.npz`` after every epoch;
    ``resume=True`` continues from ``out``'s checkpoint (same config and policy required). Ctrl-C
    finishes the current batch, writes a checkpoint (when ``out`` is given) and re-raises
    KeyboardInterrupt. A non-finite loss raises `DivergenceError` naming the layer and role.
    ``progress``: a tqdm bar with loss and accuracy, and one summary line per epoch (only when
    stderr is a terminal).
    """
    cfg = TrainConfig(epochs=epochs, batch=batch, optimizer=optimizer, lr=lr, momentum=momentum,
                      weight_decay=weight_decay, schedule=schedule if schedule is None or isinstance(schedule, str)
                      else getattr(schedule, "spec", type(schedule).__name__), seed=seed)
    if not isinstance(precision, Precision):
        raise TypeError(f"precision must be a hwsim.Precision, got {precision!r}")
    if isinstance(health_every, bool) or not isinstance(health_every, int) or health_every < 1:
        raise ValueError(f"health_every must be an integer >= 1, got {health_every!r}")
    if resume and out is None:
        raise ValueError("resume=True needs out=RUN_DIR (the run directory with the checkpoint)")
    sched = parse_schedule(schedule)
    X, y = _as_arrays(model, data.X_train, data.y_train)
    Xt, yt = _as_arrays(model, data.X_test, data.y_test)
    n = len(X)
    if n == 0:
        raise ValueError("the training set is empty")
    model.set_precision(precision)
    X, Xt = _prequantize_inputs(model, X, Xt)
    opt = make_optimizer(optimizer, model, lr=lr, momentum=momentum, weight_decay=weight_decay)
    meta = {"config": asdict(cfg), "precision": precision.to_dict(), "model": getattr(model, "spec", repr(model)),
            "data": getattr(data, "name", "unknown"), "versions": _versions()}
    hist = {"train_loss": [], "train_accuracy": [], "test_accuracy_per_epoch": [], "test_loss_per_epoch": [],
            "epoch_seconds": [], "lr": [], "quant_health": []}
    epoch0, batch0, step, partial = 0, 0, 0, {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
    if resume:
        mstate, ostate, saved = _checkpoint.load(out)
        _check_resume(saved, meta)
        model.load_state_dict(mstate)
        opt.load_state_dict(ostate)
        epoch0, batch0, step = saved["epoch"], saved["batch"], saved["step"]
        hist, partial = saved["history"], saved["partial"]

    def checkpoint(epoch: int, batch_done: int, part: dict) -> None:
        if out is not None:
            _checkpoint.save(out, model.state_dict(), opt.state_dict(),
                             {**meta, "epoch": epoch, "batch": batch_done, "step": step,
                              "history": hist, "partial": part})

    nb = -(-n // batch)
    xp = get_array_module(X)
    xp_index = (lambda i: i) if xp is np else xp.asarray
    loss_fn = SoftmaxCrossEntropy()
    bar_enabled = progress and sys.stderr.isatty()
    if bar_enabled:
        from tqdm import tqdm
    with _InterruptFlag() as interrupt, _restoring_precision(model, precision):
        for epoch in range(epoch0, epochs):
            opt.lr = lr if sched is None else sched.lr(lr, epoch, epochs)
            perm = np.random.default_rng([seed, epoch]).permutation(n)
            start = batch0 if epoch == epoch0 else 0
            if start == 0:
                partial = {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0}
                model.reset_stats()
            bar = tqdm(total=nb, initial=start, desc=f"epoch {epoch + 1}/{epochs}", leave=False,
                       unit="batch") if bar_enabled else None
            loss_sum, correct, seen = partial["loss"], partial["correct"], partial["seen"]
            t0 = time.perf_counter() - partial["seconds"]
            for b in range(start, nb):
                idx = perm[b * batch:(b + 1) * batch]
                rows = xp_index(idx)
                xb, yb = X[rows], y[rows]
                model.set_step(step)
                model.set_flags(collect_stats=b % health_every == 0)
                try:
                    loss, logits = _train_step(model, loss_fn, opt, scheme, xb, yb, step)
                except DivergenceError as err:
                    if bar is not None:
                        bar.close()
                    err = _diagnose(model, xb, yb, err)
                    where = f"epoch {epoch + 1}, step {step}"
                    raise DivergenceError(err.layer, err.role, f"{err.detail}; {where}" if err.detail else where) from err
                anneal_after_step(model, loss, step)
                step += 1
                loss_sum += loss * len(idx)
                correct += int((logits.argmax(axis=1) == yb).sum())
                seen += len(idx)
                if bar is not None and (b % 10 == 0 or b == nb - 1):
                    bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.3f}", refresh=False)
                    bar.update(b + 1 - bar.n)
                if interrupt.set:
                    if bar is not None:
                        bar.close()
                    part = {"loss": loss_sum, "correct": correct, "seen": seen,
                            "seconds": time.perf_counter() - t0}
                    checkpoint(epoch, b + 1, part)
                    where = f"; checkpoint written to {out} (resume with resume=True / --resume)" if out else ""
                    raise KeyboardInterrupt(f"training interrupted in epoch {epoch + 1}{where}")
            seconds = time.perf_counter() - t0
            if bar is not None:
                bar.close()
            model.set_flags(collect_stats=False)
            ev = evaluate(model, Xt, yt) if len(Xt) else {"accuracy": math.nan, "loss": math.nan}
            hist["train_loss"].append(loss_sum / seen)
            hist["train_accuracy"].append(correct / seen)
            hist["test_accuracy_per_epoch"].append(ev["accuracy"])
            hist["test_loss_per_epoch"].append(ev["loss"])
            hist["epoch_seconds"].append(seconds)
            hist["lr"].append(opt.lr)
            hist["quant_health"].append(quant_health(model))
            annealing = anneal_record(model)
            if annealing:
                hist.setdefault("annealing", []).append(annealing)
            if bar_enabled:
                tqdm.write(f"epoch {epoch + 1}/{epochs}: loss {loss_sum / seen:.4f}, train acc {correct / seen:.4f}, "
                           f"test acc {ev['accuracy']:.4f} ({seconds:.2f} s)", file=sys.stderr)
            metrics = _metrics(hist, precision, meta)
            if scheme is not None and hasattr(scheme, "on_epoch_end"):
                scheme.on_epoch_end(model, epoch, metrics)
            checkpoint(epoch + 1, 0, {"loss": 0.0, "correct": 0, "seen": 0, "seconds": 0.0})
            if out is not None:
                _checkpoint.write_json(Path(out) / "metrics.json", metrics)
    return _metrics(hist, precision, meta)


def _metrics(hist: dict, precision: Precision, meta: dict) -> dict:
    acc = hist["test_accuracy_per_epoch"]
    return {"test_accuracy": acc[-1] if acc else math.nan, **hist, "precision": precision.to_dict(),
            "model": meta["model"], "data": meta["data"], "config": meta["config"], "versions": meta["versions"]}


def _check_resume(saved: dict, meta: dict) -> None:
    diffs = []
    for key in ("precision", "model", "data"):
        if saved.get(key) != meta[key]:
            diffs.append(f"{key}: checkpoint {saved.get(key)!r}, now {meta[key]!r}")
    for key, now in meta["config"].items():
        then = saved.get("config", {}).get(key)
        if key != "epochs" and then != now:
            diffs.append(f"{key}: checkpoint {then!r}, now {now!r}")
    if diffs:
        raise ValueError("cannot resume: the run differs from its checkpoint (" + "; ".join(diffs) + ")")
