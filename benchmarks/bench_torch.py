"""hwsim for PyTorch users: epoch time and accuracy of four engines → reports/benchmarks/torch.md.

Protocol (issue 18): the shared MNIST t10k file, first 8,000 images train, last 2,000 test; MLP
784-256-256-10; SGD (lr 0.05, momentum 0.9), batch 64, seed 0; default threads (2 on this machine).
Engines, interleaved, the same data order for all:

- torch fp32: ``nn.Sequential`` of ``nn.Linear``/``nn.ReLU``, ``torch.optim.SGD``;
- hwsim.torch 8-bit: the same model through ``hwsim.torch.quantize_model`` with ``--weight s8.7
  --activation s8.4`` and ``LowPrecisionOptimizer(update="s16.14:stochastic")``;
- QPyTorch (``qtorch``, benchmark-only) with the same policy: 8-bit weights (s8.7) and activations
  (s8.4, after each linear layer's input and output) with hwsim's straight-through masks
  (``clamping_grad_zero``), master weights ``FixedPoint(16, 14)`` with stochastic rounding through
  ``OptimLP``;
- hwsim's own engine (``hwsim.train``) with the same policy and optimizer.

It also shows QPyTorch's nearest rounding of ties on the CPU (``nearbyint``: half to even), which its
CUDA kernel does with ``round`` (half away from zero).

Run: ``python benchmarks/bench_torch.py [--epochs 5] [--repeats 3]``.
"""
from __future__ import annotations

import hwsim  # first: sets OMP_WAIT_POLICY=PASSIVE before any OpenMP runtime loads

# isort: split

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import hwsim.torch as ht  # noqa: E402
from hwsim import md_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"
BATCH, LR, MOMENTUM, SEED = 64, 0.05, 0.9, 0
POLICY = {"weight": "s8.7", "activation": "s8.4", "update": "s16.14:stochastic"}


def _mlp() -> nn.Module:
    torch.manual_seed(SEED)
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))


#: The phases of one training step timed by `_epochs_torch` (seconds per step in ``phases``).
PHASES = ("zero_grad", "batch, forward and loss", "backward", "optimizer step")


def _epochs_torch(model, opt, X, y, order, epochs: int, phases: dict | None = None) -> list[float]:
    """Seconds of each epoch; with ``phases`` (phase -> list), each step's `PHASES` are appended
    too (five clock reads per step, the same for every engine)."""
    times = []
    for epoch in range(epochs):
        model.train()
        t0 = time.perf_counter()
        for idx in order[epoch]:
            t1 = time.perf_counter()
            opt.zero_grad()
            t2 = time.perf_counter()
            loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
            t3 = time.perf_counter()
            loss.backward()
            t4 = time.perf_counter()
            opt.step()
            if phases is not None:
                for name, dt in zip(PHASES, (t2 - t1, t3 - t2, t4 - t3, time.perf_counter() - t4)):
                    phases[name].append(dt)
        times.append(time.perf_counter() - t0)
    return times


def _timed_step(opt, sink: list) -> None:
    """Append the seconds of each call of ``opt.step`` to ``sink`` (an instance attribute wrapping
    the bound method: used to time the torch optimizer inside `LowPrecisionOptimizer`)."""
    step = opt.step

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        result = step(*args, **kwargs)
        sink.append(time.perf_counter() - t0)
        return result

    opt.step = timed


def _accuracy(model, X, y) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(X).argmax(1) == y).float().mean())


class _QLayer(nn.Module):
    """QPyTorch's way of quantizing a linear or convolution layer: input, weight, bias and output
    through Quantizers."""

    def __init__(self, layer: nn.Module, act, weight):
        super().__init__()
        self.layer, self.act, self.weight_q = layer, act, weight

    def forward(self, x):
        w, b = self.weight_q(self.layer.weight), self.weight_q(self.layer.bias)
        x = self.act(x)
        if isinstance(self.layer, nn.Conv2d):
            y = nn.functional.conv2d(x, w, b, self.layer.stride, self.layer.padding)
        else:
            y = nn.functional.linear(x, w, b)
        return self.act(y)


