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

Layer hook: a layer's ``on_epoch_start(epoch)``, when it has one, runs before the first batch of each
epoch (not when resuming mid-epoch: the state it sets is in the checkpoint), e.g. the once-per-epoch
SVD of ``EstimatedDense``.
"""
from __future__ import annotations

import inspect
import json
import math
import platform
import signal
import sys
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from fixedpoint import QuantStats

from . import _checkpoint, _rundir
from ._anneal import anneal_after_step, anneal_record
from ._optim import make_optimizer, parse_schedule
from ._precision import ROLES, Precision, RoleFormat
from ._xp import array_module_named, get_array_module, to_numpy
from .layers import DivergenceError, MeanSquaredError, SoftmaxCrossEntropy
from .layers._dense import WeightedLayer


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of a run: `train`'s ``config`` (its fields are also `train`'s keywords).

    ``epochs`` and ``batch`` (examples per minibatch): integers >= 1; ``optimizer``: "adam" or "sgd"
    (with ``momentum``); ``lr``: the base learning rate; ``weight_decay``: L2; ``schedule``: None,
    "step:STEP[:GAMMA]" or "cosine[:MIN_LR]" (per epoch); ``seed``: the batch order's seed; ``loss``:
    "xent", "mse" or None (by the targets' dtype). Stored in checkpoints and run.json; a resume
    must match every field but ``epochs``.
    """

    epochs: int
    batch: int
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str | None = None
    seed: int = 0
    loss: str | None = None

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


#: training losses: softmax cross-entropy (integer class labels) and mean squared error (float targets)
LOSSES = ("xent", "mse")


def _is_regression(y) -> bool:
    return np.dtype(y.dtype).kind == "f"


def loss_for(loss: str | None, y):
    """The loss object of ``loss`` (None: xent for integer labels, mse for float targets)."""
    if loss is None:
        loss = "mse" if _is_regression(y) else "xent"
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    if (loss == "mse") != _is_regression(y):
        need = "float regression targets (an npz whose y is floating point)" if loss == "mse" else \
            "integer class labels (float targets train with loss='mse')"
        raise ValueError(f"loss {loss!r} needs {need}, the data have y of dtype {y.dtype}")
    return MeanSquaredError() if loss == "mse" else SoftmaxCrossEntropy()


def _as_arrays(model, X, y):
    """X in the model's parameter dtype and array module, y as int64 class indices (float targets
    of a regression dataset: in the parameter dtype)."""
    params = model.parameters()
    ref = params[0][2] if params else np.zeros(0, np.float32)
    xp = get_array_module(ref)
    X = xp.asarray(X, dtype=ref.dtype if ref.dtype.kind == "f" else np.float32)
    expect = tuple(model.input_shape)
    if tuple(X.shape[1:]) != expect:
        raise ValueError(f"data have example shape {tuple(X.shape[1:])}, the model expects {expect}")
    if _is_regression(y):
        return X, xp.asarray(y, dtype=X.dtype)
    return X, xp.asarray(y).astype(np.int64, copy=False)


def evaluate(model, X, y, precision: Precision | None = None, *, batch: int = 1024) -> dict:
    """``{"accuracy": fraction correct, "loss": mean cross-entropy}`` of inference at ``precision``
    (the model's current policy when None); for float targets ``{"mse": mean squared error,
    "loss": the same}``."""
    if precision is not None:
        model.set_precision(precision)
    X, y = _as_arrays(model, X, y)
    if len(X) == 0:
        raise ValueError("evaluate needs at least one example")
    regression = _is_regression(y)
    loss_fn = loss_for(None, y)
    total, correct = 0.0, 0
    for i in range(0, len(X), batch):
        logits = model.forward(X[i:i + batch], training=False)
        yb = y[i:i + batch]
        total += float(loss_fn.forward(logits, yb)) * len(yb)
        if not regression:
            correct += int((logits.argmax(axis=1) == yb).sum())
    if regression:
        return {"mse": total / len(X), "loss": total / len(X)}
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
    first = next((layer for layer in model.layers if not layer.passes_grid), None)
    q = None if first is None else first.precision.activation
    if not (isinstance(first, WeightedLayer) and first.quantize_input and isinstance(q, RoleFormat)
            and q.rounding != "stochastic"):
        return arrays
    out = tuple(first.quantize("activation", a, 0) if len(a) else a for a in arrays)
    first.quantize_input = False
    return out


