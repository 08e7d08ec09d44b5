"""``hwsim demo``: the README's main job, on the embedded digits set.

Trains the MLP `DEMO_MODEL` (64 inputs → 64 hidden ReLU units → 10 classes) with Adam for `EPOCHS`
epochs under four policies — fp32 and the ``fixed16``, ``fixed8`` and ``fixed4`` presets of
`hwsim.Precision.from_flags` (fixed-point weights and activations of 16, 8 and 4 bits; master
weights updated through ``s16.14`` with stochastic rounding) — on the seeded 1,437/360 digits split,
prints an accuracy table and the latency and energy of one inference (batch 1) on every device
profile, and writes ``OUT/report.md`` with ``accuracy_vs_bits.png`` and ``energy_per_device.png``.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import devices
from hwsim._cli_common import load_data_for_model
from hwsim._cli_cost import cost_by_device
from hwsim._model import build_model
from hwsim._precision import Precision
from hwsim._report import format_si, md_table, write_demo_report
from hwsim._train import train
from hwsim._workload import workload
from hwsim._xp import array_module_named

__all__ = ["run_demo", "DEMO_MODEL", "POLICIES"]

DEMO_MODEL = "mlp:64-64-10"
EPOCHS, QUICK_EPOCHS, QUICK_EXAMPLES = 30, 2, 256
BATCH, LR = 32, 3e-3
#: (label, --precision preset, weight/activation bits) of the demo's four runs.
POLICIES = (("fp32", "fp32", 32), ("16-bit", "fixed16", 16), ("8-bit", "fixed8", 8), ("4-bit", "fixed4", 4))


def run_demo(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    array_module_named(args.array_module, "--array-module")  # checked before any training
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else EPOCHS)
    data = load_data_for_model(DEMO_MODEL, "digits", None, args.seed)
    if args.quick:
        data = dataclasses.replace(data, X_train=data.X_train[:QUICK_EXAMPLES],
                                   y_train=data.y_train[:QUICK_EXAMPLES])
    print(f"hwsim demo: {DEMO_MODEL} on the embedded 8x8 digits ({len(data.y_train)} train / "
          f"{len(data.y_test)} test), Adam lr {LR}, batch {BATCH}, {epochs} epochs per policy")
    cold = kernel_cache_cold()
    with announce_if_slow("compiling kernels (first run only)…" if cold else "loading compiled kernels…",
                          after_s=0.0 if cold else ANNOUNCE_AFTER_S):
        _warm_up(data, args.seed)
    results, models = [], {}
    for label, preset, bits in POLICIES:
        precision = Precision.from_flags(preset, seed=args.seed)
        model = build_model(DEMO_MODEL, input_shape=data.input_shape, num_classes=data.num_classes,
                            seed=args.seed)
        m = train(model, data, precision, epochs=epochs, batch=BATCH, optimizer="adam", lr=LR,
                  seed=args.seed, progress=False, xp=args.array_module)
        results.append({"label": label, "bits": bits, "test_accuracy": float(m["test_accuracy"]),
                        "epoch_seconds": list(m["epoch_seconds"]), "precision": precision.to_dict()})
        models[label] = (model, precision)
        print(f"  {label:>6}: test accuracy {100 * m['test_accuracy']:.2f} %  ({precision})")

    names = devices.list_profiles()
    costs: dict[str, dict[str, dict]] = {name: {} for name in names}
    for label, (model, precision) in models.items():
        for name, cost in cost_by_device(workload(model, precision, batch=1), names).items():
            costs[name][label] = cost

    labels = [r["label"] for r in results]
    print()
    print(md_table(["policy", "test accuracy (%)"], [[r["label"], f"{100 * r['test_accuracy']:.2f}"]
                                                      for r in results]))
    print("\nOne inference (batch 1), latency / energy:")
    print(md_table(["device"] + labels, [
        [d] + [f"{format_si(c[label]['latency_s'], 's')} / {format_si(c[label]['energy_j'], 'J')}"
               for label in labels]
        for d, c in costs.items()]))
    print("\nDynamic energy of one inference (arithmetic + memory traffic, without static power):")
    print(md_table(["device"] + labels, [
        [d] + [format_si(c[label]["dynamic_energy_j"], "J") for label in labels] for d, c in costs.items()]))
    header = (f"`hwsim demo{' --quick' if args.quick else ''}` (seed {args.seed}): {DEMO_MODEL} trained "
              f"with Adam (lr {LR}, batch {BATCH}, {epochs} epochs) on {len(data.y_train)} digits, tested "
              f"on {len(data.y_test)}. Fixed-point policies are the `--precision` presets; every one "
              f"stores the master weights through `s16.14` with stochastic rounding.")
    path = write_demo_report(Path(args.out), results, costs, header)
    print(f"\nwrote {path} ({time.perf_counter() - t0:.1f} s)")
    return 0


#: Seconds a silent step may take before `announce_if_slow` says what is happening.
ANNOUNCE_AFTER_S = 2.0


def kernel_cache_cold() -> bool:
    """True when Numba's on-disk cache holds no compiled fixedpoint kernel yet (no ``*.nbi`` index
    in ``fixedpoint/__pycache__`` or under ``$NUMBA_CACHE_DIR``): the first run compiles them."""
    import fixedpoint

    root = os.environ.get("NUMBA_CACHE_DIR") or Path(fixedpoint.__file__).parent / "__pycache__"
    return not any(Path(root).rglob("*.nbi"))


@contextmanager
def announce_if_slow(message: str, after_s: float = ANNOUNCE_AFTER_S, stream=None):
    """Print ``message`` (then "done (N s)") on ``stream`` (default stderr) if the block runs longer
    than ``after_s`` seconds; a fast block prints nothing."""
    stream = sys.stderr if stream is None else stream
    t0 = time.perf_counter()
    timer = threading.Timer(after_s, lambda: print(f"hwsim demo: {message}", file=stream, flush=True))
    timer.daemon = True
    if after_s <= 0:
        timer.run()  # now, in this thread: the message comes before the wait
    else:
        timer.start()
    try:
        yield
    finally:
        timer.cancel()
        if timer.finished.is_set() and time.perf_counter() - t0 >= after_s:
            print(f"hwsim demo: done ({time.perf_counter() - t0:.1f} s)", file=stream, flush=True)


def _warm_up(data, seed: int) -> None:
    """One epoch of every demo policy on a few examples: compiles (or loads from Numba's cache) every
    kernel the demo uses, so the wait happens under `announce_if_slow`."""
    tiny = dataclasses.replace(data, X_train=data.X_train[:BATCH], y_train=data.y_train[:BATCH],
                               X_test=data.X_test[:BATCH], y_test=data.y_test[:BATCH])
    for _, preset, _ in POLICIES:
        model = build_model(DEMO_MODEL, input_shape=data.input_shape, num_classes=data.num_classes, seed=seed)
        train(model, tiny, Precision.from_flags(preset, seed=seed), epochs=1, batch=BATCH, lr=LR, seed=seed,
              progress=False)
