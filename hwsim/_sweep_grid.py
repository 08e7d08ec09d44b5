"""Sweep grids: a TOML spec expands to cells (one row of results each) grouped into training runs.

Spec (``hwsim sweep SPEC.toml``)::

    [grid]                      # every list is a grid axis; scalars are shared by all cells
    model = ["mlp:64-32-10"]
    data = "digits"
    precision = ["fp32", "fixed8"]
    seed = [0, 1]
    epochs = 3
    devices = ["stm32h743", "h100-sxm"]

``[[grid]]`` (an array of tables) gives several grids whose cells are pooled (identical cells once);
an optional ``[defaults]`` table holds keys every grid inherits. Keys (`GRID_KEYS`):

* training (a change retrains): ``model``, ``data``, ``split``, ``scheme``, ``precision`` (a preset),
  the per-role formats ``weight`` ``activation`` ``error`` ``grad`` ``update`` ``acc`` (refining the
  preset, as ``hwsim train --weight ...``), ``mode``, ``seed``, ``epochs``, ``batch``, ``optimizer``,
  ``lr``, ``momentum``, ``weight_decay``, ``schedule``;
* after training (cells that differ only here share one trained run): ``ptq_bits`` (post-training
  min-max quantization of the weights to that many bits, ``"none"`` = as trained), ``optical``
  (overrides of the ``[optical]`` table of every optical4f device, e.g. ``{modulator.bits = 4}``),
  ``cost_batch`` (the inference batch the devices cost, default 1), ``label`` (free text);
* ``devices``: the profiles every cell is costed on (columns, not an axis; default every profile).

A list value is an axis (``optical``: a list of tables); the cells are the Cartesian product of the
axes in key order. ``"none"`` stands for "not set" where TOML has no null (``split``, ``scheme``,
``schedule``, a role, ``ptq_bits``). Validation happens before anything is written: an unknown key,
a wrong type, an empty axis, a bad format, model, scheme, device or optical key is a ValueError
naming the key (and the grid, when there are several).
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import devices
from hwsim._cli_common import load_data_for_model
from hwsim._model import build_model
from hwsim._precision import PRESETS, ROLES, Precision
from hwsim.schemes import parse_scheme

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["GRID_KEYS", "TRAIN_KEYS", "Grid", "expand_grid", "load_grid", "optical_profile"]

_NONE = "none"
#: key -> (allowed python types, default). ``None`` default = not set.
_TRAIN = {
    "model": ((str,), None), "data": ((str,), "digits"), "split": ((int,), None),
    "scheme": ((str,), None), "precision": ((str,), "fp32"),
    **{role: ((str,), None) for role in ROLES},
    "mode": ((str,), "fast"), "seed": ((int,), 0), "epochs": ((int,), 10), "batch": ((int,), 64),
    "optimizer": ((str,), "adam"), "lr": ((float, int), 1e-3), "momentum": ((float, int), 0.9),
    "weight_decay": ((float, int), 0.0), "schedule": ((str,), None),
}
_AFTER = {"ptq_bits": ((int,), None), "optical": ((dict,), None), "cost_batch": ((int,), 1),
          "label": ((str,), None)}
TRAIN_KEYS = tuple(_TRAIN)
#: Every coordinate key, in column order.
COORD_KEYS = (*_TRAIN, *_AFTER)
GRID_KEYS = (*COORD_KEYS, "devices")
_NULLABLE = {"split", "scheme", "schedule", "ptq_bits", "label", *ROLES}


@dataclass(frozen=True)
class Grid:
    """An expanded, validated sweep: ``cells`` (dicts: ``cell``, ``run`` ids and every key of
    `COORD_KEYS`), ``runs`` (run id -> training coordinates), the ``devices`` to cost on and the
    ``axes`` (the keys whose value differs between cells)."""

    cells: list[dict]
    runs: dict[str, dict]
    devices: list[str]
    axes: list[str]


def load_grid(spec: str | Path | dict) -> dict:
    """The TOML of ``spec`` (a path) as a dict; a dict is returned as is."""
    if isinstance(spec, dict):
        return spec
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"sweep spec {path} not found")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"sweep spec {path}: not valid TOML: {exc}") from None


def _digest(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def _check_value(key: str, value: Any, where: str) -> Any:
    types, _ = {**_TRAIN, **_AFTER}[key]
    if isinstance(value, str) and value.lower() == _NONE and key in _NULLABLE:
        return None
    ok = isinstance(value, types) and not isinstance(value, bool)
    if not ok:
        names = " or ".join("table" if t is dict else t.__name__ for t in types)
        if key in _NULLABLE:
            names += ' or "none"'
        raise ValueError(f"{where}key {key!r}: expected {names}, got {value!r}")
    if key in ("lr", "momentum", "weight_decay"):
        value = float(value)
    if key in ("epochs", "batch", "cost_batch") and value < 1:
        raise ValueError(f"{where}key {key!r}: must be >= 1, got {value}")
    if key == "lr" and not value > 0:
        raise ValueError(f"{where}key 'lr': must be > 0, got {value}")
    if key in ("momentum", "weight_decay") and value < 0:
        raise ValueError(f"{where}key {key!r}: must be >= 0, got {value}")
    if key == "split" and value < 1:
        raise ValueError(f"{where}key 'split': must be >= 1 (or \"none\"), got {value}")
    if key == "ptq_bits" and not 2 <= value <= 62:
        raise ValueError(f"{where}key 'ptq_bits': must be in [2, 62] (or \"none\"), got {value}")
    if key == "mode" and value not in ("fast", "exact"):
        raise ValueError(f"{where}key 'mode': must be fast or exact, got {value!r}")
    if key == "optimizer" and value not in ("adam", "sgd"):
        raise ValueError(f"{where}key 'optimizer': must be adam or sgd, got {value!r}")
    if key == "precision" and value not in PRESETS:
        raise ValueError(f"{where}key 'precision': {value!r} is not a preset ({', '.join(PRESETS)}); "
                         f"set per-role formats with the keys {', '.join(ROLES)}")
    return value


def _flatten(table: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in table.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def optical_profile(name: str, overrides: dict | None) -> devices.Profile:
    """The profile ``name`` with ``overrides`` (a nested table) merged into its ``[optical]`` table.

    Electronic profiles are returned unchanged. Every overridden key must exist in the profile and
    keep its type (numbers stay numbers, >= 0; bit widths and pixel counts integers >= 1), else
    ValueError naming it."""
    prof = devices.load(name)
    if not overrides or prof.kind != "optical4f":
        return prof
    data = copy.deepcopy(prof.data)
    have = _flatten(data["optical"])
    for key, value in _flatten(overrides).items():
        if key not in have:
            raise ValueError(f"key 'optical': {key!r} is not in the [optical] table of {prof.name} "
                             f"(keys: {', '.join(sorted(have))})")
        old = have[key]
        if isinstance(old, (int, float)) != isinstance(value, (int, float)) or isinstance(value, bool):
            raise ValueError(f"key 'optical': {key} = {value!r} must be a {type(old).__name__} like the "
                             f"profile's {old!r}")
        *path, last = key.split(".")
        if isinstance(value, (int, float)) and (
                value < 0 or (last.endswith("bits") or last.startswith("pixels"))
                and (value != int(value) or value < 1)):
            raise ValueError(f"key 'optical': {key} must be {'an integer >= 1' if value >= 0 else '>= 0'}, "
                             f"got {value!r}")
        node = data["optical"]
        for part in path:
            node = node[part]
        node[last] = type(old)(value) if isinstance(old, (int, float)) else value
    return devices.Profile(name=prof.name, kind=prof.kind,
                           source=f"{prof.source} [{optical_label(overrides)}]",
                           data=data)


def optical_label(overrides: dict | None) -> str:
    """``"modulator.bits=4,photons_per_pixel=1000"`` (empty for None)."""
    return ",".join(f"{k}={v}" for k, v in sorted(_flatten(overrides or {}).items()))


def _axes_of(table: dict, where: str) -> tuple[dict[str, list], list[str] | None]:
    unknown = sorted(set(table) - set(GRID_KEYS))
    if unknown:
        raise ValueError(f"{where}unknown key(s) {', '.join(map(repr, unknown))}: allowed keys are "
                         f"{', '.join(GRID_KEYS)}")
    dev = table.get("devices")
    if dev is not None:
        dev = [dev] if isinstance(dev, str) else dev
        if not isinstance(dev, list) or not dev or not all(isinstance(d, str) for d in dev):
            raise ValueError(f"{where}key 'devices': expected a non-empty list of profile names or "
                             f"paths, got {table['devices']!r}")
    axes = {}
    for key in COORD_KEYS:
        value = table.get(key, _TRAIN.get(key, _AFTER.get(key))[1])
        values = value if isinstance(value, list) else [value]
        if not values:
            raise ValueError(f"{where}key {key!r} is an empty list: give at least one value")
        axes[key] = [v if v is None else _check_value(key, v, where) for v in values]
    if axes["model"] == [None]:
        raise ValueError(f"{where}key 'model' is required, e.g. model = [\"mlp:64-32-10\"]")
    return axes, dev


def _validate_runs(runs: dict[str, dict]) -> None:
    """Model, data, precision and scheme of every training run (loads each data spec once)."""
    shapes: dict[tuple, tuple] = {}
    for run in runs.values():
        where = f"cell model={run['model']!r} precision={run['precision']!r}: "
        key = (run["data"], run["split"], run["model"].startswith("mlp:"))
        if key not in shapes:
            data = load_data_for_model(run["model"], run["data"], run["split"], run["seed"])
            shapes[key] = (data.input_shape, data.num_classes)
        shape, classes = shapes[key]
        try:
            precision = Precision.from_flags(run["precision"], seed=run["seed"], mode=run["mode"],
                                             **{r: run[r] for r in ROLES if run[r] is not None})
            if run["scheme"] is not None:
                parse_scheme(run["scheme"])
                if not precision.is_float:
                    raise ValueError("a scheme sets the precision policy: drop precision and the "
                                     "per-role keys from cells with a scheme")
            build_model(run["model"], shape, classes, seed=0)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where}{exc}") from None


def expand_grid(spec: str | Path | dict) -> Grid:
    """Validate ``spec`` (TOML path or parsed dict) and expand it to cells (see the module docstring)."""
    doc = load_grid(spec)
    extra = sorted(set(doc) - {"grid", "defaults"})
    if extra or "grid" not in doc:
        raise ValueError(f"sweep spec: expected a [grid] table (or [[grid]] tables) and optionally "
                         f"[defaults]; {'unknown table(s) ' + ', '.join(extra) if extra else 'no [grid]'}")
    grids = doc["grid"] if isinstance(doc["grid"], list) else [doc["grid"]]
    defaults = doc.get("defaults", {})
    cells, runs, seen, dev_lists = [], {}, set(), []
    for i, table in enumerate(grids):
        where = f"[[grid]] #{i + 1}: " if len(grids) > 1 else "[grid] "
        axes, dev = _axes_of({**defaults, **table}, where)
        dev_lists.append(dev)
        for values in itertools.product(*axes.values()):
            coords = dict(zip(axes, values))
            run = {k: coords[k] for k in TRAIN_KEYS}
            cell_id = _digest(coords)
            if cell_id in seen:
                continue
            seen.add(cell_id)
            run_id = _digest(run)
            runs[run_id] = run
            cells.append({"cell": cell_id, "run": run_id, **coords})
    names = next((d for d in dev_lists if d is not None), None) or devices.list_profiles()
    if any(d is not None and d != names for d in dev_lists):
        raise ValueError("key 'devices': every [[grid]] must list the same devices (they are the "
                         "result columns); put them in [defaults]")
    for name in names:
        devices.load(name)
    for overrides in {json.dumps(c["optical"], sort_keys=True) for c in cells if c["optical"]}:
        if not any(devices.load(n).kind == "optical4f" for n in names):
            raise ValueError("key 'optical': no optical4f profile among the devices to apply it to")
        for name in names:
            optical_profile(name, json.loads(overrides))
    _validate_runs(runs)
    varying = [k for k in COORD_KEYS if len({json.dumps(c[k], sort_keys=True) for c in cells}) > 1]
    return Grid(cells=cells, runs=runs, devices=list(names), axes=varying)