def _diagnose(model, xb, yb, err: DivergenceError | None = None, loss_fn=None) -> DivergenceError:
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
        fn = loss_fn if loss_fn is not None else SoftmaxCrossEntropy()
        fn.forward(logits, yb)
        model.backward(fn.backward())
    except DivergenceError as err:
        return err
    finally:
        model.set_flags(check_finite=False)
    return DivergenceError("loss", "loss", "the logits are finite but the loss is not")


def _train_step(model, loss_fn, opt, scheme, xb, yb, step: int):
    """Forward, loss, backward, scheme hooks and the optimizer step of one batch: (loss, logits)."""
    logits = model.forward(xb, training=True)
    loss = float(loss_fn.forward(logits, yb))
    if not math.isfinite(loss):
        raise _diagnose(model, xb, yb, loss_fn=loss_fn)
    model.backward(loss_fn.backward())
    if scheme is not None and hasattr(scheme, "on_gradients"):
        scheme.on_gradients(model, step)
    opt.step()
    if scheme is not None and hasattr(scheme, "after_step"):
        scheme.after_step(model, step)
    return loss, logits


@dataclass
class _EpochTally:
    """Running sums over the training batches of one epoch (a checkpoint's ``partial``).

    ``loss``: the sum of batch-mean loss × batch size; ``correct``: examples classified right (0
    for regression); ``seen``: examples trained on; ``seconds``: time spent in the batches.
    """

    loss: float = 0.0
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0
    _clock: float = field(default=0.0, repr=False, compare=False)

    @classmethod
    def from_checkpoint(cls, partial: dict) -> "_EpochTally":
        return cls(partial["loss"], partial["correct"], partial["seen"], partial["seconds"])

    def to_checkpoint(self, stats: dict | None = None) -> dict:
        """The checkpoint's ``partial`` (with ``stats``, the statistics of a partial epoch)."""
        part = {"loss": self.loss, "correct": self.correct, "seen": self.seen, "seconds": self.seconds}
        return part if stats is None else {**part, "stats": stats}

    def start_clock(self) -> None:
        """Continue timing from ``seconds``."""
        self._clock = time.perf_counter() - self.seconds

    def stop_clock(self) -> None:
        self.seconds = time.perf_counter() - self._clock

    def add(self, loss: float, logits, yb, regression: bool) -> None:
        """Count one batch: its mean ``loss`` and, for classification, its correct predictions."""
        self.loss += loss * len(yb)
        if not regression:
            self.correct += int((logits.argmax(axis=1) == yb).sum())
        self.seen += len(yb)

    @property
    def mean_loss(self) -> float:
        return self.loss / self.seen

    @property
    def accuracy(self) -> float:
        return self.correct / self.seen


#: `TrainConfig`'s fields: the hyperparameters `train` takes as keywords
HYPERPARAMETERS = tuple(f.name for f in fields(TrainConfig))


def _schedule_spec(schedule) -> str | None:
    """What a config records of a schedule: the spec string (or None) itself, else the object's
    ``spec`` attribute or its class name."""
    if schedule is None or isinstance(schedule, str):
        return schedule
    return getattr(schedule, "spec", type(schedule).__name__)


def _resolve_config(config: TrainConfig | None, hyperparameters: dict) -> tuple[TrainConfig, object]:
    """(the run's `TrainConfig`, its schedule as given: None, a spec string or a schedule object).

    Keyword ``hyperparameters`` override ``config``'s fields; without ``config`` they build one
    (``epochs`` and ``batch`` required). TypeError naming an unknown keyword or a missing one."""
    unknown = [k for k in hyperparameters if k not in HYPERPARAMETERS]
    if unknown:
        others = [p.name for p in inspect.signature(train).parameters.values() if p.kind is p.KEYWORD_ONLY]
        raise TypeError(f"train() got an unexpected keyword argument {unknown[0]!r}: allowed are the "
                        f"hyperparameters {', '.join(HYPERPARAMETERS)} and {', '.join(others)}")
    if config is None:
        missing = [k for k in ("epochs", "batch") if k not in hyperparameters]
        if missing:
            raise TypeError(f"train() missing required keyword argument {missing[0]!r} "
                            f"(or pass config=TrainConfig(...))")
        config = TrainConfig(**hyperparameters)
    elif not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a hwsim.TrainConfig or None, got {config!r}")
    else:
        config = replace(config, **hyperparameters)
    return replace(config, schedule=_schedule_spec(config.schedule)), config.schedule


