"""Structured linear layers: the seed thesis's experiments → reports/benchmarks/structured.md (+ plots).

1. Linear-operator recovery (seed 000:904–923): ``Y = X W + ε``, X 10,000×32 and W 32×32 from
   U[0, 1], ε ~ N(0, 0.01²); one ACDC_K layer (``seq:32,acdc(depth=K)``, its DCT-domain bias as the
   only offset) for K in 1, 2, 4, 8, 16, 32, trained by MSE regression (Adam, lr 1e-2, batch 100),
   with the identity-like init N(1, 0.1²) and the small init N(0, 10⁻⁶); least squares beside.
2. MNIST (shared t10k file, first 8,000 train, last 2,000 test): a dense 784-1024-1024-10 reference
   and its hidden layers replaced by Fastfood, Adaptive Fastfood, ACDC, circulant, low-rank and
   hashed layers (low-rank and hashed at equal budgets), with and without dropout for some, and the
   LeNet-style conv net with a Fastfood 1024 layer (Table 3.1): parameters, test accuracy, and the
   devices model's latency / energy per inference (batch 1) on stm32h743, h100-sxm and optical4f.
3. Speed on this CPU (one thread for every engine; CPU-time clock, median of repeats): forward +
   backward of Dense, ACDC (K = 1), Fastfood (adaptive) and Circulant at n = 256 … 8192, batch 64,
   fp32, beside the devices model's prediction for a profile calibrated on this machine
   (``devices.calibrate(quick=True)``); and the FWHT of a (64, 4096) float32 array vs
   ``scipy.fft.rfft``.

Run: ``python benchmarks/bench_structured.py [--recovery-epochs 40] [--mnist-epochs 5] [--quick]``.
"""
from __future__ import annotations

import os

THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
for _var in THREAD_VARS:
    os.environ.setdefault(_var, "1")

# The imports below follow the thread settings above (before numpy loads), hence their noqa: E402.
import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cost_refresh  # noqa: E402
import numpy as np  # noqa: E402
import scipy.fft  # noqa: E402

import devices  # noqa: E402
from hwsim import (  # noqa: E402
    Dataset,
    Precision,
    build_model,
    evaluate,
    format_si,
    load_data,
    md_table,
    train,
    workload,
)
from hwsim.layers import ACDC, Circulant, Dense, Fastfood, fwht, fwht_inplace  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"
OUT = ROOT / "reports" / "benchmarks"
DEPTHS = (1, 2, 4, 8, 16, 32)
DEVICES = ("stm32h743", "h100-sxm", "optical4f")
H = "seq:784,{0},relu,{1},relu,dense(10)"
MNIST_MODELS = [  # (label, spec, seed numbers to quote)
    ("dense 784-1024-1024-10", H.format("dense(1024)", "dense(1024)")),
    ("dense + dropout 0.5", "seq:784,dense(1024),relu,dropout(0.5),dense(1024),relu,dropout(0.5),dense(10)"),
    ("Fastfood 1024 ×2", H.format("fastfood(1024)", "fastfood(1024)")),
    ("Fastfood 1024 ×2 + dropout 0.5",
     "seq:784,fastfood(1024),relu,dropout(0.5),fastfood(1024),relu,dropout(0.5),dense(10)"),
    ("Adaptive Fastfood 1024 ×2", H.format("fastfood(1024,adaptive=true)", "fastfood(1024,adaptive=true)")),
    ("ACDC 784, K=4 relu+perm, ×2", H.format("acdc(depth=4,relu=true,permute=true)",
                                            "acdc(depth=4,relu=true,permute=true)")),
    ("circulant 784 ×2", H.format("circulant", "circulant")),
    ("low-rank 1024, rank 8 ×2", H.format("lowrank(1024,rank=8)", "lowrank(1024,rank=8)")),
    ("hashed 1024, budget = low-rank's ×2",
     H.format("hashed(1024,budget=14464)", "hashed(1024,budget=16384)")),
    ("LeNet conv + dense 500 (Caffe reference)",
     "seq:1x28x28,conv(20,5),maxpool(2),conv(50,5),maxpool(2),flatten,dense(500),relu,dense(10)"),
    ("LeNet conv + Fastfood 1024",
     "seq:1x28x28,conv(20,5),maxpool(2),conv(50,5),maxpool(2),flatten,fastfood(1024),relu,dense(10)"),
]
SEED_MNIST = ("Seed Table 3.1 (000:563–584, LeNet conv layers, jointly trained, full MNIST): reference "
              "0.87% error with 430,500 parameters; Fastfood 1024 0.83% / 0.71% (no dropout / dropout), "
              "Adaptive Fastfood 1024 0.86% / 0.72%, 38,821 parameters (11× fewer).")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load() -> str:
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


