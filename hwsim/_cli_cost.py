"""``hwsim cost``, ``hwsim devices`` and ``hwsim calibrate``: the device side of the command line."""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import devices
from hwsim._cli_common import (
    check_output_file,
    check_scheme_flags,
    cost_input_shape,
    optical_from_args,
    precision_from_args,
)
from hwsim._model import build_model
from hwsim._report import format_si, md_table
from hwsim._rundir import atomic_write
from hwsim._workload import layer_of, workload
from hwsim.layers import set_optical
from hwsim.schemes import parse_scheme

__all__ = ["cost_by_device", "cmd_cost", "cmd_devices", "cmd_calibrate"]


def _layer_totals(est: Any) -> list[dict]:
    """Per-layer sums of an Estimate's rows, in op order; ``bound`` of the layer's slowest op."""
    layers: dict[str, dict] = {}
    for row in est.rows:
        label = layer_of(row.name)
        entry = layers.setdefault(label, {"name": label, "latency_s": 0.0, "energy_j": 0.0,
                                          "bound": row.bound, "_slowest": -1.0})
        entry["latency_s"] += float(row.latency_s)
        entry["energy_j"] += float(row.energy_j)
        if row.latency_s > entry["_slowest"]:
            entry["_slowest"], entry["bound"] = float(row.latency_s), row.bound
    return [{k: v for k, v in e.items() if k != "_slowest"} for e in layers.values()]


def cost_by_device(wl: "devices.Workload", names: list[str], optical: Any = None) -> dict[str, dict]:
    """``{device: {"latency_s", "energy_j", "dynamic_energy_j", "layers": [{name, latency_s, energy_j,
    bound}]}}``; ``dynamic_energy_j`` is the arithmetic and memory-traffic energy without static power.
    ``optical`` (a ``hwsim.optics.FourF``): optical4f profiles run at its photons and DAC/ADC bits.
    An optical4f profile's entry also has ``optical_ops`` (how many ops run on the optics; the rest run
    on its host) and ``host`` (the host profile's name)."""
    out = {}
    for name in names:
        prof = devices.load(name)
        if optical is not None and prof.optical is not None:
            prof = prof.with_optical(photons_per_pixel=optical.photons_per_pixel, dac_bits=optical.dac_bits,
                                     adc_bits=optical.adc_bits)
        est = devices.estimate(wl, prof)
        dynamic = sum(float(r.compute_j) + float(r.memory_j) for r in est.rows)
        out[name] = {"latency_s": float(est.latency_s), "energy_j": float(est.energy_j),
                     "dynamic_energy_j": dynamic, "layers": _layer_totals(est)}
        if prof.host is not None:
            out[name]["optical_ops"] = sum(r.part == "optical" for r in est.rows)
            out[name]["host"] = prof.host.name
    return out


def _host_only(per_device: dict[str, dict]) -> dict[str, str]:
    """``{device: host}`` for the optical4f devices on which no op of the workload runs optically: their
    rows are their host's cost alone (a dense MLP has no convolution or circulant product to send to
    the 4f system)."""
    return {name: d["host"] for name, d in per_device.items() if d.get("optical_ops") == 0}


