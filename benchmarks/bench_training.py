"""Training at N bits on MNIST: accuracy per policy and epoch-time ratios → reports/benchmarks/training.md.

Protocol (issue 4): the shared MNIST t10k file, first 8,000 images train, last 2,000 test; MLP
784-256-256-10; Adam, lr 1e-3, batch 64, the same seed and schedule for every row.

Accuracy rows: fp32; ``--precision fixed16`` (16-bit fixed point in every role, stochastic updates);
``--weight s8.7 --activation s8.4 --update s16.14:stochastic``; and the Gupta et al. (2015) effect:
master weights stored in ``s16.8`` (step 2^-8 ≈ 3.9e-3, more than twice Adam's step of about lr =
1e-3), once with ``nearest_even`` updates (every step rounds back: training stalls) and once with
``stochastic`` updates (unbiased: it trains).

Speed, side by side in one run (interleaved repetitions, median epoch time of each engine): the
8-bit ``fast`` epoch and the 8-bit ``exact`` epoch (``fixedpoint.matmul`` at ``s32.16``) over the
fp32 epoch of the same engine, and hwsim's fp32 epoch over scikit-learn's ``MLPClassifier`` epoch
(``partial_fit`` on the same data: same architecture, batch 64, Adam, lr 1e-3, alpha 0).
scikit-learn is a benchmark-only dependency.

Run: ``python benchmarks/bench_training.py [--epochs 10] [--repeats 3]``.
"""
from __future__ import annotations

import os

# One thread for every engine (BLAS, OpenMP, Numba): on a shared 2-core machine multi-threaded BLAS
# spin-waits and is up to 50x slower; set these variables before running to override.
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
for _var in THREAD_VARS:
    os.environ.setdefault(_var, "1")

# The imports below follow the thread settings above (before numpy loads), hence their noqa: E402.
import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import fixedpoint  # noqa: E402
from hwsim import (  # noqa: E402
    Precision,
    build_model,
    load_data,
    md_table,
    train,
)

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"
MODEL, BATCH, LR, SEED = "mlp:784-256-256-10", 64, 1e-3, 0
W8A8 = {"weight": "s8.7", "activation": "s8.4", "update": "s16.14:stochastic"}
ACCURACY_ROWS = (
    ("fp32", "--precision fp32", {}),
    ("16-bit every role, stochastic updates", "--precision fixed16", {"precision": "fixed16"}),
    ("8-bit weights/activations, 16-bit stochastic updates",
     "--weight s8.7 --activation s8.4 --update s16.14:stochastic", W8A8),
    ("coarse updates s16.8, nearest_even (Gupta: stalls)", "--update s16.8:nearest_even",
     {"update": "s16.8:nearest_even"}),
    ("coarse updates s16.8, stochastic (Gupta: trains)", "--update s16.8:stochastic",
     {"update": "s16.8:stochastic"}),
)
SPEED = {"fp32": {}, "8-bit fast": W8A8,
         "8-bit fast, no health statistics": {**W8A8, "health_every": 10**9},
         "8-bit exact": {**W8A8, "acc": "s32.16", "mode": "exact"}}


def _precision(flags: dict) -> Precision:
    flags = dict(flags)
    return Precision.from_flags(flags.pop("precision", "fp32"), seed=SEED, mode=flags.pop("mode", "fast"),
                                **flags)


def _hwsim_run(data, flags: dict, epochs: int) -> dict:
    """``train`` with ``flags``; ``health_every`` (default 10 as in ``train``: statistics of every
    10th batch) is taken out of them (1e9: only the first batch of an epoch)."""
    flags = dict(flags)
    health_every = flags.pop("health_every", 10)
    model = build_model(MODEL, input_shape=data.input_shape, num_classes=data.num_classes, seed=SEED)
    return train(model, data, _precision(flags), epochs=epochs, batch=BATCH, optimizer="adam", lr=LR,
                 seed=SEED, progress=False, health_every=health_every)


