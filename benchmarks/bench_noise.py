"""Noise as a training tool (thesis 000 §4.3–4.4) against the seed's results.

1. MNIST single-hidden-layer MLP (t10k files from ``--data``: first 8,000 train, last 2,000 test):
   tanh, hard-tanh, NAN, NAH, NANIS, NAN and NANIS annealed, and hard-tanh / NAN under an 8-bit
   activation format — training-loss curves, final test accuracy and NLL (seed: curves, 000:1229).
2. Deep parity (000:1600–1610): n-bit parity, 6 hidden sigmoid layers: plain vs mollified vs
   residual — training-loss curves (seed: 40-bit, plain flat, mollified learns).
3. Unique-element counting (000:1336–1356) at a small scale, as an MLP on one-hot sequences:
   reference (tanh) vs NAN vs NAN annealed — test error (seed: 33.28 / 31.12 / 9.53 %).
4. What the injected noise costs: ``hwsim.workload`` of one training step and one inference of
   the MNIST MLP with and without NAN on two device profiles.

Writes ``--out`` (default ``reports/benchmarks/noise.md``) and PNG plots beside it.

    python benchmarks/bench_noise.py
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cost_refresh
import numpy as np

import devices
import hwsim
from hwsim import Dataset, Precision, train

ROOT = Path(__file__).resolve().parents[1]


def _uptime() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _run(label: str, spec: str, data: Dataset, precision: Precision, **kw) -> dict:
    model = hwsim.build_model(spec, data.input_shape, data.num_classes, seed=kw.pop("model_seed", 0))
    t0 = time.perf_counter()
    m = train(model, data, precision, progress=False, **kw)
    m["seconds"] = time.perf_counter() - t0
    m["label"], m["spec"] = label, spec
    print(f"  {label}: test acc {m['test_accuracy']:.4f}, final train loss {m['train_loss'][-1]:.4f} "
          f"({m['seconds']:.0f} s)", file=sys.stderr, flush=True)
    return m


def _plot(path: Path, runs: list[dict], title: str, key: str = "train_loss",
          ylabel: str = "training NLL") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for r in runs:
        ys = r[key]
        ax.plot(range(1, len(ys) + 1), ys, marker=".", label=r["label"])
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- 1. MNIST
def mnist_rows(hidden: int, updates: int) -> list[tuple[str, str, str | None]]:
    h = hidden
    every = max(1, updates // 400)  # the thesis's 200-minibatch step, scaled to this run's length
    noisy = f"seq:784,dense({h}),noisy(hard_tanh,{{}}),dense(10)"
    return [
        ("tanh", f"seq:784,dense({h}),tanh,dense(10)", None),
        ("hard-tanh", f"seq:784,dense({h}),hard_tanh,dense(10)", None),
        ("NAN (α=1, c=0.5)", noisy.format("variant=nan,c=0.5"), None),
        ("NAH (α=0.9, c=0.5)", noisy.format("variant=nah,alpha=0.9,c=0.5"), None),
        ("NANIS (σ=0.05)", noisy.format("variant=nanis,sigma=0.05"), None),
        (f"NAN annealed (c 30→0.5, /√(t+1), t+1 every {every})",
         noisy.format(f"variant=nan,c=30,anneal=isqrt,every={every},floor=0.5"), None),
        (f"NANIS annealed (σ 1→0.05, every {every})",
         noisy.format(f"variant=nanis,sigma=1,anneal=isqrt,every={every},floor=0.05"), None),
        ("hard-tanh, activations s8.5", f"seq:784,dense({h}),hard_tanh,dense(10)", "s8.5"),
        ("NAN (c=0.5), activations s8.5", noisy.format("variant=nan,c=0.5"), "s8.5"),
    ]


def bench_mnist(args, lines: list[str]) -> None:
    data = hwsim.load_data(f"mnist:{args.data}", split=8000, flatten=True)
    updates = args.epochs * -(-len(data.X_train) // args.batch)
    runs = []
    print("MNIST", file=sys.stderr)
    # compile before timing
    Precision.from_flags(activation="s8.5").activation(np.zeros(8, np.float32), seed=0)
    for label, spec, act in mnist_rows(args.hidden, updates):
        prec = Precision() if act is None else Precision.from_flags(activation=act, seed=0)
        runs.append(_run(label, spec, data, prec, epochs=args.epochs, batch=args.batch, lr=args.lr, seed=0))
    png = args.out.with_name(f"{args.out.stem}_mnist.png")
    _plot(png, runs, f"MNIST 784-{args.hidden}-10, Adam lr {args.lr}")
    lines += [f"## 1. MNIST single-hidden-layer MLP (784-{args.hidden}-10)", "",
              (f"MNIST t10k: first 8,000 images train, last 2,000 test. {args.epochs} epochs, batch "
               f"{args.batch}, Adam lr {args.lr} (the seed used RMSProp; hwsim has Adam and SGD), seed 0, "
               "float32 unless stated. p initialised U[−1, 1]. Noise at test time replaced by its "
               "expectation."), "",
              ("| activation | final train NLL | train NLL after epoch 2 | test NLL | test accuracy % | "
               "train s | seed (000:1229, Fig. 4.5) |"), "|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['label']} | {r['train_loss'][-1]:.4f} | "
                     f"{r['train_loss'][min(1, len(r['train_loss']) - 1)]:.4f} | "
                     f"{r['test_loss_per_epoch'][-1]:.4f} | {100 * r['test_accuracy']:.2f} | "
                     f"{r['seconds']:.0f} | curves only: noisy below tanh and hard-tanh |")
    ht = next(r for r in runs if r["label"] == "hard-tanh")
    better = [r["label"] for r in runs if r["label"].startswith(("NAN", "NAH")) and "s8.5" not in r["label"]
              and r["train_loss"][-1] < ht["train_loss"][-1]]
    lines += ["", f"![MNIST training loss]({png.name})", "",
              (f"Noisy rows (float) with a lower final training NLL than hard-tanh: "
              f"{', '.join(better) if better else 'none'}."), ""]
    args.mnist_runs = runs


# ---------------------------------------------------------------- 2. deep parity
def parity_data(n: int, n_train: int, n_test: int, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, (n_train + n_test, n))
    X = (2 * bits - 1).astype(np.float32)
    y = (bits.sum(axis=1) % 2).astype(np.int64)
    return Dataset(X[:n_train], y[:n_train], X[n_train:], y[n_train:], (n,), 2, f"parity{n}")


def bench_parity(args, lines: list[str]) -> None:
    h, ks = args.parity_hidden, args.parity_k
    lines += ["## 2. Deep parity: 6 hidden sigmoid layers, plain vs mollified vs residual", "",
              (f"n-bit parity of ±1 inputs, {args.parity_train} random training vectors, {args.parity_test} "
               "test vectors (for small n the patterns repeat: this measures optimisation, like the seed's "
               f"curves). Width {h}, {args.parity_epochs} epochs, batch 50, Adam lr {args.parity_lr} (the "
               "seed: SGD, momentum 0.92, lr 1e-3 — in a few minutes of CPU that learns nothing here). "
               f"Models: plain `dense({h}),sigmoid` ×6; mollified `mollified({h},k=K)` ×6 for K in "
               f"{', '.join(f'{k:g}' for k in ks)} (the first pads the input with zeros; c = 20, δ = 0.05·L, "
               f"β = 0.99, a ~ U[−2, 2]); residual `dense({h}),sigmoid` then "
               f"`mollified({h},p=0,anneal=false,residual=true)` ×5 (x + f(xW + b), no batch norm — the "
               "seed's residual MLP had batch norm). Seed (000:1600–1610, Fig. 4.16): 40-bit parity, plain "
               "flat at chance, mollified learns, faster than residual."), "",
              ("| n | model | train NLL per epoch (every 2nd) | final train acc % | test acc % | epoch where "
               "Σp ≤ δ (annealing ends) | s |"), "|---|---|---|---|---|---|---|"]
    all_runs = []
    for n in args.parity_n:
        data = parity_data(n, args.parity_train, args.parity_test)
        specs = [("plain", f"seq:{n}," + ",".join([f"dense({h}),sigmoid"] * 6) + ",dense(2)"),
                 *[(f"mollified k={k:g}",
                    f"seq:{n}," + ",".join([f"mollified({h},k={k:g})"] * 6) + ",dense(2)")
                   for k in ks],
                 ("residual", f"seq:{n},dense({h}),sigmoid,"
                  + ",".join([f"mollified({h},p=0,anneal=false,residual=true)"] * 5) + ",dense(2)")]
        print(f"parity n={n}", file=sys.stderr)
        runs = []
        for label, spec in specs:
            r = _run(f"{label} (n={n})", spec, data, Precision(), epochs=args.parity_epochs, batch=50,
                     lr=args.parity_lr, seed=0)
            ends = "—"
            if label.startswith("mollified"):
                ps = [sum(v["p"] for v in e.values()) for e in r["annealing"]]
                ends = next((str(i + 1) for i, s in enumerate(ps) if s == 0.0), "not reached")
            curve = " ".join(f"{v:.3f}" for v in r["train_loss"][1::2])
            lines.append(f"| {n} | {label} | {curve} | {100 * r['train_accuracy'][-1]:.1f} | "
                         f"{100 * r['test_accuracy']:.1f} | {ends} | {r['seconds']:.0f} |")
            runs.append(r)
        all_runs += runs
    png = args.out.with_name(f"{args.out.stem}_parity.png")
    _plot(png, all_runs, f"n-bit parity, 6×{h} sigmoid layers")
    lines += ["", f"![parity training loss]({png.name})", ""]
    args.parity_runs = all_runs


# ---------------------------------------------------------------- 3. unique-element counting
def unique_data(length: int, values: int, n_train: int, n_test: int, seed: int = 0) -> Dataset:
    """Sequences of ``length`` integers in [0, values), one-hot (length·values features); the class
    is the number of distinct elements minus 1."""
    rng = np.random.default_rng(seed)
    seq = rng.integers(0, values, (n_train + n_test, length))
    X = np.eye(values, dtype=np.float32)[seq].reshape(len(seq), -1)
    y = np.array([len(set(s)) - 1 for s in seq], dtype=np.int64)
    return Dataset(X[:n_train], y[:n_train], X[n_train:], y[n_train:], (length * values,), values, "unique")


def bench_unique(args, lines: list[str]) -> None:
    L, V, h = args.unique_length, args.unique_values, args.unique_hidden
    data = unique_data(L, V, args.unique_train, 1000)
    updates = args.unique_epochs * -(-args.unique_train // 50)
    every = max(1, updates // 400)
    body = f"seq:{L * V},dense({h}),{{0}},dense({h}),{{0}},dense({V})"
    rows = [("reference (tanh)", body.format("tanh"), "33.28"),
            ("NAN (hard-tanh, c=0.5)", body.format("noisy(hard_tanh,variant=nan,c=0.5)"), "31.12"),
            (f"NAN annealed (c 30→0.5, every {every})",
             body.format(f"noisy(hard_tanh,variant=nan,c=30,anneal=isqrt,every={every},floor=0.5)"), "9.53")]
    print("unique counting", file=sys.stderr)
    runs = [_run(label, spec, data, Precision(), epochs=args.unique_epochs, batch=50, lr=args.lr, seed=0)
            for label, spec, _ in rows]
    for r in runs:
        r["test_error"] = [100 * (1 - a) for a in r["test_accuracy_per_epoch"]]
    png = args.out.with_name(f"{args.out.stem}_unique.png")
    _plot(png, runs, f"unique elements, length {L}, values 0..{V - 1}", key="test_error",
          ylabel="test error %")
    counts = np.bincount(data.y_test, minlength=V)
    lines += ["## 3. Unique-element counting", "",
              (f"Sequences of {L} integers in 0..{V - 1} (the seed: 26 in 0..10), {args.unique_train} train "
               f"/ 1000 test, the number of distinct elements as one of {V} classes (majority class "
               f"{100 * counts.max() / counts.sum():.1f} % of the test set). hwsim has no LSTM, so the model "
               f"is an MLP on the one-hot sequence ({L * V}-{h}-{h}-{V}; the seed: LSTM + time-average "
               "pooling + ReLU MLP) with the reference's tanh replaced by noisy hard-tanh. "
               f"{args.unique_epochs} epochs, batch 50, Adam lr {args.lr}."),
              "",
              "| model | test error % (final) | best test error % | seed's test error % (Table 4.5) | s |",
              "|---|---|---|---|---|"]
    for (label, _, seed_err), r in zip(rows, runs):
        lines.append(f"| {label} | {r['test_error'][-1]:.2f} | {min(r['test_error']):.2f} | {seed_err} | "
                     f"{r['seconds']:.0f} |")
    order = sorted(runs, key=lambda r: r["test_error"][-1])
    lines += ["", (f"Ordering here (best first): {' < '.join(r['label'] for r in order)}; the seed's: NAN "
                   "annealed < NAN < reference."), "", f"![unique counting test error]({png.name})", ""]


# ---------------------------------------------------------------- 4. cost
def bench_cost(args, lines: list[str]) -> None:
    h = args.hidden
    specs = [("hard-tanh", f"seq:784,dense({h}),hard_tanh,dense(10)"),
             ("NAN", f"seq:784,dense({h}),noisy(hard_tanh,variant=nan,c=0.5),dense(10)"),
             ("NANIS", f"seq:784,dense({h}),noisy(hard_tanh,variant=nanis),dense(10)")]
    precs = [("fp32", Precision()), ("fixed8", Precision.from_flags("fixed8"))]
    lines += ["## 4. What the injected noise costs (`hwsim.workload` + `devices.estimate`)", "",
              (f"784-{h}-10 MLP, batch 100. Noise generation is costed as elementwise work at the activation "
               f"width: {hwsim.layers.NOISE_RNG_OPS} ops per Gaussian random number (a counter hash "
               "plus an inverse-CDF lookup — a named assumption) plus the noisy expression; at inference the "
               "expectation."),
              "", "| activation | policy | device | training step µs | of which noise µs | inference µs |",
              "|---|---|---|---|---|---|"]
    for label, spec in specs:
        model = hwsim.build_model(spec, (784,), 10)
        for pname, prec in precs:
            for dev in ("h100-sxm", "stm32h743"):
                est = devices.estimate(hwsim.workload(model, prec, batch=100, training=True), dev)
                inf = devices.estimate(hwsim.workload(model, prec, batch=100), dev)
                noise = sum(r.latency_s for r in est.rows if r.name.endswith("/noise"))
                lines.append(f"| {label} | {pname} | {dev} | {1e6 * est.latency_s:.3g} | {1e6 * noise:.3g} | "
                             f"{1e6 * inf.latency_s:.3g} |")
    lines.append("")


def only_costs(args) -> int:
    """Rewrite section 4 of ``args.out`` (pure cost-model evaluation, no training) with a dated note."""
    text = args.out.read_text()
    since = cost_refresh.measured_on(args.out)
    lines: list[str] = []
    bench_cost(args, lines)
    lines += [cost_refresh.note("python benchmarks/bench_noise.py --only-costs", since), ""]
    args.out.write_text(cost_refresh.replace_section(text, lines[0], "\n".join(lines)))
    print(f"rewrote section 4 of {args.out}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent.parent / "shared" / "data" / "mnist"))
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "benchmarks" / "noise.md")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--parity-n", type=int, nargs="+", default=[5, 6])
    ap.add_argument("--parity-hidden", type=int, default=32)
    ap.add_argument("--parity-epochs", type=int, default=20)
    ap.add_argument("--parity-lr", type=float, default=3e-3)
    ap.add_argument("--parity-k", type=float, nargs="+", default=[50.0, 200.0])
    ap.add_argument("--parity-train", type=int, default=5000)
    ap.add_argument("--parity-test", type=int, default=1000)
    ap.add_argument("--unique-length", type=int, default=10)
    ap.add_argument("--unique-values", type=int, default=6)
    ap.add_argument("--unique-hidden", type=int, default=64)
    ap.add_argument("--unique-train", type=int, default=5000)
    ap.add_argument("--unique-epochs", type=int, default=15)
    ap.add_argument("--parts", nargs="+", default=["mnist", "parity", "unique", "cost"],
                    choices=["mnist", "parity", "unique", "cost"])
    ap.add_argument("--only-costs", action="store_true",
                    help="recompute only section 4 (the device costs) of the existing --out report with the "
                         "current cost model; the other sections, their figures and the header stay")
    args = ap.parse_args(argv)
    if args.only_costs:
        return only_costs(args)
    if "mnist" in args.parts and not Path(args.data).is_dir():
        print(f"--data {args.data}: not a directory with the MNIST IDX files", file=sys.stderr)
        return 2
    cmd = "python benchmarks/bench_noise.py" + ("" if argv is None and len(sys.argv) == 1 else
                                                 " " + " ".join(sys.argv[1:] if argv is None else argv))
    load0, t0 = _uptime(), time.perf_counter()
    lines: list[str] = []
    for part in args.parts:
        {"mnist": bench_mnist, "parity": bench_parity, "unique": bench_unique,
         "cost": bench_cost}[part](args, lines)
    head = ["# Noise as a training tool: noisy activations and mollifying networks", "",
            f"Command: `{cmd}`", "",
            (f"Machine: shared 2-core box; load average (1, 5, 15 min) {load0} at the start, {_uptime()} at "
             f"the end; {time.perf_counter() - t0:.0f} s in all. One run per row (seed 0): with one seed, "
             "differences of a few tenths of a point are within run-to-run noise."), ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".md.tmp")
    tmp.write_text("\n".join(head + lines))
    tmp.replace(args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