# ---------------------------------------------------------------------------- 1. recovery

def recovery(epochs: int, n: int, small_epochs: int) -> dict:
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (n, 32))
    W = rng.uniform(0, 1, (32, 32))
    Y = X @ W + 0.01 * rng.standard_normal((n, 32))
    Xt = rng.uniform(0, 1, (2000, 32))
    Yt = Xt @ W + 0.01 * rng.standard_normal((2000, 32))
    def f32(a):
        return a.astype(np.float32)
    data = Dataset(f32(X), f32(Y), f32(Xt), f32(Yt), (32,), 32, "linear-recovery", "regression")
    A = np.hstack([X, np.ones((n, 1))])
    coef = np.linalg.lstsq(A, Y, rcond=None)[0]
    lsq = float(np.mean((A @ coef - Y) ** 2))
    rows, curves = [], {}
    for init in ("identity", "small"):
        for k in DEPTHS:
            spec = f"seq:32,acdc(depth={k},init={init})"
            model = build_model(spec, (32,), 32, seed=0)
            t0 = time.perf_counter()
            m = train(model, data, Precision(), epochs=epochs if init == "identity" else small_epochs,
                      batch=100, lr=1e-2, progress=False)
            train_mse = evaluate(model, data.X_train, data.y_train)["mse"]
            rows.append((init, k, train_mse, m["test_mse"], time.perf_counter() - t0))
            curves[(init, k)] = m["train_loss"]
            log(f"recovery {init} K={k}: train mse {train_mse:.4g} ({rows[-1][-1]:.1f} s)")
    return {"rows": rows, "curves": {f"{i}/{k}": v for (i, k), v in curves.items()}, "lsq": lsq,
            "epochs": epochs, "small_epochs": small_epochs, "n": n}


# ---------------------------------------------------------------------------- 2. MNIST

def mnist(epochs: int, models: list) -> list[dict]:
    out = []
    for label, spec in models:
        image = spec.startswith("seq:1x")
        data = load_data(f"mnist:{MNIST}", split=8000, seed=0, flatten=not image)
        model = build_model(spec, data.input_shape, 10, seed=0)
        t0 = time.perf_counter()
        m = train(model, data, Precision(), epochs=epochs, batch=64, lr=1e-3, progress=False)
        out.append({"label": label, "spec": spec, "params": model.num_parameters(), "acc": m["test_accuracy"],
                    "epoch_s": statistics.median(m["epoch_seconds"]), "seconds": time.perf_counter() - t0,
                    "cost": _mnist_cost(model)})
        log(f"mnist {label}: {100 * m['test_accuracy']:.2f}% ({out[-1]['seconds']:.0f} s)")
    return out


# ---------------------------------------------------------------------------- 3. speed

def _layer(kind: str, n: int):
    return {"Dense": lambda: Dense(n, n, seed=0), "ACDC K=1": lambda: ACDC(n, 1, seed=0),
            "Fastfood (adaptive)": lambda: Fastfood(n, n, adaptive=True, seed=0),
            "Circulant": lambda: Circulant(n, seed=0)}[kind]()


KINDS = ("Dense", "ACDC K=1", "Fastfood (adaptive)", "Circulant")


def speed(sizes: tuple, repeats: int, profile) -> dict:
    rng = np.random.default_rng(0)
    res = {}
    for n in sizes:
        x = rng.standard_normal((64, n)).astype(np.float32)
        dy = rng.standard_normal((64, n)).astype(np.float32)
        layers = {k: _layer(k, n) for k in KINDS}

        def step(layer, x=x, dy=dy):
            layer.forward(x, training=True)
            layer.backward(dy)

        times = {k: [] for k in KINDS}
        for _ in range(repeats):  # interleaved: every kind sees the same machine state
            for k, layer in layers.items():
                min_time = 0.05 if k != "Dense" or n <= 2048 else 0.01
                times[k].append(devices.time_call(lambda layer=layer: step(layer), min_time=min_time,
                                                  repeat=1, clock="cpu"))
        for k, layer in layers.items():
            model = build_model(_spec(k, n), (n,), None)
            wl = workload(model, batch=64, training=True, optimizer="adam")
            keep = [op for op in wl
                    if not op.name.endswith(("/update", "/opt_state")) and "loss/" not in op.name]
            pred = devices.estimate(devices.Workload(keep), profile).latency_s
            res[f"{k}/{n}"] = (statistics.median(times[k]), pred)
        log(f"speed n={n}: " + ", ".join(f"{k} {1e3 * res[f'{k}/{n}'][0]:.2f} ms" for k in KINDS))
    return res


