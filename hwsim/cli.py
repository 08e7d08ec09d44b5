"""The ``hwsim`` command line: ``demo``, ``train``, ``eval``, ``cost``, ``devices``, ``calibrate``,
``report``, ``quantize``, ``sweep``.

This module only builds the argument parsers; each command's work lives in a private module
(``_demo``: demo; ``_cli_run``: train, eval, report; ``_cli_cost``: cost, devices, calibrate;
``_cli_quantize``: quantize; ``_sweep``: sweep), and what they share (the precision policy and the
model from the flags, input checks) in ``_cli_common``.
``main(argv)`` returns the process exit status: 0 on success, 2 for a usage error (bad flag, bad spec,
missing file — printed as one ``hwsim <command>: error: ...`` line, no traceback), 1 when training
diverges (the message names the layer and role), 130 on Ctrl-C (after the checkpoint is written).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Sequence

__all__ = ["main", "build_parser"]

_ROLES = ("weight", "activation", "error", "grad", "update", "acc")

_EXAMPLES = {
    "demo": """examples:
  hwsim demo                          # digits, fp32/16/8/4-bit, cost on every shipped profile
  hwsim demo --out /tmp/demo --epochs 5""",
    "train": """examples:
  hwsim train --out runs/fp32                                    # MLP 64-64-10 on the embedded digits
  hwsim train --model mlp:784-256-256-10 --data mnist:../shared/data/mnist --split 8000 \\
      --epochs 10 --batch 64 --optimizer adam --lr 1e-3 --seed 0 --precision fp32 --out runs/mnist
  hwsim train --weight s8.7 --activation s8.4 --update s16.14:stochastic --out runs/w8a8
  hwsim train --precision fixed16 --mode exact --epochs 2 --out runs/exact
  hwsim train --out runs/w8a8 --epochs 20 --resume                # continue from the last checkpoint
  hwsim train --precision fixed8 --array-module cupy --out runs/gpu  # a CUDA GPU (pip install 'hwsim[gpu]')
  hwsim train --scheme binaryconnect:stochastic=true --lr 1e-2 --out runs/bc   # a seed paper's scheme
  hwsim train --model seq:1x8x8,conv(4,3),relu,flatten,dense(10) --optical optical4f:photons=1000,adc_bits=8 \
      --out runs/optical                                          # the 4f optics in the training loop""",
    "eval": """examples:
  hwsim eval runs/fp32                     # accuracy on the run's own test split
  hwsim eval runs/mnist --data mnist:../shared/data/mnist --split 8000
  hwsim eval runs/optical --optical optical4f:photons=100  # through other optics (none: digital)""",
    "cost": """examples:
  hwsim cost --model mlp:784-256-256-10 --precision fp32 --device h100-sxm --json
  hwsim cost --model mlp:784-256-256-10 --weight s8.7 --activation s8.4 --layers
  hwsim cost --model cnn:lenet5 --input-shape 1x28x28 --device stm32h743 --device optical4f
  hwsim cost --model mlp:64-64-10 --training --batch 64 --csv cost.csv
  hwsim cost --model mlp:784-1024-1024-10 --scheme bnn --device stm32h743   # a seed paper's scheme
  hwsim cost --model cnn:lenet5 --device optical4f --optical optical4f:photons=100,adc_bits=6
  hwsim cost --model net.onnx --batch 8 --precision fixed8 --device jetson-orin-nano --layers""",
    "devices": """examples:
  hwsim devices               # list every profile (shipped and from $HWSIM_DEVICES)
  hwsim devices h100-sxm      # show one profile""",
    "calibrate": """examples:
  hwsim calibrate --quick                    # a fast measurement of this machine
  hwsim calibrate --out my-machine.toml      # then: hwsim cost --device my-machine.toml""",
    "quantize": """examples:
  hwsim quantize runs/mnist --bits 12 10 8 6     # post-training min-max quantization, one format per tensor
  hwsim quantize runs/mnist --bits 8 --json""",
    "sweep": """examples:
  hwsim sweep grid.toml --out sweeps/g1                  # a LocalCluster with one worker per CPU
  hwsim sweep grid.toml --out sweeps/g1 --resume         # continue after a crash or Ctrl-C
  hwsim sweep grid.toml --out sweeps/g1 --workers 2      # two single-threaded worker processes
  hwsim sweep grid.toml --out /shared/g1 --scheduler tcp://10.0.0.5:8786   # an existing Dask cluster
  hwsim sweep examples/seed_precision_tables.toml --out sweeps/seed-tables

grid.toml (every list is an axis; see the README section "Design-space sweeps"):
  [grid]
  model = ["mlp:64-32-10"]
  data = "digits"
  precision = ["fp32", "fixed8"]
  seed = [0, 1]
  epochs = 3
  devices = ["stm32h743", "h100-sxm"]""",
    "report": """examples:
  hwsim report runs/fp32                 # writes runs/fp32/report.md and its plots
  hwsim report runs/fp32 --out /tmp/r""",
}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