def _check_run_arguments(precision, health_every, resume: bool, out) -> None:
    if not isinstance(precision, Precision):
        raise TypeError(f"precision must be a hwsim.Precision, got {precision!r}")
    if isinstance(health_every, bool) or not isinstance(health_every, int) or health_every < 1:
        raise ValueError(f"health_every must be an integer >= 1, got {health_every!r}")
    if resume and out is None:
        raise ValueError("resume=True needs out=RUN_DIR (the run directory with the checkpoint)")


def train(model, data, precision: Precision, config: TrainConfig | None = None, *, out=None,
          resume: bool = False, overwrite: bool = False, run_info: dict | None = None,
          progress: bool = True, scheme=None, health_every: int = 10, xp: str | None = None,
          **hyperparameters) -> dict:
    """Train ``model`` on ``data`` (an ``hwsim.Dataset``: X_train, y_train, X_test, y_test,
    input_shape, num_classes, name) at ``precision``; returns the metrics dict.

    Hyperparameters: ``config`` (a `TrainConfig`) and/or its fields as keywords (``epochs``,
    ``batch``, ``optimizer``, ``lr``, ``momentum``, ``weight_decay``, ``schedule``, ``seed``,
    ``loss``); a keyword overrides the field of ``config`` (``train(m, d, p, cfg, epochs=5)`` runs
    ``dataclasses.replace(cfg, epochs=5)``); without ``config``, ``epochs`` and ``batch`` are
    required. An unknown keyword is a TypeError naming it and the allowed names.
    Loss (``loss``): "xent" (softmax cross-entropy, integer labels) or "mse" (mean squared error,
    float targets of a regression dataset); None picks by the targets' dtype. With mse the
    accuracy metrics are replaced by ``test_mse`` (final) and ``test_mse_per_epoch``.
    ``optimizer``: "adam" or "sgd" (``momentum``); ``weight_decay``: L2; ``schedule``: None,
    "step:STEP[:GAMMA]", "cosine[:MIN_LR]" or (as a keyword) a schedule object (per epoch; the
    config records its ``spec`` or class name).
    Metrics: ``test_accuracy`` (final), ``train_loss`` / ``train_accuracy`` /
    ``test_accuracy_per_epoch`` / ``test_loss_per_epoch`` / ``epoch_seconds`` (per epoch; seconds
    of the training batches only, without evaluation and checkpointing), ``lr`` per epoch,
    ``precision`` (``precision.to_dict()``), ``quant_health`` (per epoch: `quant_health`, over the
    quantizations of every ``health_every``-th batch — collecting statistics costs about a third of
    a quantize call, so it is sampled; 1 = every batch), ``annealing`` (per epoch, only for models
    with noisy or mollified layers: each one's schedule state, `hwsim._anneal.anneal_record`).
    With ``out``: the run directory, owned through `hwsim._rundir.claim_run_dir` (an exclusive lock
    for the whole call; an existing run is refused unless ``overwrite=True`` replaces it, or
    ``resume=True`` continues it). ``out/run.json`` records the model spec, data spec, split, seeds,
    configuration and policy (plus ``run_info``, e.g. the CLI's ``scheme``) so that ``hwsim eval`` /
    ``hwsim quantize`` can rebuild the run; ``out/metrics.json`` and ``out/checkpoint.npz`` follow
    every epoch. ``resume=True`` continues from ``out``'s checkpoint (same config and policy
    required; a run killed before its first checkpoint starts over). Ctrl-C finishes the current
    batch, writes a checkpoint with the partial epoch (its loss, accuracy and quantization statistics
    so far) when ``out`` is given, and re-raises KeyboardInterrupt. A non-finite loss raises
    `DivergenceError` naming the layer and role; NaN or inf in the data is a ValueError naming the
    array and its first index.
    ``progress``: one summary line per epoch on stderr, and a tqdm bar with loss and accuracy when
    stderr is a terminal.
    ``xp``: ``"cupy"`` moves the model (in place: it stays there) to the GPU and trains there:
    parameters, data, every quantization and the optimizer on CuPy arrays, no host copy per step
    but the loss and accuracy; ``"numpy"`` moves it to host memory; None (default) trains where
    the model's parameters are. Checkpoints hold numpy arrays either way (the same file).
    """
    cfg, schedule = _resolve_config(config, hyperparameters)
    if xp is not None:
        model.to(array_module_named(xp))
    _check_run_arguments(precision, health_every, resume, out)
    sched = parse_schedule(schedule)
    _check_finite_data(data)
    _check_policy_fits(model, precision)
    loss_fn = loss_for(cfg.loss, data.y_train)
    X, y = _as_arrays(model, data.X_train, data.y_train)
    Xt, yt = _as_arrays(model, data.X_test, data.y_test)
    if len(X) == 0:
        raise ValueError("the training set is empty")
    model.set_precision(precision)
    X, Xt = _prequantize_inputs(model, X, Xt)
    opt = make_optimizer(cfg.optimizer, model, lr=cfg.lr, momentum=cfg.momentum,
                         weight_decay=cfg.weight_decay)
    meta = {"config": asdict(cfg), "precision": precision.to_dict(),
            "model": getattr(model, "spec", repr(model)), "data": getattr(data, "name", "unknown"),
            "versions": _versions()}
    run = _Run(model, opt, sched, scheme, precision, cfg, meta, loss_fn, out, progress, health_every)
    record = _run_record(model, data, cfg, meta, run_info)
    owner = nullcontext() if out is None else _rundir.claim_run_dir(out, resume=resume, overwrite=overwrite)
    with owner:
        start = _start_or_resume(run, record, resume, n_examples=len(X))
        return _train_epochs(run, (X, y, Xt, yt), *start)