def _onnx_workload(args: argparse.Namespace) -> tuple[Any, Any]:
    """(workload, precision) of an ``--model FILE.onnx`` (see hwsim._onnx_workload); warnings for
    skipped ops go to stderr as one line each."""
    import warnings

    from hwsim._onnx_workload import workload_from_onnx
    for flag, given in (("--scheme", args.scheme), ("--training", args.training),
                        ("--input-shape", args.input_shape)):
        if given:
            raise ValueError(f"{flag} does not apply to an ONNX model (its graph fixes the layers and "
                             "shapes)")
    precision = precision_from_args(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            wl = workload_from_onnx(args.model, precision, batch=args.batch,
                                    skip_unsupported=args.skip_unsupported)
        except ImportError as exc:
            raise ValueError(str(exc)) from None
    for w in caught:
        print(f"hwsim cost: warning: {w.message}", file=sys.stderr)
    return wl, precision


def cmd_cost(args: argparse.Namespace) -> int:
    if args.csv:
        check_output_file(args.csv, "--csv")
    optical = optical_from_args(getattr(args, "optical", None))
    if args.model.lower().endswith(".onnx"):
        wl, precision = _onnx_workload(args)
        return _print_cost(args, wl, precision, None, optical)
    shape = cost_input_shape(args.model, args.input_shape)
    check_scheme_flags(args)
    if args.scheme:
        scheme = parse_scheme(args.scheme)
        model = scheme.build_model(args.model, shape, None)
        # BNN costs binary activations too; other schemes cost the policy they train with
        precision = getattr(scheme, "workload_precision", scheme.precision)()
    else:
        precision = precision_from_args(args)
        model = build_model(args.model, input_shape=shape, num_classes=None)
    set_optical(model, optical)
    wl = workload(model, precision, batch=args.batch, training=args.training)
    return _print_cost(args, wl, precision, shape, optical)


def _print_cost(args: argparse.Namespace, wl: "devices.Workload", precision: Any, shape: tuple | None,
                optical: Any) -> int:
    names = args.device or devices.list_profiles()
    if optical is not None and not any(devices.load(n).optical is not None for n in names):
        names = [*names, optical.profile]
    per_device = cost_by_device(wl, names, optical)
    what = "training step" if args.training else "inference"
    if args.json:
        print(json.dumps({"model": args.model, "input_shape": list(shape) if shape else None,
                          "batch": args.batch,
                          "what": what, "precision": precision.to_dict(), "devices": per_device,
                          "optical": optical.spec if optical is not None else None},
                         indent=2))
        return 0
    if args.csv:
        _write_csv(Path(args.csv), per_device)
    where = f" on input {'x'.join(map(str, shape))}" if shape else ""
    print(f"{args.model}{where}, batch {args.batch}, one {what}; precision: {precision}")
    host_only = _host_only(per_device)
    rows = []
    for name, d in per_device.items():
        label = f"{name} (all on host {host_only[name]})" if name in host_only else name
        rows.append([label, "(total)" if args.layers else "", format_si(d["latency_s"], "s"),
                     format_si(d["energy_j"], "J"), format_si(d["dynamic_energy_j"], "J"), ""])
        if args.layers:
            rows += [["", e["name"], format_si(e["latency_s"], "s"), format_si(e["energy_j"], "J"), "",
                      e["bound"]] for e in d["layers"]]
    headers = ["device", "layer", "latency", "energy", "dynamic energy", "bound"]
    if not args.layers:
        headers = ["device", "latency", "energy", "dynamic energy"]
        rows = [[r[0], r[2], r[3], r[4]] for r in rows]
    print(md_table(headers, rows))
    for name, host in host_only.items():
        print(f"{name}: no op of this model runs optically (the 4f system runs convolutions and circulant / "
              f"Fourier-diagonal products); its row is the cost of running everything on its host {host}")
    if args.csv:
        print(f"wrote {args.csv}")
    return 0


def _write_csv(path: Path, per_device: dict[str, dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = io.StringIO(newline="")
    w = csv.writer(fh)
    w.writerow(["device", "layer", "latency_s", "energy_j", "bound"])
    for name, d in per_device.items():
        w.writerow([name, "total", repr(d["latency_s"]), repr(d["energy_j"]), ""])
        for e in d["layers"]:
            w.writerow([name, e["name"], repr(e["latency_s"]), repr(e["energy_j"]), e["bound"]])
    atomic_write(path, lambda f: f.write(fh.getvalue().encode()))


def cmd_devices(args: argparse.Namespace) -> int:
    if args.name is not None:
        prof = devices.load(args.name)
        print(f"# {prof.name} ({prof.kind}) — {prof.source}\n")
        sys.stdout.write(Path(prof.source).read_text())
        return 0
    rows = []
    for name in devices.list_profiles():
        prof = devices.load(name)
        rows.append([name, prof.kind, prof.source])
    print(md_table(["profile", "kind", "file"], rows))
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    check_output_file(args.out, "--out")
    prof = devices.calibrate(out=args.out, quick=args.quick)
    print(f"wrote profile {prof.name!r} to {prof.source}; use it with: hwsim cost --device {args.out}")
    return 0