#: Seeds: the range the API accepts (fixedpoint's counter RNG keys are 64-bit).
SEED_MAX = 2**64 - 1


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"--seed must be an integer in [0, 2**64 - 1], got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _add_model_flags(p: argparse.ArgumentParser, default_model: str) -> None:
    p.add_argument("--model", default=default_model,
                   help=f"model spec: mlp:IN-H1-...-OUT, cnn:lenet5 or seq:IN,LAYER,... e.g. "
                        f"seq:784,dense(256),relu,dense(10) (default {default_model})")
    p.add_argument("--precision", default="fp32",
                   help="preset policy: fp32, fixed16, fixed8, fixed4 (default fp32); the per-role "
                        "flags below replace or refine it")
    for role in _ROLES:
        p.add_argument(f"--{role}", default=None, metavar="FMT[:ROUNDING]",
                       help=f"format of the {role} role, e.g. s8.6 or s16.14:stochastic; 'fp32' = no "
                            "quantization")
    p.add_argument("--mode", choices=("fast", "exact"), default="fast",
                   help="fast: float matmul on grid values then one quantize; exact: bit-accurate "
                        "fixedpoint.matmul at the acc format (default fast)")


def _add_scheme_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scheme", default=None, metavar="NAME[:KEY=VALUE,...]",
                   help="a seed paper's training scheme (sets the precision policy and adapts the model): "
                        "binaryconnect, ternaryconnect, twn, quantized-backprop, bnn, fixed, fixed16-sr, "
                        "fixed8-sr, fp32; e.g. binaryconnect:stochastic=true")


def _add_optical_flag(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--optical", default=None, metavar="PROFILE[:KEY=VALUE,...]",
                   help=f"{what} convolution (and circulant) layers through an emulated 4f system, e.g. "
                        "optical4f:photons=1000,adc_bits=8; keys photons, dac_bits, mask_bits, adc_bits "
                        "(none = ideal), detection=incoherent|coherent, phase_only, qe, read_noise, "
                        "full_well, seed")


def _add_data_flags(p: argparse.ArgumentParser, default: str | None) -> None:
    p.add_argument("--data", default=default,
                   help="data spec: digits (embedded 8x8), mnist:DIR (IDX files), npz:PATH (arrays X, y), "
                        "text (embedded character corpus) or text:PATH (UTF-8 file; train only)"
                        + (f" (default {default})" if default else " (default: the run's own data)"))
    p.add_argument("--split", type=_positive_int, default=None,
                   help="first N examples train, the rest test (default: seeded 80/20 split; MNIST "
                        "with train and t10k files: the official split)")


def _add_array_module_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--array-module", choices=("numpy", "cupy"), default="numpy",
                   help="where the arrays live: numpy (CPU, default) or cupy (a CUDA GPU; same "
                        "checkpoints; needs pip install 'hwsim[gpu]')")


