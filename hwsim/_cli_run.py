"""``hwsim train``, ``hwsim eval`` and ``hwsim report``: training runs on disk.

A run directory holds what `hwsim._train.train` writes: ``run.json`` (model spec, data spec, split,
seeds, configuration and policy — the same whether the run came from the CLI or from
``hwsim.train(out=...)``), ``metrics.json`` and the per-epoch checkpoint, so that
``hwsim eval RUN_DIR`` can rebuild the model and its data. ``hwsim train --resume`` takes the model,
data, split, seed, policy, optimizer settings and epochs from ``run.json``; a flag given explicitly
must agree with the run (else one error line naming the field), except ``--epochs`` (the new total).
Nothing is written before the run is accepted.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from hwsim._checkpoint import CHECKPOINT
from hwsim._checkpoint import load as load_checkpoint
from hwsim._cli_common import (
    check_scheme_flags,
    load_data_for_model,
    optical_from_args,
    precision_from_args,
    warn_unsigned_weights,
)
from hwsim._data import Dataset
from hwsim._model import Sequential
from hwsim._precision import PRESETS, ROLES, Precision, parse_quantizer
from hwsim._report import md_table, write_run_report
from hwsim._text_train import cmd_train_text, is_text_spec
from hwsim._train import RUN_FILE, _read_run_record, evaluate, loss_for, train
from hwsim._xp import array_module_named
from hwsim.layers import set_optical
from hwsim.schemes import build_scheme_model, parse_scheme

__all__ = ["cmd_train", "cmd_eval", "cmd_report", "load_trained_run", "read_run", "RUN_FILE"]

#: Flags that ``--resume`` takes from the run (flag dest -> run.json key); ``--optical`` is compared
#: as the parsed setting (`_resume_optical`).
_FROM_RUN = ("model", "data", "split", "seed", "scheme", "optimizer", "lr", "batch", "schedule", "momentum",
             "weight_decay", "epochs", "loss")
_POLICY_FLAGS = ("precision", "mode", *ROLES)


def read_run(run_dir: Path) -> dict:
    """The run record of ``run_dir``: its ``run.json``, or for a run written before run.json existed,
    the fields ``checkpoint.npz`` records. FileNotFoundError / ValueError naming the file."""
    run_dir = Path(run_dir)
    rec = _read_run_record(run_dir)
    if rec:
        return rec
    if (run_dir / CHECKPOINT).is_file():
        _, _, meta = load_checkpoint(run_dir)
        config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
        return {"model": meta.get("model"), "data": meta.get("data"), "split": None,
                "seed": config.get("seed", 0), "precision": meta.get("precision"), "scheme": None, **config}
    raise FileNotFoundError(f"{run_dir / RUN_FILE} not found: RUN_DIR must be a directory written by "
                            f"'hwsim train' or hwsim.train(out=RUN_DIR)")


def _resume_args(args: argparse.Namespace, explicit: set[str]) -> argparse.Namespace:
    """``args`` with every flag not given explicitly taken from the run; ValueError naming the first
    explicit flag that contradicts it."""
    out = Path(args.out)
    rec = read_run(out)
    where = out / RUN_FILE
    config = rec.get("config") if isinstance(rec.get("config"), dict) else {}
    config = {**config, "epochs": _last_target_epochs(out, config.get("epochs"))}
    for key in _FROM_RUN:
        if key in rec or key in config:
            saved = rec[key] if key in rec else config[key]
            flag = "--" + key.replace("_", "-")
            if key in explicit and key != "epochs" and saved != getattr(args, key):
                raise ValueError(f"--resume: {flag} {getattr(args, key)} contradicts the run's {key} "
                                 f"{saved!r} ({where}); drop the flag to continue the run, or start a new "
                                 "one")
            if key not in explicit:
                setattr(args, key, saved)
    saved_policy = rec.get("precision")
    if isinstance(saved_policy, dict) and explicit & set(_POLICY_FLAGS):
        _check_policy_flags(args, explicit, saved_policy, where)
    args.saved_precision = saved_policy
    return args


def _resume_optical(args: argparse.Namespace, explicit: set[str]):
    """The run's optical setting (a ``FourF`` or None) for ``--resume``; ValueError when an explicit
    ``--optical`` parses to another setting than the run's."""
    where = Path(args.out) / RUN_FILE
    saved = read_run(Path(args.out)).get("optical")
    given = getattr(args, "optical", None)
    if "optical" in explicit and given is not None:
        optical = optical_from_args(given, array_module=args.array_module)
        if (optical.spec if optical is not None else None) != saved:
            raise ValueError(f"--resume: --optical {given} contradicts the run's optical {saved!r} "
                             f"({where}); "
                             f"drop the flag")
        return optical
    return optical_from_args(None, saved, args.array_module)