def _qtorch_parts(model: nn.Sequential):
    """(``model`` through QPyTorch with this benchmark's policy, its OptimLP SGD): QPyTorch with hwsim's
    straight-through masks: its ``clamping_grad_zero`` (zero the gradient of saturated values, which
    hwsim always does for saturating formats) acts only when a backward number is given, so the
    backward number is float32 (``FloatingPoint(exp=8, man=23)``: the identity on float32 gradients).
    Without the masks this policy diverges: the logits saturate at ±8 and keep receiving gradient
    (22 % test accuracy after 2 epochs on 4,096 images, measured). ImportError without qtorch."""
    from qtorch import FixedPoint, FloatingPoint
    from qtorch.optim import OptimLP
    from qtorch.quant import quantizer

    fp32 = FloatingPoint(exp=8, man=23)

    class Q(nn.Module):
        def __init__(self, number):
            super().__init__()
            self.f = quantizer(forward_number=number, backward_number=fp32, forward_rounding="nearest",
                               backward_rounding="nearest", clamping_grad_zero=True)

        def forward(self, x):
            return self.f(x)

    act, weight = Q(FixedPoint(8, 4)), Q(FixedPoint(8, 7))
    model = nn.Sequential(*[_QLayer(m, act, weight) if isinstance(m, (nn.Linear, nn.Conv2d)) else m
                            for m in model])
    opt = OptimLP(torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM),
                  weight_quant=quantizer(FixedPoint(16, 14), forward_rounding="stochastic"))
    return model, opt


def _qtorch_engine():
    """The MLP through QPyTorch (`_qtorch_parts`)."""
    return _qtorch_parts(_mlp())


def _qtorch_ties() -> str:
    from qtorch.quant import fixed_point_quantize

    ties = torch.tensor([0.5, 1.5, 2.5, -2.5]) * 2.0**-4
    got = fixed_point_quantize(ties, 8, 4, rounding="nearest") * 16
    return (f"QPyTorch on the CPU rounds the ties (0.5, 1.5, 2.5, −2.5) × 2⁻⁴ to {got.tolist()} × 2⁻⁴ "
            "(half to even, `nearbyint` in `quant_cpu/quant_cpu.cpp`); its CUDA kernel (`nearest_round` in "
            "`quant_cuda/sim_helper.cu`) calls `round`, half away from zero, giving [1, 2, 3, −3] × 2⁻⁴: "
            "the same model rounds differently on CPU and GPU. hwsim names the tie rule (`nearest_even`, "
            "`nearest_away`) and gives the same bits on every backend.")


_PLAIN_TORCH = """
import json, sys, time
import numpy as np, torch
from torch import nn
d = np.load(sys.argv[1])
X, y, batches = torch.from_numpy(d["X"]), torch.from_numpy(d["y"]), d["batches"]
torch.manual_seed(int(sys.argv[2]))
model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
opt = torch.optim.SGD(model.parameters(), lr=float(sys.argv[3]), momentum=float(sys.argv[4]))
times = []
for epoch in batches:
    t0 = time.perf_counter()
    for idx in epoch:
        idx = torch.from_numpy(idx)
        opt.zero_grad()
        nn.functional.cross_entropy(model(X[idx]), y[idx]).backward()
        opt.step()
    times.append(time.perf_counter() - t0)
model.eval()
with torch.no_grad():
    acc = float((model(torch.from_numpy(d["Xt"])).argmax(1) == torch.from_numpy(d["yt"])).float().mean())
print(json.dumps([times, acc]))
"""


def _plain_torch_fp32(data, order, path: Path) -> tuple[list[float], float]:
    """(epoch seconds, test accuracy) of torch fp32 in a fresh Python process that never imports hwsim,
    so torch's OpenMP threads keep their default wait policy (spin, then sleep) instead of the
    ``OMP_WAIT_POLICY=PASSIVE`` that importing hwsim sets before torch loads: what a plain PyTorch user
    runs. The same model, data, batches and optimizer as the in-process torch fp32 row."""
    batches = np.stack([np.stack([idx.numpy() for idx in epoch]) for epoch in order])  # 8,000 = 125 × 64
    np.savez(path, X=data.X_train, y=data.y_train, Xt=data.X_test, yt=data.y_test, batches=batches)
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    run = subprocess.run([sys.executable, "-c", _PLAIN_TORCH, str(path), str(SEED), str(LR), str(MOMENTUM)],
                         env=env, capture_output=True, text=True, check=True)
    times, acc = json.loads(run.stdout)
    return times, acc