def _command(sub, name: str, help_text: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help_text, description=help_text, epilog=_EXAMPLES[name],
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    """The full parser (one subparser per command, each with examples in its ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="hwsim",
        description="Train networks through emulated low-precision arithmetic and estimate what they "
                    "cost on GPUs, CPUs, embedded devices and a 4f optical system.",
        epilog="run 'hwsim COMMAND --help' for a command's options and examples",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = _command(sub, "demo", "train a small MLP on the embedded digits at fp32, 16, 8 and 4 bits, "
                              "cost it on every shipped device, write a report with plots")
    p.add_argument("--out", default="reports/demo", help="report folder (default reports/demo)")
    p.add_argument("--epochs", type=_positive_int, default=None,
                   help="training epochs per precision (default 30; 2 with --quick)")
    p.add_argument("--seed", type=_seed, default=0, help="seed for data split, init and rounding "
                                                         "(0 .. 2**64-1)")
    p.add_argument("--quick", action="store_true",
                   help="a tiny run (few epochs, fewer examples) for smoke tests")
    _add_array_module_flag(p)

    p = _command(sub, "train", "train a model through a precision policy; writes RUN_DIR/metrics.json "
                               "and a checkpoint every epoch")
    _add_model_flags(p, "mlp:64-64-10")
    _add_data_flags(p, "digits")
    _add_scheme_flag(p)
    p.add_argument("--epochs", type=_positive_int, default=10, help="epochs (default 10)")
    p.add_argument("--batch", type=_positive_int, default=64, help="minibatch size (default 64)")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam", help="default adam")
    p.add_argument("--lr", type=_positive_float, default=1e-3, help="learning rate (default 1e-3)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="L2 weight decay (default 0)")
    p.add_argument("--schedule", default=None,
                   help="learning-rate schedule: constant (default), step:STEP_SIZE[:GAMMA], "
                        "cosine[:MIN_LR]")
    p.add_argument("--seed", type=_seed, default=0, help="seed for split, init, shuffling, rounding "
                                                         "(0 .. 2**64-1)")
    p.add_argument("--out", required=True, metavar="RUN_DIR",
                   help="run directory (created; owned by one process at a time via RUN_DIR/run.lock)")
    run = p.add_mutually_exclusive_group()
    run.add_argument("--resume", action="store_true",
                     help="continue from RUN_DIR's last checkpoint; model, data, policy and optimizer "
                          "come from the run (a flag given explicitly must agree with it), --epochs is "
                          "the new total")
    run.add_argument("--overwrite", action="store_true",
                     help="replace an existing run in RUN_DIR (refused without this flag)")
    _add_optical_flag(p, "train with")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_array_module_flag(p)
    p.add_argument("--bptt", type=_positive_int, default=50,
                   help="text data: characters per truncated-BPTT chunk (default 50)")
    p.add_argument("--loss", choices=("xent", "mse"), default=None,
                   help="training loss (default: xent for integer labels, mse for float targets of an npz)")

    p = _command(sub, "eval", "evaluate a trained run's checkpoint on its test split or other data")
    p.add_argument("run_dir", metavar="RUN_DIR")
    _add_data_flags(p, None)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    _add_optical_flag(p, "evaluate (instead of the run's own setting; 'none': digitally)")
    _add_array_module_flag(p)

    p = _command(sub, "cost", "latency and energy per inference (or training step) on device profiles")
    _add_model_flags(p, "mlp:784-256-256-10")
    _add_scheme_flag(p)
    p.add_argument("--device", action="append", default=None, metavar="NAME|PATH.toml",
                   help="profile name or TOML file; repeatable (default: every shipped profile)")
    p.add_argument("--input-shape", default=None, metavar="CxHxW",
                   help="input shape without batch, e.g. 784 or 1x28x28 (default: from the model "
                        "spec; 1x28x28 for cnn:lenet5)")
    p.add_argument("--batch", type=_positive_int, default=1, help="batch size (default 1)")
    p.add_argument("--training", action="store_true",
                   help="cost a training step (forward, backward, update) instead of an inference")
    p.add_argument("--layers", action="store_true", help="per-layer breakdown in the table")
    _add_optical_flag(p, "cost (on optical4f profiles, with these photons and DAC/ADC bits)")
    p.add_argument("--skip-unsupported", action="store_true",
                   help="ONNX model: cost an unsupported op as its memory traffic (with a warning) "
                        "instead of stopping")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true",
                     help="print JSON: latency_s and energy_j per device and per layer")
    out.add_argument("--csv", metavar="PATH", default=None, help="write one row per device and layer")

    p = _command(sub, "devices", "list the device profiles or show one")
    p.add_argument("name", nargs="?", default=None, metavar="NAME|PATH.toml")

    p = _command(sub, "calibrate", "measure this machine and write a device profile (TOML)")
    p.add_argument("--out", default="local-cpu.toml", help="profile file to write (default local-cpu.toml)")
    p.add_argument("--quick", action="store_true", help="small measurement sizes (seconds, less accurate)")

    p = _command(sub, "quantize", "post-training min-max quantization of a trained run's weights at "
                                  "each bit width, with the test accuracy of each")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--bits", type=_positive_int, nargs="+", required=True, metavar="N",
                   help="weight/bias widths in bits (2..62), e.g. --bits 12 10 8 6")
    _add_data_flags(p, None)
    p.add_argument("--json", action="store_true", help="print the rows as JSON")

    p = _command(sub, "sweep", "train, evaluate and cost a grid of models x precisions x schemes x seeds on "
                               "Dask; writes OUT/results.csv, results.json and report.md (Pareto fronts)")
    p.add_argument("spec", metavar="SPEC.toml", help="the grid (TOML)")
    p.add_argument("--out", required=True, metavar="DIR", help="sweep folder (created; refused if it "
                                                              "holds another sweep unless --resume)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of an existing Dask scheduler, e.g. tcp://host:8786 (default: start a "
                        "LocalCluster); its workers must see DIR at the same path")
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="LocalCluster worker processes, one thread each (default: one per CPU)")
    p.add_argument("--threads", type=_positive_int, default=1,
                   help="Numba threads per task (default 1: parallel kernels on shared cores slow "
                        "each other)")
    p.add_argument("--resume", action="store_true",
                   help="continue the sweep in DIR: keep finished cells, rerun failed and missing ones, "
                        "continue interrupted training from its last checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress lines")

    p = _command(sub, "report", "markdown report with plots from RUN_DIR/metrics.json")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", default=None, help="report folder (default RUN_DIR)")
    parser.commands = sub.choices  # name -> subparser (for `explicit_flags`)
    return parser


def explicit_flags(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set[str]:
    """The dests of the options given on the command line ``argv`` (not filled from defaults)."""
    argv = list(argv)
    command = parser.commands[argv[0]]
    saved = [(a, a.default) for a in command._actions]
    try:
        for a, _ in saved:
            a.default = argparse.SUPPRESS
        return set(vars(command.parse_args(argv[1:])))
    finally:
        for a, default in saved:
            a.default = default


def _handler(command: str) -> Callable[[argparse.Namespace], int]:
    if command == "demo":
        from hwsim._demo import run_demo
        return run_demo
    if command == "quantize":
        from hwsim._cli_quantize import cmd_quantize
        return cmd_quantize
    if command == "sweep":
        from hwsim._sweep import cmd_sweep
        return cmd_sweep
    if command in ("train", "eval", "report"):
        from hwsim import _cli_run
        return getattr(_cli_run, f"cmd_{command}")
    from hwsim import _cli_cost
    return getattr(_cli_cost, f"cmd_{command}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hwsim`` console script; returns the exit status."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.explicit = explicit_flags(parser, argv)
    try:
        return _handler(args.command)(args)
    except (ValueError, FileNotFoundError, IsADirectoryError, NotADirectoryError, FileExistsError,
            PermissionError, OverflowError) as exc:
        print(f"hwsim {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except FloatingPointError as exc:  # hwsim.DivergenceError: names the layer and role
        print(f"hwsim {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:  # training writes a checkpoint first and says where
        print(f"hwsim {args.command}: {exc or 'interrupted'}", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (an OSError with its file name, e.g. 'x: Is a directory')."""
    if isinstance(exc, OSError) and exc.filename is not None and not isinstance(exc, FileNotFoundError):
        text = f"{exc.filename}: {exc.strerror or exc}"
    elif isinstance(exc, json.JSONDecodeError):
        text = f"not valid JSON ({exc})"
    else:
        text = str(exc)
    return " ".join(text.split())


if __name__ == "__main__":  # pragma: no cover - `python -m hwsim.cli`
    sys.exit(main())