def _spec(kind: str, n: int) -> str:
    return {"Dense": f"seq:{n},relu,dense({n})", "ACDC K=1": f"seq:{n},relu,acdc(depth=1)",
            "Fastfood (adaptive)": f"seq:{n},relu,fastfood({n},adaptive=true)",
            "Circulant": f"seq:{n},relu,circulant"}[kind]


def fwht_vs_rfft(repeats: int) -> tuple[float, float]:
    x = np.random.default_rng(0).standard_normal((64, 4096)).astype(np.float32)
    buf = x.copy()
    fwht(x)  # compile
    tf, tr = [], []
    for _ in range(repeats):
        tf.append(devices.time_call(lambda: fwht_inplace(buf), min_time=0.05, repeat=1, clock="cpu"))
        tr.append(devices.time_call(lambda: scipy.fft.rfft(x, axis=-1), min_time=0.05, repeat=1, clock="cpu"))
    return statistics.median(tf), statistics.median(tr)


# ---------------------------------------------------------------------------- report

def _fmt_cost(lat: float, en: float) -> str:
    return f"{format_si(lat, 's')} / {format_si(en, 'J')}"


MNIST_HEADING = "## 2. MNIST (shared t10k: first 8,000 train, last 2,000 test)"


def _mnist_lines(mn_part: dict) -> list[str]:
    """Section 2 of the report (``cost_note``: the line ``--only-costs`` puts under the table)."""
    note = [mn_part["cost_note"], ""] if mn_part.get("cost_note") else []
    return [MNIST_HEADING, "",
            (f"Adam, lr 1e-3, batch 64, **{mn_part['epochs']} epochs** (sized for the shared 2-core "
             "machine: fewer epochs and 8,000 training images instead of the seed's full 60,000, so "
             "the accuracies are below the seed's; compare rows with each other). fp32. Cost: the "
             "devices model, one inference (batch 1), latency / energy."), "",
            md_table(["model", "spec", "params", "test acc (%)", "epoch (s)"] + list(DEVICES),
                     [[r["label"], f"`{r['spec']}`", f"{r['params']:,}", f"{100 * r['acc']:.2f}",
                       f"{r['epoch_s']:.1f}"] + [_fmt_cost(*r["cost"][d]) for d in DEVICES]
                      for r in mn_part["rows"]]),
            "", *note, SEED_MNIST, "", "![accuracy vs parameters](structured_mnist.png)", ""]


def _mnist_cost(model) -> dict:
    """{device: (latency s, energy J)} of one inference (batch 1) of ``model``."""
    wl = workload(model, batch=1)
    return {d: (e.latency_s, e.energy_j) for d, e in ((d, devices.estimate(wl, d)) for d in DEVICES)}


def only_costs() -> Path:
    """Recompute section 2's device costs in structured.json with the current cost model (the models
    rebuilt untrained from their specs: a workload depends on the spec, not the weights) and rewrite that
    section of structured.md alone; every measured figure, the header and the other sections stay."""
    path, report = OUT / "structured.json", OUT / "structured.md"
    store = json.loads(path.read_text())
    since = cost_refresh.measured_on(report)
    for r in store["mnist"]["rows"]:
        shape = (1, 28, 28) if r["spec"].startswith("seq:1x") else (784,)   # as mnist() loads the data
        r["cost"] = _mnist_cost(build_model(r["spec"], shape, 10, seed=0))
    command = "python benchmarks/bench_structured.py --only-costs"
    store["mnist"]["cost_note"] = cost_refresh.note(command, since, cost_refresh.BEFORE_2FE4750)
    path.write_text(json.dumps(store, indent=1))
    section = "\n".join(_mnist_lines(store["mnist"]))
    report.write_text(cost_refresh.replace_section(report.read_text(), MNIST_HEADING, section))
    return report