def _epoch_profile(data) -> dict:
    """Where one more 8-bit fast epoch goes: seconds and calls inside ``fixedpoint.Quantizer``
    calls (hwsim's RoleFormat quantizes through one) and in hwsim's straight-through masks
    (``RoleFormat.grad_mask``), timed by wrapping each."""
    from hwsim import RoleFormat

    spots = {"quantize": (fixedpoint.Quantizer, "__call__"), "masks": (RoleFormat, "grad_mask")}
    inside = {name: [0.0, 0] for name in spots}
    originals = {name: getattr(owner, attr) for name, (owner, attr) in spots.items()}

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                inside[name][0] += time.perf_counter() - t0
                inside[name][1] += 1
        return wrapper

    for name, (owner, attr) in spots.items():
        setattr(owner, attr, timed(name, originals[name]))
    try:
        seconds = _hwsim_run(data, SPEED["8-bit fast"], 1)["epoch_seconds"][0]
    finally:
        for name, (owner, attr) in spots.items():
            setattr(owner, attr, originals[name])
    return {"epoch": seconds, **{k: tuple(v) for k, v in inside.items()}}


_THREAD_PROBE = """
import json, sys
from hwsim import Precision, build_model, load_data, train
data = load_data("mnist:" + sys.argv[1], split=8000, seed=0, flatten=True)
model = build_model("mlp:784-256-256-10", input_shape=data.input_shape, num_classes=data.num_classes,
                    seed=0)
flags = json.loads(sys.argv[2])
p = Precision.from_flags(flags.pop("precision", "fp32"), seed=0, **flags)
m = train(model, data, p, epochs=3, batch=64, optimizer="adam", lr=1e-3, seed=0, progress=False)
print(json.dumps(m["epoch_seconds"]))
"""