@dataclass
class _Run:
    """What every epoch of one `train` call uses."""

    model: Any
    opt: Any
    sched: Any  # a schedule object (lr(base, epoch, epochs)) or None
    scheme: Any
    precision: Precision
    cfg: TrainConfig
    meta: dict
    loss_fn: Any
    out: Any  # the run directory or None
    progress: bool
    health_every: int

    @property
    def regression(self) -> bool:
        return isinstance(self.loss_fn, MeanSquaredError)

    def checkpoint(self, hist: dict, epoch: int, batch_done: int, step: int, partial: dict) -> None:
        """Save the state after ``batch_done`` batches of ``epoch`` (with ``out``)."""
        if self.out is not None:
            _checkpoint.save(self.out, self.model.state_dict(), self.opt.state_dict(),
                             {**self.meta, "epoch": epoch, "batch": batch_done, "step": step,
                              "history": hist, "partial": partial})


def _empty_history(regression: bool) -> dict:
    keys = ("train_loss", "test_mse_per_epoch") if regression else \
        ("train_loss", "train_accuracy", "test_accuracy_per_epoch")
    return {k: [] for k in keys + ("test_loss_per_epoch", "epoch_seconds", "lr", "quant_health")}


def _start_or_resume(run: _Run, record: dict, resume: bool, *, n_examples: int):
    """(history, (epoch, batch, step), the tally of that epoch so far) to start from.

    Resuming from ``out``'s checkpoint restores the model, the optimizer and the statistics of a
    partial epoch (a run killed before its first checkpoint starts over); a new run writes
    ``run.json``."""
    fresh = _empty_history(run.regression), (0, 0, 0), _EpochTally()
    if run.out is None:
        return fresh
    out = Path(run.out)
    path = out / _checkpoint.CHECKPOINT
    if resume and path.exists():
        mstate, ostate, saved = _checkpoint.load(out)
        _check_resume(saved, run.meta)
        _checkpoint.check_meta(path, saved, n_examples=n_examples, batch=run.cfg.batch,
                               regression=run.regression)
        _checkpoint.apply_states(path, run.model, run.opt, mstate, ostate, saved["step"])
        if saved["batch"]:
            _restore_stats(path, run.model, saved["partial"].get("stats", {}))
        position = (saved["epoch"], saved["batch"], saved["step"])
        return saved["history"], position, _EpochTally.from_checkpoint(saved["partial"])
    if resume:  # killed before the first checkpoint: start over
        _check_resume(_read_run_record(out), run.meta)
    else:
        _rundir.write_json(out / RUN_FILE, record)
    return fresh