def _check_policy_flags(args: argparse.Namespace, explicit: set[str], saved: dict, where: Path) -> None:
    """ValueError naming the first explicit --precision / role / --mode flag that differs from the
    run's policy ``saved`` (a preset is compared in every role it sets, role flags refining it)."""
    given = {}
    if "precision" in explicit:
        if args.precision not in PRESETS:
            raise ValueError(f"bad precision preset {args.precision!r}: allowed {', '.join(PRESETS)}")
        given = {r: PRESETS[args.precision].get(r) for r in ROLES}
    given.update({r: getattr(args, r) for r in ROLES if r in explicit})
    for role, text in given.items():
        q = None if text is None else parse_quantizer(text)
        name = None if q is None else q.name
        if name != saved.get(role):
            flag = f"--{role} {text}" if role in explicit else f"--precision {args.precision} ({role} {name})"
            raise ValueError(f"--resume: {flag} contradicts the run's {role} {saved.get(role)!r} ({where}); "
                             f"drop the flag")
    if "mode" in explicit and args.mode != saved.get("mode"):
        raise ValueError(f"--resume: --mode {args.mode} contradicts the run's mode {saved.get('mode')!r} "
                         f"({where}); drop the flag")


def _last_target_epochs(run_dir: Path, default):
    """The epochs the run's last session aimed at (checkpoint.json), else ``default``."""
    try:
        epochs = json.loads((run_dir / "checkpoint.json").read_text())["config"]["epochs"]
    except (OSError, ValueError, KeyError, TypeError):
        return default
    return epochs if isinstance(epochs, int) and epochs >= 1 else default


def cmd_train(args: argparse.Namespace) -> int:
    if is_text_spec(args.data):  # character-level language models: hwsim._text_train
        return cmd_train_text(args)
    array_module_named(args.array_module, "--array-module")  # checked before anything is written
    explicit = getattr(args, "explicit", None)
    if explicit is None:  # called without main(): every flag counts as given
        explicit = set(vars(args))
    if args.resume:
        args = _resume_args(args, explicit)
    out = Path(args.out)
    data = load_data_for_model(args.model, args.data, args.split, args.seed)
    scheme = getattr(args, "scheme", None)
    if args.resume and isinstance(getattr(args, "saved_precision", None), dict):
        precision = Precision.from_dict(args.saved_precision)
    else:
        check_scheme_flags(args)
        precision = parse_scheme(scheme).precision(args.seed) if scheme else precision_from_args(args)
    optical = _resume_optical(args, explicit) if args.resume else optical_from_args(
        getattr(args, "optical", None), array_module=args.array_module)
    warn_unsigned_weights(precision, "train")
    model = build_scheme_model(args.model, scheme, data.input_shape, data.num_classes, seed=args.seed)
    set_optical(model, optical)
    loss = getattr(args, "loss", None)
    loss_for(loss, data.y_train)  # refuse a loss that does not fit the data before writing
    metrics = train(model, data, precision, epochs=args.epochs, batch=args.batch,
                    optimizer=args.optimizer, lr=args.lr, momentum=args.momentum,
                    weight_decay=args.weight_decay, schedule=args.schedule, seed=args.seed,
                    out=out, resume=args.resume, overwrite=args.overwrite, progress=not args.quiet,
                    run_info={"scheme": scheme, "optical": optical.spec if optical is not None else None,
                              "loss": loss},
                    xp=args.array_module, loss=loss)
    score = ("test mse", f"{metrics['test_mse']:.6g}") if "test_mse" in metrics else \
        ("test accuracy (%)", f"{100 * metrics['test_accuracy']:.2f}")
    print(md_table(["run", score[0], "final train loss", "epochs", "precision"], [[
        str(out), score[1], f"{metrics['train_loss'][-1]:.4f}", len(metrics["epoch_seconds"]),
        str(precision)]]))
    print(f"wrote {out / 'metrics.json'}")
    return 0