def write_report(args, rec, mn_part, sp_part, load_before, load_after, seconds) -> Path:
    """The markdown report and plots from the parts' results (a part without results is left out)."""
    path = OUT / "structured.json"
    commands = json.loads(path.read_text()).get("commands", {}) if path.is_file() else {}
    mn = mn_part["rows"] if mn_part else None
    sp = sp_part["layers"] if sp_part else None
    fw = sp_part["fwht"] if sp_part else None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def _save(fig, path: Path) -> None:
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)

    OUT.mkdir(parents=True, exist_ok=True)
    lines = ["# Structured linear layers (ACDC, AFDF, Fastfood, circulant, low-rank, hashed)", "",
             (f"Last command: `python benchmarks/bench_structured.py {' '.join(sys.argv[1:])}` "
              f"({seconds / 60:.1f} min; parts it skipped come from the earlier runs listed below, their "
              f"results kept in `structured.json`). Machine: {platform.machine()}, {os.cpu_count()} cores "
              f"shared with other agents; {load_before} before, {load_after} after the last run. One thread "
              "for BLAS, OpenMP and Numba."), ""]
    lines += [f"- {part}: `{cmd}`" for part, cmd in commands.items()] + [""]
    if rec:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharex=True)
        for ax, init in zip(axes, ("identity", "small")):
            for k in DEPTHS:
                ax.semilogy(range(1, len(rec["curves"][f"{init}/{k}"]) + 1), rec["curves"][f"{init}/{k}"],
                            label=f"K={k}")
            ax.axhline(rec["lsq"], color="k", ls=":", label="least squares")
            ax.set(xlabel="epoch (100 steps)", ylabel="training MSE",
                   title="init N(1, 0.1²)" if init == "identity" else "init N(0, 10⁻⁶)")
        axes[0].legend(fontsize=7)
        _save(fig, OUT / "structured_recovery.png")
        by = {(i, k): (tr, te) for i, k, tr, te, _ in rec["rows"]}
        lines += ["## 1. Linear-operator recovery (000:904–923)", "",
                  (f"`Y = X W + ε`, X {rec['n']}×32, W 32×32 ~ U[0, 1], ε ~ N(0, 0.01²) (the seed's N(0, "
                   "10⁻⁴) read as a variance). `seq:32,acdc(depth=K,init=...)` trained with `--loss mse`: "
                   f"Adam, lr 1e-2, batch 100, {rec['epochs']} epochs ({100 * rec['epochs']} steps; the "
                   f"small init {rec['small_epochs']} epochs). Least squares (with an offset): MSE "
                   f"{rec['lsq']:.2e}."), "",
                  md_table(["K", "params", "train MSE, identity init", "test MSE", "train MSE, small init",
                            "reference note (20k steps)"],
                           [[k, 3 * k * 32, f"{by[('identity', k)][0]:.4g}", f"{by[('identity', k)][1]:.4g}",
                             f"{by[('small', k)][0]:.4g}",
                             {1: "0.205", 8: "0.071", 16: "0.016", 32: "0.0030"}.get(k, "")]
                            for k in DEPTHS]), "",
                  ("Seed: Fig. 3.4 only (curves): loss falls as K grows with the identity-like init, K = 16 "
                  "already reasonable; the small init optimises badly. The last column is the numpy "
                  "reproduction quoted in `shared/reference/seed-systems.md` §1 (20,000 steps, output bias), "
                  "not a seed number."), "", "![recovery curves](structured_recovery.png)", ""]
    if mn:
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for r in mn:
            ax.semilogx(r["params"], 100 * r["acc"], "o")
            ax.annotate(r["label"], (r["params"], 100 * r["acc"]), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")
        ax.set(xlabel="parameters", ylabel="test accuracy (%)",
               title=f"MNIST 8k/2k, {mn_part['epochs']} epochs")
        _save(fig, OUT / "structured_mnist.png")
        lines += _mnist_lines(mn_part)
    if sp:
        sizes = sorted({int(key.rsplit("/", 1)[1]) for key in sp})
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for k in KINDS:
            ax.loglog(sizes, [1e3 * sp[f"{k}/{n}"][0] for n in sizes], "o-", label=f"{k} measured")
            ax.loglog(sizes, [1e3 * sp[f"{k}/{n}"][1] for n in sizes], ":", color=ax.lines[-1].get_color(),
                      label=f"{k} predicted")
        ax.set(xlabel="n", ylabel="forward + backward (ms)", title="batch 64, fp32, 1 thread")
        ax.legend(fontsize=6)
        _save(fig, OUT / "structured_speed.png")
        rows = []
        for n in sizes:
            d = sp[f"Dense/{n}"][0]
            at = {k: sp[f"{k}/{n}"] for k in KINDS}
            rows.append([n] + [f"{1e3 * at[k][0]:.2f} ({1e3 * at[k][1]:.2f})" for k in KINDS]
                        + [f"{d / at[k][0]:.1f}×" for k in KINDS[1:]])
        lines += ["## 3. Speed on this CPU", "",
                  ("Forward + backward of one layer, batch 64, n → n, fp32; CPU time per call "
                   "(`devices.time_call`, clock `cpu`, so other agents' load counts less), median of "
                   f"{sp_part['repeats']} interleaved repetitions. In brackets: the devices model's "
                   "prediction for a profile calibrated on this machine (`devices.calibrate(quick=True)`), "
                   "from `hwsim.workload(training=True)` without the optimizer update. ACDC with K = 1, "
                   "Fastfood adaptive (S, G, B gradients), circulant via rfft."),
                  "",
                  md_table(["n"] + [f"{k} ms (pred.)" for k in KINDS] + [f"Dense / {k}" for k in KINDS[1:]],
                           rows),
                  "", ("Targets (issue 9, not timed tests): at n = 4096 ACDC and Fastfood forward+backward ≥ "
                       "10× faster than Dense. Seed (000:886–891): ACDC beats dense 'up to 10×' at batch 128 "
                       "on a Titan X with a fused CUDA kernel."), "", "![speed](structured_speed.png)", ""]
    if fw:
        tf, tr = fw
        lines += [(f"FWHT of a (64, 4096) float32 array (Numba kernel, in place, 1 thread): {1e3 * tf:.3f} "
                   f"ms; `scipy.fft.rfft` of the same array: {1e3 * tr:.3f} ms; ratio FWHT / rfft = "
                   f"{tf / tr:.2f} (target ≤ 1)."), ""]
    path = OUT / "structured.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(path)
    return path


def _cached(name: str, skip: set, run):
    """Run part ``name`` and store its results in reports/benchmarks/structured.json, or, when it is
    skipped, reuse the stored results of an earlier run (None when there are none)."""
    path = OUT / "structured.json"
    store = json.loads(path.read_text()) if path.is_file() else {}
    if name in skip:
        return store.get(name)
    store[name] = run()
    store.setdefault("commands", {})[name] = "python benchmarks/bench_structured.py " + " ".join(sys.argv[1:])
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(store, indent=1))
    tmp.replace(path)
    return store[name]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recovery-epochs", type=int, default=40)
    p.add_argument("--recovery-small-epochs", type=int, default=None, help="default: --recovery-epochs")
    p.add_argument("--recovery-n", type=int, default=10000)
    p.add_argument("--mnist-epochs", type=int, default=5)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--sizes", default="256,512,1024,2048,4096,8192")
    p.add_argument("--skip", default="", help="comma list of parts to skip (their results of an earlier run, "
                   "kept in reports/benchmarks/structured.json, go into the report): recovery, mnist, speed")
    p.add_argument("--quick", action="store_true", help="tiny settings (smoke test)")
    p.add_argument("--only-costs", action="store_true",
                   help="recompute only section 2's device costs (devices model, nothing trained or timed) "
                        "in structured.json and rewrite that section of the report")
    args = p.parse_args(argv)
    if args.only_costs:
        log(f"rewrote section 2 of {only_costs()}")
        return 0
    skip = set(filter(None, args.skip.split(",")))
    if args.quick:
        args.recovery_epochs, args.recovery_n, args.mnist_epochs, args.repeats = 2, 1000, 1, 1
        args.sizes = "256,1024"
    t0 = time.perf_counter()
    load_before = load()
    if args.quick:
        global OUT
        OUT = Path(tempfile.mkdtemp())  # smoke runs never touch the stored report
    small = args.recovery_epochs if args.recovery_small_epochs is None else args.recovery_small_epochs
    rec = _cached("recovery", skip, lambda: recovery(args.recovery_epochs, args.recovery_n, small))
    if not MNIST.is_dir():
        log(f"skipping MNIST: {MNIST} not found")
        skip.add("mnist")
    mn = _cached("mnist", skip, lambda: {"epochs": args.mnist_epochs, "rows": mnist(
        args.mnist_epochs, MNIST_MODELS[:3] if args.quick else MNIST_MODELS)})

    def run_speed():
        with tempfile.TemporaryDirectory() as tmp:
            log("calibrating a local profile (quick) ...")
            profile = devices.calibrate(Path(tmp) / "local-cpu.toml", quick=True, clock="cpu")
        return {"repeats": args.repeats,
                "layers": speed(tuple(int(s) for s in args.sizes.split(",")), args.repeats, profile),
                "fwht": fwht_vs_rfft(args.repeats)}
    sp = _cached("speed", skip, run_speed)
    path = write_report(args, rec, mn, sp, load_before, load(), time.perf_counter() - t0)
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
