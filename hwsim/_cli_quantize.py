"""``hwsim quantize RUN --bits 12 10 8 6``: post-training min-max quantization of a trained run.

Rebuilds the run's model (with its ``--scheme`` when it had one), loads its checkpoint, and
for each bit width quantizes every weight and bias with its own min-max fixed-point format
(`hwsim.compression.post_training_quantize`), then evaluates on the run's test split (or
``--data``/``--split``). Prints a table (or ``--json``) and writes ``RUN/quantize.json``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from hwsim._checkpoint import write_json
from hwsim._cli_run import load_trained_run
from hwsim._precision import Precision
from hwsim._report import md_table
from hwsim._train import evaluate
from hwsim.compression import post_training_quantize

__all__ = ["cmd_quantize"]


def cmd_quantize(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    run, data_spec, data, model = load_trained_run(args)
    model.set_precision(Precision.from_dict(run["precision"]))
    rows = [{"bits": "trained", "formats": {}, **evaluate(model, data.X_test, data.y_test)}]
    for bits in args.bits:
        q, formats = post_training_quantize(model, bits)
        rows.append({"bits": bits, "formats": formats, **evaluate(q, data.X_test, data.y_test)})
    write_json(run_dir / "quantize.json", {"run": str(run_dir), "data": data_spec, "rows": rows})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(md_table(["weight bits", "test accuracy (%)", "loss", "weight formats"], [
            [r["bits"], f"{100 * r['accuracy']:.2f}", f"{r['loss']:.4f}",
             ", ".join(v for k, v in r["formats"].items() if k.endswith(".W")) or "as trained"]
            for r in rows]))
        print(f"wrote {run_dir / 'quantize.json'}")
    return 0
