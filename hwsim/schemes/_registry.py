"""Scheme names -> scheme classes; `get_scheme` builds one from a name and parameters.

Names usable as ``--scheme NAME`` (optionally ``NAME:key=value,key=value``, see `parse_scheme`).
"""
from __future__ import annotations

import dataclasses

from ._base import Scheme
from ._binaryconnect import BinaryConnect
from ._bnn import BNN
from ._fixed import FIXED_PRESETS, FixedPoint, Float32
from ._qbp import QuantizedBackprop
from ._ternary import TWN, TernaryConnect

SCHEMES: dict[str, type[Scheme]] = {
    cls.name: cls for cls in (Float32, BinaryConnect, TernaryConnect, TWN, QuantizedBackprop, BNN, FixedPoint)
}
#: Preset names: scheme name -> default parameters.
PRESET_SCHEMES: dict[str, tuple[str, dict]] = {
    name: ("fixed", {"preset": preset}) for name, preset in FIXED_PRESETS.items()
}


def scheme_names() -> list[str]:
    """Every name `get_scheme` accepts."""
    return sorted([*SCHEMES, *PRESET_SCHEMES])


def _fields(cls: type[Scheme]) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def get_scheme(name: str, **params) -> Scheme:
    """The scheme called ``name`` with ``params`` (its dataclass fields).

    Unknown names or parameters raise ValueError listing the valid ones.
    """
    if not isinstance(name, str) or name not in SCHEMES and name not in PRESET_SCHEMES:
        raise ValueError(f"unknown scheme {name!r}: valid schemes are {', '.join(scheme_names())}")
    base, defaults = PRESET_SCHEMES.get(name, (name, {}))
    cls = SCHEMES[base]
    valid = _fields(cls)
    bad = sorted(set(params) - set(valid))
    if bad:
        raise ValueError(f"scheme {name!r} has no parameter(s) {', '.join(bad)}: valid parameters are "
                         f"{', '.join(sorted(valid))}")
    try:
        return cls(**{**defaults, **params})
    except TypeError as err:
        raise ValueError(f"bad parameter for scheme {name!r}: {err}") from None


def _convert(text: str, default, key: str, name: str):
    if isinstance(default, bool):
        low = text.lower()
        if low not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"scheme {name!r} parameter {key!r} must be true or false, got {text!r}")
        return low in ("true", "1", "yes")
    for kind in (int, float):
        if isinstance(default, kind):
            try:
                return kind(text)
            except ValueError:
                raise ValueError(f"scheme {name!r} parameter {key!r} must be {kind.__name__}, "
                                 f"got {text!r}") from None
    return None if text.lower() == "none" else text


def parse_scheme(text: str) -> Scheme:
    """``"NAME"`` or ``"NAME:key=value,key=value"`` (CLI form) -> scheme; values typed by the field
    defaults."""
    name, _, rest = str(text).partition(":")
    get_scheme(name)      # a bad name fails first, listing the valid ones
    base, defaults = PRESET_SCHEMES.get(name, (name, {}))
    fields = _fields(SCHEMES[base])
    params = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"bad scheme parameter {item!r} in {text!r}: expected key=value")
        key = key.strip()
        default = defaults.get(key, fields[key].default) if key in fields else None
        params[key] = _convert(value.strip(), default, key, name)
    return get_scheme(name, **params)


def build_scheme_model(spec: str, scheme: str | None, input_shape: tuple, num_classes: int | None, *,
                       seed: int = 0):
    """``hwsim.build_model(spec, ...)``, or the model of ``parse_scheme(scheme)`` when ``scheme`` is set
    (what ``hwsim train --scheme`` builds and ``hwsim eval``/``quantize`` rebuild)."""
    if scheme:
        return parse_scheme(scheme).build_model(spec, input_shape, num_classes, seed=seed)
    from .._model import build_model
    return build_model(spec, input_shape, num_classes, seed=seed)
