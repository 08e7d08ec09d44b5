"""``hwsim train``, ``hwsim eval`` and ``hwsim report``: training runs on disk.

A run directory holds what `hwsim._train.train` writes (``metrics.json``, the per-epoch checkpoint)
plus ``run.json``: the model spec, data spec, split and seed the run was started with, so that
``hwsim eval RUN_DIR`` can rebuild the model and its data and ``--resume`` can refuse a different
model or data.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from hwsim._checkpoint import load as load_checkpoint, write_json
from hwsim._cli_common import check_scheme_flags, load_data_for_model, optical_from_args, precision_from_args
from hwsim._data import Dataset
from hwsim._model import Sequential
from hwsim._precision import Precision
from hwsim._report import md_table, write_run_report
from hwsim._text_train import cmd_train_text, is_text_spec
from hwsim._train import evaluate, train
from hwsim._xp import array_module_named
from hwsim.layers import set_optical
from hwsim.schemes import build_scheme_model, parse_scheme

__all__ = ["cmd_train", "cmd_eval", "cmd_report", "load_trained_run", "RUN_FILE"]

RUN_FILE = "run.json"
_SAME_ON_RESUME = ("model", "data", "split", "seed", "scheme", "optical")


def read_run(run_dir: Path) -> dict:
    """The ``run.json`` of ``run_dir`` (FileNotFoundError naming it when absent)."""
    path = run_dir / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: RUN_DIR must be a directory written by 'hwsim train'")
    return json.loads(path.read_text())


def cmd_train(args: argparse.Namespace) -> int:
    if is_text_spec(args.data):  # character-level language models: hwsim._text_train
        return cmd_train_text(args)
    out = Path(args.out)
    array_module_named(args.array_module, "--array-module")  # checked before anything is written
    spec = {"model": args.model, "data": args.data, "split": args.split, "seed": args.seed,
            "optimizer": args.optimizer, "lr": args.lr, "batch": args.batch, "schedule": args.schedule,
            "scheme": getattr(args, "scheme", None)}
    optical = optical_from_args(getattr(args, "optical", None), array_module=args.array_module)
    spec["optical"] = optical.spec if optical is not None else None
    if args.resume:
        saved = read_run(out)
        changed = [k for k in _SAME_ON_RESUME if saved.get(k) != spec[k]]
        if changed:
            raise ValueError(f"--resume with a different {', '.join(changed)} than the run in {out} "
                             f"({', '.join(f'{k}={saved.get(k)!r}' for k in changed)})")
    data = load_data_for_model(args.model, args.data, args.split, args.seed)
    check_scheme_flags(args)
    precision = parse_scheme(spec["scheme"]).precision(args.seed) if spec["scheme"] else precision_from_args(args)
    model = build_scheme_model(args.model, spec["scheme"], data.input_shape, data.num_classes, seed=args.seed)
    set_optical(model, optical)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / RUN_FILE, {**spec, "precision": precision.to_dict(), "dataset": data.to_dict()})
    metrics = train(model, data, precision, epochs=args.epochs, batch=args.batch,
                    optimizer=args.optimizer, lr=args.lr, momentum=args.momentum,
                    weight_decay=args.weight_decay, schedule=args.schedule, seed=args.seed,
                    out=out, resume=args.resume, progress=not args.quiet, xp=args.array_module)
    print(md_table(["run", "test accuracy (%)", "final train loss", "epochs", "precision"], [[
        str(out), f"{100 * metrics['test_accuracy']:.2f}", f"{metrics['train_loss'][-1]:.4f}",
        len(metrics["epoch_seconds"]), str(precision)]]))
    print(f"wrote {out / 'metrics.json'}")
    return 0


def load_trained_run(args: argparse.Namespace) -> tuple[dict, str, Dataset, Sequential]:
    """``(run, data_spec, data, model)`` of ``args.run_dir``: the run's model (with its scheme) with the
    checkpoint's weights, and the run's data (or ``--data``/``--split``); its layers run through the
    run's optical setting, or ``--optical`` (``none``: digitally)."""
    run_dir = Path(args.run_dir)
    run = read_run(run_dir)
    data_spec = args.data if args.data is not None else run["data"]
    split = args.split if args.split is not None or args.data is not None else run["split"]
    data = load_data_for_model(run["model"], data_spec, split, run["seed"])
    model = build_scheme_model(run["model"], run.get("scheme"), data.input_shape, data.num_classes,
                               seed=run["seed"])
    optical = optical_from_args(getattr(args, "optical", None), run.get("optical"),
                                getattr(args, "array_module", "numpy"))
    set_optical(model, optical)
    run = {**run, "optical_used": optical.spec if optical is not None else None}
    state, _, _ = load_checkpoint(run_dir)
    model.load_state_dict(state)
    return run, data_spec, data, model


def cmd_eval(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    run, data_spec, data, model = load_trained_run(args)
    precision = Precision.from_dict(run["precision"])
    model.to(array_module_named(args.array_module, "--array-module"))
    result = evaluate(model, data.X_test, data.y_test, precision)
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