def _phase_text(phases: dict, inner_sgd: list[float]) -> str:
    """The per-step phase table (median milliseconds over every timed step) and its note."""
    names = list(phases)
    ms = {k: {p: 1e3 * statistics.median(v) for p, v in phases[k].items()} for k in names}
    base = names[0]
    rows = []
    for p in PHASES:
        rows.append([p] + [f"{ms[k][p]:.3f}" for k in names]
                    + [f"{ms[k][p] - ms[base][p]:+.3f}" for k in names[1:]])
        if p == "optimizer step" and inner_sgd:
            sgd = 1e3 * statistics.median(inner_sgd)
            rows.append(["of which torch's SGD step (hwsim.torch)", ""] + [
                f"{sgd:.3f}" if k == "hwsim.torch 8-bit" else "" for k in names[1:]]
                + ["" for _ in names[1:]])
    rows.append(["sum of the medians"] + [f"{sum(ms[k].values()):.3f}" for k in names]
                + [f"{sum(ms[k].values()) - sum(ms[base].values()):+.3f}" for k in names[1:]])
    head = ["phase (ms per step, median)"] + names + [f"{k} − {base}" for k in names[1:]]
    return "\n".join([
        md_table(head, rows), "",
        f"Every step of the timed epochs above ({len(phases[base][PHASES[0]])} per engine), timed by "
        "phase with the same clock reads for every engine; the medians of the phases need not add up "
        "to the median step. \"optimizer step\" of hwsim.torch is `LowPrecisionOptimizer.step`: "
        "torch's SGD step, then the `update` role (s16.14, stochastic) written into every parameter."])