def _train_epochs(run: _Run, arrays: tuple, hist: dict, position: tuple[int, int, int],
                  tally: _EpochTally) -> dict:
    """The epochs of `train` from ``position`` = (epoch, batch, step) on (``tally``: that epoch so far)."""
    X, y, Xt, yt = arrays
    epoch0, batch0, step = position
    cfg, model = run.cfg, run.model
    xp_mod = get_array_module(X)
    with _InterruptFlag() as interrupt, _restoring_precision(model, run.precision):
        for epoch in range(epoch0, cfg.epochs):
            run.opt.lr = cfg.lr if run.sched is None else run.sched.lr(cfg.lr, epoch, cfg.epochs)
            perm = np.random.default_rng([cfg.seed, epoch]).permutation(len(X))
            rows_of_epoch = perm if xp_mod is np else xp_mod.asarray(perm)  # one copy per epoch
            start = batch0 if epoch == epoch0 else 0
            if start == 0:
                tally = _EpochTally()
                _start_epoch(model, epoch)
            step = _train_batches(run, hist, (X, y, rows_of_epoch), epoch, start, step, tally, interrupt)
            _end_epoch(run, hist, (Xt, yt), epoch, step, tally)
    metrics = _metrics(hist, run.precision, run.meta)
    if run.out is not None and epoch0 >= cfg.epochs:  # resumed after the last epoch: metrics.json may lag it
        _checkpoint.write_json(Path(run.out) / "metrics.json", metrics)
    return metrics


def _start_epoch(model, epoch: int) -> None:
    """Reset the quantization statistics and run the layers' ``on_epoch_start`` hooks."""
    model.reset_stats()
    for layer in model.layers:  # e.g. EstimatedDense: the once-per-epoch SVD
        if hasattr(layer, "on_epoch_start"):
            layer.on_epoch_start(epoch)


