"""Pieces shared by the CLI commands: the precision policy and the model from the flags, input checks."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hwsim._data import Dataset, load_data
from hwsim._precision import ROLES, Precision
from hwsim._seq_spec import seq_input_shape

__all__ = ["precision_from_args", "warn_unsigned_weights", "check_output_file", "mlp_input_features",
           "load_data_for_model", "parse_shape", "cost_input_shape", "optical_from_args"]

#: Input shape assumed by ``hwsim cost`` for a CNN spec when ``--input-shape`` is not given.
DEFAULT_CNN_INPUT = (1, 28, 28)


def precision_from_args(args: argparse.Namespace) -> Precision:
    """The policy of ``--precision`` refined by the per-role flags, ``--mode`` and ``--seed``."""
    roles = {r: getattr(args, r) for r in ROLES if getattr(args, r, None) is not None}
    return Precision.from_flags(args.precision, seed=getattr(args, "seed", 0), mode=args.mode, **roles)


def warn_unsigned_weights(precision: Precision, command: str) -> None:
    """One warning line on stderr when the weight role is an unsigned fixed-point format: every
    negative weight then saturates to 0, which a network rarely survives (digits: ~10 % accuracy)."""
    q = precision.weight
    fmt = getattr(q, "fmt", None)
    if fmt is not None and getattr(fmt, "signed", True) is False:
        print(f"hwsim {command}: warning: --weight {q.name} is unsigned: every negative weight becomes 0; "
              f"use a signed format such as s{fmt.word}.{max(fmt.frac - 1, 0)}", file=sys.stderr)


def check_output_file(path: str | Path, flag: str) -> Path:
    """``path`` as a Path if a file can be written there: ValueError naming ``flag`` when it is a
    directory or its parent is a file (checked before any work, so nothing is written on error)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{flag} {path}: is a directory; give a file path")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{flag} {path}: {parent} is a file, not a directory")
            break
    return path


def check_scheme_flags(args: argparse.Namespace) -> None:
    """``--scheme`` sets the whole policy: refuse it beside a non-float ``--precision`` or role flags."""
    if getattr(args, "scheme", None) and not precision_from_args(args).is_float:
        raise ValueError("--scheme sets the precision policy: drop --precision and the per-role flags")


def mlp_input_features(model_spec: str) -> int | None:
    """The input width of an ``mlp:IN-...`` spec, or None for other specs / a malformed first token
    (left to ``build_model`` to report)."""
    kind, _, body = model_spec.partition(":")
    if kind != "mlp":
        return None
    first = body.split("-")[0]
    return int(first) if first.isdigit() else None


def flat_input(model_spec: str) -> bool:
    """True when ``model_spec`` takes flat vectors: ``mlp:`` specs and ``seq:`` specs whose IN is a
    single size (``seq:784,...``); a malformed IN is left to ``build_model`` to report."""
    if model_spec.startswith("mlp:"):
        return True
    if model_spec.startswith("seq:"):
        try:
            return len(seq_input_shape(model_spec)) == 1
        except ValueError:
            return False
    return False


def load_data_for_model(model_spec: str, data_spec: str, split: int | None, seed: int) -> Dataset:
    """Load ``data_spec`` in the layout ``model_spec`` needs: flattened vectors for `flat_input`
    specs, NCHW images otherwise (``build_model`` then reports an input width that does not match)."""
    return load_data(data_spec, split=split, seed=seed, flatten=flat_input(model_spec))


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1x28x28"`` or ``"784"`` → a tuple of positive ints (ValueError naming the bad text)."""
    parts = text.lower().replace("×", "x").split("x")
    if not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"bad --input-shape {text!r}: expected positive integers joined by 'x', "
                         f"e.g. 784 or 1x28x28")
    return tuple(int(p) for p in parts)


def cost_input_shape(model_spec: str, text: str | None) -> tuple[int, ...]:
    """The input shape for costing ``model_spec``: ``--input-shape`` if given, else a ``seq:`` spec's
    IN, the MLP's width or `DEFAULT_CNN_INPUT`."""
    if text is not None:
        return parse_shape(text)
    if model_spec.startswith("seq:"):
        return seq_input_shape(model_spec)
    n_in = mlp_input_features(model_spec)
    return (n_in,) if n_in is not None else DEFAULT_CNN_INPUT



def optical_from_args(text: str | None, default: str | None = None, array_module: str | None = "numpy"):
    """The ``FourF`` of an ``--optical`` spec (else of ``default``, e.g. a run's saved spec); None for
    neither or ``none`` (digital). A bad spec, or optics with ``--array-module cupy`` (the emulation is
    numpy only), is a ValueError naming the flag and the bad key or value."""
    from hwsim.optics import FourF
    text = text if text is not None else default
    if text is None or text.strip().lower() == "none":
        return None
    try:
        optical = FourF.parse(text)
    except ValueError as exc:
        raise ValueError(f"--optical: {exc}") from None
    if array_module not in (None, "numpy"):
        raise ValueError(f"--optical runs on numpy arrays: use --array-module numpy, not {array_module!r}")
    return optical