def load_trained_run(args: argparse.Namespace) -> tuple[dict, str, Dataset, Sequential]:
    """``(run, data_spec, data, model)`` of ``args.run_dir``: the run's model (with its scheme) with the
    checkpoint's weights, and the run's data (or ``--data``/``--split``); its layers run through the
    run's optical setting, or ``--optical`` (``none``: digitally)."""
    run_dir = Path(args.run_dir)
    run = read_run(run_dir)
    data_spec = args.data if args.data is not None else run["data"]
    split = args.split if args.split is not None or args.data is not None else run.get("split")
    data_seed = run.get("data_seed")
    try:
        data = load_data_for_model(run["model"], data_spec, split,
                                   run["seed"] if data_seed is None else data_seed)
    except ValueError as exc:
        if args.data is None and str(exc).startswith("unknown data spec"):
            raise ValueError(f"{run_dir}: the run was trained on data {data_spec!r}, which is not a data "
                             f"spec hwsim can load; pass --data SPEC") from None
        raise
    shape = tuple(run.get("input_shape") or data.input_shape)
    if shape != data.input_shape and len(shape) and _size(shape) == _size(data.input_shape):
        data = _reshaped(data, shape)
    try:
        model = build_scheme_model(run["model"], run.get("scheme"), shape, data.num_classes, seed=run["seed"])
    except ValueError as exc:
        raise ValueError(f"{run_dir}: cannot rebuild the run's model {run['model']!r}: {exc}") from None
    optical = optical_from_args(getattr(args, "optical", None), run.get("optical"),
                                getattr(args, "array_module", "numpy"))
    set_optical(model, optical)
    run = {**run, "optical_used": optical.spec if optical is not None else None}
    state, _, _ = load_checkpoint(run_dir)
    try:
        model.load_state_dict(state)
    except ValueError as exc:
        raise ValueError(f"{run_dir / CHECKPOINT}: the weights do not fit the model: {exc}") from None
    return run, data_spec, data, model


def _size(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _reshaped(data: Dataset, shape: tuple) -> Dataset:
    from dataclasses import replace

    return replace(data, X_train=data.X_train.reshape(len(data.X_train), *shape),
                   X_test=data.X_test.reshape(len(data.X_test), *shape), input_shape=tuple(shape))


def cmd_eval(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    run, data_spec, data, model = load_trained_run(args)
    precision = Precision.from_dict(run["precision"])
    model.to(array_module_named(args.array_module, "--array-module"))
    result = evaluate(model, data.X_test, data.y_test, precision)
    if "mse" in result:  # a regression run
        result = {"run": str(run_dir), "data": data_spec, "n_test": int(len(data.y_test)),
                  "mse": result["mse"]}
        print(json.dumps(result, indent=2) if args.json else md_table(
            ["run", "data", "test examples", "mse"], [[result["run"], data_spec, result["n_test"],
                                                      f"{result['mse']:.6g}"]]))
        return 0
    result = {"run": str(run_dir), "data": data_spec, "n_test": int(len(data.y_test)),
              "accuracy": float(result["accuracy"]), "loss": float(result["loss"]),
              "optical": run["optical_used"]}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(md_table(["run", "data", "test examples", "accuracy (%)", "loss"], [[
            result["run"], data_spec, result["n_test"], f"{100 * result['accuracy']:.2f}",
            f"{result['loss']:.4f}"]]))
        if result["optical"]:
            print(f"through the optics: {result['optical']}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    path = write_run_report(args.run_dir, args.out)
    print(f"wrote {path}")
    return 0