def _train_batches(run: _Run, hist: dict, batches: tuple, epoch: int, start: int, step: int,
                   tally: _EpochTally, interrupt: _InterruptFlag) -> int:
    """Train the batches ``start``.. of ``epoch`` (``batches``: X, y and the epoch's row order) into
    ``tally``; returns the global step after them. After Ctrl-C: checkpoint the partial epoch and
    raise KeyboardInterrupt."""
    X, y, rows_of_epoch = batches
    model, batch = run.model, run.cfg.batch
    nb = -(-len(X) // batch)
    bar = _progress_bar(run, nb, start, epoch)
    tally.start_clock()
    try:
        for b in range(start, nb):
            rows = rows_of_epoch[b * batch:(b + 1) * batch]
            xb, yb = X[rows], y[rows]
            model.set_step(step)
            model.set_flags(collect_stats=b % run.health_every == 0)
            loss, logits = _located_step(run, xb, yb, epoch, step)
            anneal_after_step(model, loss, step)
            step += 1
            tally.add(loss, logits, yb, run.regression)
            if bar is not None and (b % 10 == 0 or b == nb - 1):
                bar.set_postfix(loss=f"{tally.mean_loss:.4f}", refresh=False,
                                **({} if run.regression else {"acc": f"{tally.accuracy:.3f}"}))
                bar.update(b + 1 - bar.n)
            if interrupt.set:
                tally.stop_clock()
                run.checkpoint(hist, epoch, b + 1, step, tally.to_checkpoint(_stats_state(model)))
                where = (f"; checkpoint written to {run.out} (resume with resume=True / --resume)"
                         if run.out else "")
                raise KeyboardInterrupt(f"training interrupted in epoch {epoch + 1}{where}")
        tally.stop_clock()
    finally:
        if bar is not None:
            bar.close()
    return step


def _located_step(run: _Run, xb, yb, epoch: int, step: int):
    """`_train_step`; a DivergenceError is located (`_diagnose`) and tagged with epoch and step."""
    try:
        return _train_step(run.model, run.loss_fn, run.opt, run.scheme, xb, yb, step)
    except DivergenceError as err:
        err = _diagnose(run.model, xb, yb, err, run.loss_fn)
        where = f"epoch {epoch + 1}, step {step}"
        raise DivergenceError(err.layer, err.role, f"{err.detail}; {where}" if err.detail else where) from err


def _bars_enabled(run: _Run) -> bool:
    return run.progress and sys.stderr.isatty()


def _progress_bar(run: _Run, nb: int, start: int, epoch: int):
    """A tqdm bar over the ``nb`` batches of ``epoch`` (None unless progress goes to a terminal)."""
    if not _bars_enabled(run):
        return None
    from tqdm import tqdm

    return tqdm(total=nb, initial=start, desc=f"epoch {epoch + 1}/{run.cfg.epochs}", leave=False,
                unit="batch")


def _end_epoch(run: _Run, hist: dict, test: tuple, epoch: int, step: int, tally: _EpochTally) -> None:
    """Evaluate, extend the history, report, run the scheme's ``on_epoch_end``, checkpoint."""
    model = run.model
    model.set_flags(collect_stats=False)
    Xt, yt = test
    ev = evaluate(model, Xt, yt) if len(Xt) else {"accuracy": math.nan, "mse": math.nan, "loss": math.nan}
    _extend_history(hist, run, tally, ev)
    if run.progress:
        _report_epoch(run, epoch, tally, ev)
    metrics = _metrics(hist, run.precision, run.meta)
    if run.scheme is not None and hasattr(run.scheme, "on_epoch_end"):
        run.scheme.on_epoch_end(model, epoch, metrics)
    run.checkpoint(hist, epoch + 1, 0, step, _EpochTally().to_checkpoint())
    if run.out is not None:
        _checkpoint.write_json(Path(run.out) / "metrics.json", metrics)


def _extend_history(hist: dict, run: _Run, tally: _EpochTally, ev: dict) -> None:
    """Append one epoch: its training tally, the evaluation ``ev``, lr, quant_health, annealing."""
    hist["train_loss"].append(tally.mean_loss)
    if run.regression:
        hist["test_mse_per_epoch"].append(ev["mse"])
    else:
        hist["train_accuracy"].append(tally.accuracy)
        hist["test_accuracy_per_epoch"].append(ev["accuracy"])
    hist["test_loss_per_epoch"].append(ev["loss"])
    hist["epoch_seconds"].append(tally.seconds)
    hist["lr"].append(run.opt.lr)
    hist["quant_health"].append(quant_health(run.model))
    annealing = anneal_record(run.model)
    if annealing:
        hist.setdefault("annealing", []).append(annealing)


def _report_epoch(run: _Run, epoch: int, tally: _EpochTally, ev: dict) -> None:
    """The epoch's summary line on stderr (through tqdm when bars are drawn)."""
    score = f"test mse {ev['mse']:.5g}" if run.regression else \
        f"train acc {tally.accuracy:.4f}, test acc {ev['accuracy']:.4f}"
    line = f"epoch {epoch + 1}/{run.cfg.epochs}: loss {tally.mean_loss:.4f}, {score} ({tally.seconds:.2f} s)"
    if _bars_enabled(run):
        from tqdm import tqdm

        tqdm.write(line, file=sys.stderr)
    else:  # a logged or piped run: one line per epoch, as it happens
        print(line, file=sys.stderr, flush=True)


def _metrics(hist: dict, precision: Precision, meta: dict) -> dict:
    key = "test_mse" if "test_mse_per_epoch" in hist else "test_accuracy"
    per_epoch = hist[key + "_per_epoch"]
    return {key: per_epoch[-1] if per_epoch else math.nan, **hist, "precision": precision.to_dict(),
            "model": meta["model"], "data": meta["data"], "config": meta["config"],
            "versions": meta["versions"]}


def _check_resume(saved: dict, meta: dict) -> None:
    diffs = []
    for key in ("precision", "model", "data"):
        if saved.get(key) != meta[key]:
            diffs.append(f"{key}: checkpoint {saved.get(key)!r}, now {meta[key]!r}")
    saved_config = saved.get("config") if isinstance(saved.get("config"), dict) else {}
    for key, now in meta["config"].items():
        then = saved_config.get(key)
        if key != "epochs" and then != now:
            diffs.append(f"{key}: checkpoint {then!r}, now {now!r}")
    if diffs:
        raise ValueError("cannot resume: the run differs from its checkpoint (" + "; ".join(diffs) + ")")


#: The run record in a run directory (what ``hwsim eval`` / ``quantize`` / ``--resume`` rebuild from).
RUN_FILE = "run.json"


def _run_record(model, data, cfg: TrainConfig, meta: dict, run_info: dict | None) -> dict:
    """``run.json``: model spec, data spec and split (with the seed the split was drawn with), the
    example shape the model was built for, the configuration and the policy, plus ``run_info``."""
    info = getattr(data, "to_dict", None)
    return {"model": meta["model"], "data": meta["data"], "split": getattr(data, "split", None),
            "seed": cfg.seed, "data_seed": getattr(data, "split_seed", None),
            "input_shape": [int(d) for d in model.input_shape], "optimizer": cfg.optimizer, "lr": cfg.lr,
            "batch": cfg.batch, "schedule": cfg.schedule, "momentum": cfg.momentum,
            "weight_decay": cfg.weight_decay, "scheme": None, "precision": meta["precision"],
            "config": meta["config"], "dataset": info() if callable(info) else {"name": meta["data"]},
            **(run_info or {})}


def _read_run_record(run_dir: Path) -> dict:
    """The run.json of ``run_dir`` as a dict ({} when absent); ValueError naming a malformed file."""
    path = run_dir / RUN_FILE
    if not path.is_file():
        return {}
    try:
        rec = json.loads(path.read_text())
        problem = None if isinstance(rec, dict) else f"a JSON object expected, got {type(rec).__name__}"
    except (ValueError, UnicodeDecodeError) as exc:
        problem = f"not valid JSON ({exc})"
    if problem:
        raise ValueError(f"{path}: {problem}; the run record is damaged")
    return rec


def _check_finite_data(data) -> None:
    """ValueError naming the data and the first index of a NaN or inf in X_train / X_test."""
    for name in ("X_train", "X_test"):
        xp = get_array_module(getattr(data, name))
        X = xp.asarray(getattr(data, name))
        if X.dtype.kind == "f" and not bool(xp.isfinite(X).all()):
            host = to_numpy(X)
            first = tuple(int(i) for i in np.argwhere(~np.isfinite(host))[0])
            bad = "NaN" if np.isnan(host[first]) else "inf"
            raise ValueError(f"bad data {getattr(data, 'name', 'unknown')!r}: {name} holds {bad} at index "
                             f"{first} (example {first[0]}); training needs finite inputs")


def _stats_state(model) -> dict:
    """``{layer: {role: QuantStats fields}}``: the quantization statistics of the epoch so far."""
    return {layer.name: {role: dict(st.__dict__) for role, st in layer.stats.items()}
            for layer in model.layers if layer.stats}


def _restore_stats(path: Path, model, state: dict) -> None:
    """Inverse of `_stats_state` (CheckpointError naming ``path`` for an unknown layer or field)."""
    layers = {layer.name: layer for layer in model.layers}
    try:
        for name, roles in state.items():
            layers[name].stats = {role: QuantStats(**values) for role, values in roles.items()}
    except (KeyError, TypeError) as exc:
        raise _checkpoint.CheckpointError(f"{path}: bad partial-epoch statistics ({exc!r})") from None


def _check_policy_fits(model, precision: Precision) -> None:
    """ValueError naming the role when a float-format role has values the model's float dtype cannot
    hold (the model computes in float32: at most 23 mantissa bits, exponents -126..127)."""
    params = model.parameters()
    dtype = np.dtype(params[0][2].dtype if params else np.float32)
    for role in ROLES:
        q = getattr(precision, role)
        fmt = getattr(q, "fmt", None)
        if hasattr(fmt, "fits") and not fmt.fits(dtype):
            info = np.finfo(dtype)
            raise ValueError(f"precision role {role!r} (--{role}): {q.name} has values that the model's "
                             f"{dtype} cannot hold ({dtype}: at most {info.nmant} mantissa bits, exponents "
                             f"{info.minexp}..{info.maxexp - 1}); choose a narrower format, e.g. bf16, fp16 "
                             f"or e8m23")
