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
from hwsim._cli_common import check_scheme_flags, load_data_for_model, precision_from_args
from hwsim._data import Dataset
from hwsim._model import Sequential
from hwsim._precision import Precision
from hwsim._report import md_table, write_run_report
from hwsim._train import evaluate, loss_for, train
from hwsim.schemes import build_scheme_model, parse_scheme

__all__ = ["cmd_train", "cmd_eval", "cmd_report", "load_trained_run", "RUN_FILE"]

RUN_FILE = "run.json"
_SAME_ON_RESUME = ("model", "data", "split", "seed", "scheme")


def read_run(run_dir: Path) -> dict:
    """The ``run.json`` of ``run_dir`` (FileNotFoundError naming it when absent)."""
    path = run_dir / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: RUN_DIR must be a directory written by 'hwsim train'")
    return json.loads(path.read_text())


def cmd_train(args: argparse.Namespace) -> int:
    out = Path(args.out)
    spec = {"model": args.model, "data": args.data, "split": args.split, "seed": args.seed,
            "optimizer": args.optimizer, "lr": args.lr, "batch": args.batch, "schedule": args.schedule,
            "scheme": getattr(args, "scheme", None)}
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
    loss_for(getattr(args, "loss", None), data.y_train)  # refuse a loss that does not fit the data before writing
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / RUN_FILE, {**spec, "precision": precision.to_dict(), "dataset": data.to_dict()})
    metrics = train(model, data, precision, epochs=args.epochs, batch=args.batch,
                    optimizer=args.optimizer, lr=args.lr, momentum=args.momentum,
                    weight_decay=args.weight_decay, schedule=args.schedule, seed=args.seed,
                    out=out, resume=args.resume, progress=not args.quiet, loss=getattr(args, "loss", None))
    score = ("test mse", f"{metrics['test_mse']:.6g}") if "test_mse" in metrics else \
        ("test accuracy (%)", f"{100 * metrics['test_accuracy']:.2f}")
    print(md_table(["run", score[0], "final train loss", "epochs", "precision"], [[
        str(out), score[1], f"{metrics['train_loss'][-1]:.4f}", len(metrics["epoch_seconds"]), str(precision)]]))
    print(f"wrote {out / 'metrics.json'}")
    return 0


def load_trained_run(args: argparse.Namespace) -> tuple[dict, str, Dataset, Sequential]:
    """``(run, data_spec, data, model)`` of ``args.run_dir``: the run's model (with its scheme) with the
    checkpoint's weights, and the run's data (or ``--data``/``--split``)."""
    run_dir = Path(args.run_dir)
    run = read_run(run_dir)
    data_spec = args.data if args.data is not None else run["data"]
    split = args.split if args.split is not None or args.data is not None else run["split"]
    data = load_data_for_model(run["model"], data_spec, split, run["seed"])
    model = build_scheme_model(run["model"], run.get("scheme"), data.input_shape, data.num_classes,
                               seed=run["seed"])
    state, _, _ = load_checkpoint(run_dir)
    model.load_state_dict(state)
    return run, data_spec, data, model


def cmd_eval(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    run, data_spec, data, model = load_trained_run(args)
    precision = Precision.from_dict(run["precision"])
    result = evaluate(model, data.X_test, data.y_test, precision)
    if "mse" in result:  # a regression run
        result = {"run": str(run_dir), "data": data_spec, "n_test": int(len(data.y_test)), "mse": result["mse"]}
        print(json.dumps(result, indent=2) if args.json else md_table(
            ["run", "data", "test examples", "mse"], [[result["run"], data_spec, result["n_test"],
                                                      f"{result['mse']:.6g}"]]))
        return 0
    result = {"run": str(run_dir), "data": data_spec, "n_test": int(len(data.y_test)),
              "accuracy": float(result["accuracy"]), "loss": float(result["loss"])}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(md_table(["run", "data", "test examples", "accuracy (%)", "loss"], [[
            result["run"], data_spec, result["n_test"], f"{100 * result['accuracy']:.2f}",
            f"{result['loss']:.4f}"]]))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    path = write_run_report(args.run_dir, args.out)
    print(f"wrote {path}")
    return 0