def _default_thread_epochs(data_dir: str, flags: dict, wait_policy) -> list[float]:
    """Epoch seconds of 3 epochs in a fresh process with every library's default thread count
    (what ``hwsim train`` gets), ``OMP_WAIT_POLICY`` = ``wait_policy`` (None: hwsim's default)."""
    import json
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in (*THREAD_VARS, "OMP_WAIT_POLICY")}
    if wait_policy is not None:
        env["OMP_WAIT_POLICY"] = wait_policy
    done = subprocess.run([sys.executable, "-c", _THREAD_PROBE, data_dir, json.dumps(flags)],
                          env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _sklearn_epochs(data, epochs: int) -> tuple[list[float], float]:
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=(256, 256), activation="relu", solver="adam", alpha=0.0,
                        batch_size=BATCH, learning_rate_init=LR, shuffle=True, random_state=SEED)
    classes, seconds = np.arange(data.num_classes), []
    for _ in range(epochs):
        t0 = time.perf_counter()
        clf.partial_fit(data.X_train, data.y_train, classes=classes)
        seconds.append(time.perf_counter() - t0)
    return seconds, float(clf.score(data.X_test, data.y_test))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=10, help="epochs of every accuracy row (default 10)")
    ap.add_argument("--repeats", type=int, default=5, help="timed repetitions of each speed engine")
    ap.add_argument("--speed-epochs", type=int, default=1, help="epochs per timed repetition")
    ap.add_argument("--data", default=str(MNIST), help="directory of the MNIST IDX files")
    ap.add_argument("--out", default=str(ROOT / "reports" / "benchmarks" / "training.md"))
    args = ap.parse_args(argv)
    data = load_data(f"mnist:{args.data}", split=8000, seed=SEED, flatten=True)
    command = ("python benchmarks/bench_training.py "
               + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    t_start = time.perf_counter()

    # Speed first (a quieter machine early in the run): interleaved repetitions, one warm-up each.
    for flags in SPEED.values():
        _hwsim_run(data, flags, 1)
    _sklearn_epochs(data, 1)
    times: dict[str, list[float]] = {name: [] for name in [*SPEED, "scikit-learn"]}
    for _ in range(args.repeats):
        for name, flags in SPEED.items():
            times[name] += _hwsim_run(data, flags, args.speed_epochs)["epoch_seconds"]
        times["scikit-learn"] += _sklearn_epochs(data, args.speed_epochs)[0]
        print({k: f"{v[-1]:.2f}s" for k, v in times.items()}, flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    prof = _epoch_profile(data)
    threads = [(label, policy, _default_thread_epochs(args.data, flags, policy)) for label, policy, flags in (
        ("fp32", None, {}), ("8-bit fast", None, W8A8), ("8-bit fast", "ACTIVE", W8A8))]

    rows, acc = [], {}
    for label, flag_text, flags in ACCURACY_ROWS:
        m = _hwsim_run(data, flags, args.epochs)
        acc[label] = m["test_accuracy"]
        rows.append([label, f"`{flag_text}`", f"{100 * m['test_accuracy']:.2f}",
                     f"{m['train_loss'][-1]:.4f}", f"{statistics.median(m['epoch_seconds']):.2f}"])
        print(rows[-1], flush=True)
    sk_seconds, sk_acc = _sklearn_epochs(data, args.epochs)
    rows.append(["scikit-learn MLPClassifier (reference)", "`partial_fit`, alpha=0", f"{100 * sk_acc:.2f}",
                 "-", f"{statistics.median(sk_seconds):.2f}"])

    fp32 = acc["fp32"]
    labels = [r[0] for r in ACCURACY_ROWS]
    checks = [
        ["fp32 ≥ 96 %", f"{100 * fp32:.2f} %", fp32 >= 0.96],
        ["16-bit within 0.5 point of fp32", f"{100 * (acc[labels[1]] - fp32):+.2f} points",
         acc[labels[1]] >= fp32 - 0.005],
        ["8-bit w/a within 1 point of fp32", f"{100 * (acc[labels[2]] - fp32):+.2f} points",
         acc[labels[2]] >= fp32 - 0.01],
        ["Gupta: nearest_even stalls, stochastic trains",
         f"{100 * acc[labels[3]]:.2f} % vs {100 * acc[labels[4]]:.2f} %",
         acc[labels[4]] - acc[labels[3]] >= 0.2],
        ["8-bit fast epoch / fp32 epoch ≤ 1.5", f"{med['8-bit fast'] / med['fp32']:.2f}",
         med["8-bit fast"] / med["fp32"] <= 1.5],
        ["fp32 epoch / scikit-learn epoch ≤ 1.0", f"{med['fp32'] / med['scikit-learn']:.2f}",
         med["fp32"] / med["scikit-learn"] <= 1.0],
        ["8-bit exact epoch / fp32 epoch (reported)", f"{med['8-bit exact'] / med['fp32']:.1f}", None],
    ]
    text = "\n".join([
        "# Training at N bits (MNIST, MLP 784-256-256-10)", "",
        f"Command: `{command}` ({time.perf_counter() - t_start:.0f} s in all)", "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, numpy {np.__version__}; "
        + ", ".join(f"{v}={os.environ[v]}" for v in THREAD_VARS) + " for every engine.", "",
        f"Data: shared MNIST t10k, first 8,000 train / last 2,000 test. Adam lr {LR}, batch {BATCH}, "
        f"seed {SEED}, {args.epochs} epochs, constant learning rate, the same for every row.", "",
        "## Accuracy", "",
        md_table(["policy", "flags", "test accuracy (%)", "final train loss", "median epoch (s)"], rows), "",
        "The Gupta et al. rows keep every role float32 except the stored master weights, which go "
        "through `s16.8` (step 2^-8 ≈ 3.9e-3) after every Adam step of about lr = 1e-3: with "
        "`nearest_even` nearly every step rounds back to the old weight, with `stochastic` rounding "
        "the weight moves by a whole step with probability |Δ|/step, an unbiased update.", "",
        "## Speed (one run, interleaved, median of "
        f"{args.repeats} × {args.speed_epochs} epoch(s) per engine)", "",
        md_table(["engine", "median epoch (s)", "all epochs (s)"],
                 [[k, f"{med[k]:.3f}", ", ".join(f"{t:.3f}" for t in v)] for k, v in times.items()]), "",
        f"Where the 8-bit fast epoch goes (one more epoch, with timers around the calls; the timers "
        f"add a little): {prof['epoch']:.3f} s in all, of which {prof['quantize'][0]:.3f} s in "
        f"{prof['quantize'][1]} `fixedpoint.Quantizer` calls and "
        f"{prof['masks'][0]:.3f} s in {prof['masks'][1]} straight-through masks; the rest is the same "
        f"float32 BLAS products and Adam as fp32, plus hwsim's bookkeeping.", "",
        "## Default threads (what `hwsim train` gets)", "",
        "A fresh process per row, no thread variable set (OpenBLAS and Numba use every core), 3 "
        "epochs; `import hwsim` sets `OMP_WAIT_POLICY=PASSIVE` unless it is set. With `ACTIVE`, "
        "Numba's OpenMP workers spin after each parallel kernel and starve the BLAS threads.", "",
        md_table(["engine", "OMP_WAIT_POLICY", "epochs (s)"],
                 [[label, policy or "unset (hwsim: PASSIVE)", ", ".join(f"{t:.3f}" for t in secs)]
                  for label, policy, secs in threads]), "",
        "## Targets", "",
        md_table(["target", "measured", "met"],
                 [[c[0], c[1], "-" if c[2] is None else ("yes" if c[2] else "**no**")] for c in checks]), "",
    ])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