def median_ms(fn, repeats: int) -> float:
    """Median milliseconds of ``repeats`` calls of ``fn``."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def write_report(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` (its folder made) through a temporary file then renamed: a reader never
    sees half a report."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(out)


def report_header(script: str, argv, t_start: float, load_before: tuple) -> list[str]:
    """The report lines naming the command (with its run time) and the machine (with its load)."""
    command = f"python benchmarks/{script} " + " ".join(argv if argv is not None else sys.argv[1:])
    return [f"Command: `{command.strip()}` ({time.perf_counter() - t_start:.0f} s in all)", "",
            f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads), numpy {np.__version__}; load "
            f"average {load_before[0]:.2f} before and {os.getloadavg()[0]:.2f} after the run (other jobs "
            "shared the machine).", ""]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(MNIST), help="directory of the MNIST IDX files")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "reports" / "benchmarks" / "torch.md"))
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    load_before = os.getloadavg()
    data = hwsim.load_data(f"mnist:{args.data}", split=8000, seed=SEED, flatten=True)
    X, y = torch.from_numpy(data.X_train), torch.from_numpy(data.y_train)
    Xt, yt = torch.from_numpy(data.X_test), torch.from_numpy(data.y_test)
    order = [np.random.default_rng([SEED, e]).permutation(len(X)) for e in range(args.epochs)]
    order = [[torch.from_numpy(p[i:i + BATCH]) for i in range(0, len(p), BATCH)] for p in order]
    precision = hwsim.Precision.from_flags("fp32", seed=SEED, **POLICY)

    def torch_fp32():
        model = _mlp()
        return model, torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def hwsim_torch():
        model = ht.quantize_model(_mlp(), precision)
        return model, ht.LowPrecisionOptimizer(torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM))

    engines = {"torch fp32": torch_fp32, "hwsim.torch 8-bit": hwsim_torch}
    try:
        _qtorch_engine()
        engines["QPyTorch 8-bit"] = _qtorch_engine
        ties = _qtorch_ties()
    except ImportError as e:
        ties = f"QPyTorch is not installed here ({e}): its rows are missing."
    plain = "torch fp32, own process without hwsim"
    times: dict[str, list[float]] = {k: [] for k in [*engines, "hwsim engine 8-bit", plain]}
    phases = {k: {p: [] for p in PHASES} for k in engines}
    inner_sgd: list[float] = []  # torch's SGD step inside hwsim.torch's LowPrecisionOptimizer.step
    acc: dict[str, float] = {}
    tmp = tempfile.TemporaryDirectory()
    for rep in range(args.repeats):
        for name, make in engines.items():
            model, opt = make()
            if isinstance(opt, ht.LowPrecisionOptimizer):
                _timed_step(opt.optimizer, inner_sgd)
            times[name] += _epochs_torch(model, opt, X, y, order, args.epochs, phases[name])
            acc[name] = _accuracy(model, Xt, yt)
            print(f"repeat {rep + 1}/{args.repeats} {name}: {times[name][-args.epochs:]}", flush=True)
        net = hwsim.build_model("mlp:784-256-256-10", data.input_shape, data.num_classes, seed=SEED)
        m = hwsim.train(net, data, precision, epochs=args.epochs, batch=BATCH, optimizer="sgd", lr=LR,
                        momentum=MOMENTUM, seed=SEED, progress=False)
        times["hwsim engine 8-bit"] += m["epoch_seconds"]
        acc["hwsim engine 8-bit"] = m["test_accuracy"]
        print(f"repeat {rep + 1}/{args.repeats} hwsim engine: {m['epoch_seconds']}", flush=True)
        plain_times, acc[plain] = _plain_torch_fp32(data, order, Path(tmp.name) / "mnist.npz")
        times[plain] += plain_times
        print(f"repeat {rep + 1}/{args.repeats} {plain}: {plain_times}", flush=True)
    tmp.cleanup()
    med = {k: statistics.median(v) for k, v in times.items()}
    fp32 = med["torch fp32"]
    rows = [[k, f"{100 * acc[k]:.2f}", f"{med[k]:.3f}", f"{med[k] / fp32:.2f}",
             ", ".join(f"{t:.3f}" for t in v)] for k, v in times.items()]

    def ratio(a: str, b: str) -> str:
        """Ratio of the medians, then the ratios of each repeat's medians (engines run side by side within a
        repeat, so these show how much a changing load on the shared machine moves the ratio)."""
        e = args.epochs
        per_repeat = [statistics.median(times[a][r:r + e]) / statistics.median(times[b][r:r + e])
                      for r in range(0, len(times[a]), e)]
        return f"{med[a] / med[b]:.2f} (repeats: {', '.join(f'{q:.2f}' for q in per_repeat)})"

    checks = [["hwsim.torch 8-bit epoch / torch fp32 epoch ≤ 1.5", ratio("hwsim.torch 8-bit", "torch fp32"),
               med["hwsim.torch 8-bit"] / fp32 <= 1.5],
              [f"hwsim.torch 8-bit epoch / {plain} epoch ≤ 1.5", ratio("hwsim.torch 8-bit", plain),
               med["hwsim.torch 8-bit"] / med[plain] <= 1.5],
              ["|hwsim.torch − hwsim engine| accuracy ≤ 0.5 pt",
               f"{100 * abs(acc['hwsim.torch 8-bit'] - acc['hwsim engine 8-bit']):.2f} pt",
               abs(acc["hwsim.torch 8-bit"] - acc["hwsim engine 8-bit"]) <= 0.005]]
    if "QPyTorch 8-bit" in med:
        slower = med["QPyTorch 8-bit"] / med["hwsim.torch 8-bit"]
        checks.insert(1, ["QPyTorch epoch / hwsim.torch epoch ≥ 4",
                          ratio("QPyTorch 8-bit", "hwsim.torch 8-bit"), slower >= 4])
    text = "\n".join([
        "# hwsim for PyTorch users (MNIST, MLP 784-256-256-10)", "",
        *report_header("bench_torch.py", argv, t_start, load_before),
        f"Data: shared MNIST t10k, first 8,000 train / last 2,000 test. SGD lr {LR}, momentum {MOMENTUM}, "
        f"batch {BATCH}, seed {SEED}, {args.epochs} epochs per engine and repeat; {args.repeats} repeats, "
        "engines interleaved. Policy of the 8-bit rows: "
        "`--weight s8.7 --activation s8.4 --update s16.14:stochastic`.", "",
        md_table(["engine", "test accuracy (%)", "median epoch (s)", "/ torch fp32", "all epochs (s)"], rows),
        "",
        "hwsim.torch runs hwsim's own layer code on zero-copy views of the torch tensors (torch's CPU GEMM "
        "for the products, fixedpoint's Numba kernels for the roles); torch supplies the loss, autograd "
        "and the optimizer. The hwsim.torch and hwsim engine rows differ only there (torch's SGD and "
        "cross-entropy) and in the initial weights (torch's vs Glorot uniform).", "",
        "## Targets", "",
        md_table(["target", "measured", "met"], [[c[0], c[1], "yes" if c[2] else "**no**"] for c in checks]),
        "",
        "## Where the time goes", "",
        _phase_text(phases, inner_sgd), "",
        "## Tie rounding", "", ties, "",
    ])
    write_report(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
