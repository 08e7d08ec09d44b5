"""Where a hwsim.torch training step's time goes, beside torch fp32 → reports/benchmarks/torch_steps.md.

The MLP of bench_torch.py (784-256-256-10, SGD lr 0.05, momentum 0.9, batch 64), the 8-bit policy
``--weight s8.7 --activation s8.4 --update s16.14:stochastic``, random inputs (no data files needed):

1. One fixed batch, trained for many steps: the SGD step's time (torch fp32's ``optimizer.step`` and
   the torch SGD step inside hwsim.torch's ``LowPrecisionOptimizer``) and the number of float32
   subnormals in torch fp32's momentum buffers, per block of steps. A memorized batch drives the
   gradients towards 0, and subnormal operands slow the elementwise ops: per-step timings on one
   fixed batch drift.
2. 64 different random batches in turn: torch fp32's step; hwsim.torch's optimizer step split into
   torch's SGD step and the ``update`` role written into the parameters (in the training loop); the
   same update work in a loop of its own; and the fixedpoint calls one step makes (weight, bias,
   activation and update roles with their straight-through masks), timed alone. Their sum added to
   torch fp32's step is the step hwsim.torch would take with no other overhead.

Run: ``python benchmarks/bench_torch_steps.py [--drift-steps 1200] [--steps 300]``.
"""
from __future__ import annotations

# isort: split

import argparse  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import hwsim.torch as ht  # noqa: E402
from hwsim import RoleFormat, md_table  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from bench_torch import BATCH, LR, MOMENTUM, POLICY, _mlp, _timed_step, median_ms, report_header, write_report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = np.finfo(np.float32).tiny


def _engines():
    m0 = _mlp()
    o0 = torch.optim.SGD(m0.parameters(), lr=LR, momentum=MOMENTUM)
    m1 = ht.quantize_model(_mlp(), "fp32", **POLICY)
    o1 = ht.LowPrecisionOptimizer(torch.optim.SGD(m1.parameters(), lr=LR, momentum=MOMENTUM))
    return (m0, o0), (m1, o1)


def _step(model, opt, x, y) -> None:
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


def _subnormals(opt) -> int:
    count = 0
    for state in opt.state.values():
        buf = state["momentum_buffer"].abs()
        count += int(((buf < TINY) & (buf != 0)).sum())
    return count


def drift(steps: int, block: int) -> list[list[str]]:
    """Rows (steps done, torch fp32 SGD ms, its subnormal momentum values, hwsim.torch's SGD ms)."""
    (m0, o0), (m1, o1) = _engines()
    t0: list[float] = []
    t1: list[float] = []
    _timed_step(o0, t0)
    _timed_step(o1.optimizer, t1)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(BATCH, 784, generator=gen), torch.randint(0, 10, (BATCH,), generator=gen)
    rows = []
    for done in range(block, steps + 1, block):
        for _ in range(block):
            _step(m0, o0, x, y)
            _step(m1, o1, x, y)
        rows.append([str(done), f"{1e3 * statistics.median(t0[-block:]):.3f}", str(_subnormals(o0)),
                     f"{1e3 * statistics.median(t1[-block:]):.3f}"])
        print("drift", rows[-1], flush=True)
    return rows


def _update_views(model) -> list:
    """The parameters as hwsim's update role sees them (a Linear weight in hwsim's (in, out) order)."""
    return [ht.as_array(p).T if p.ndim == 2 else ht.as_array(p) for p in model.parameters()]


def parts(steps: int) -> tuple[list[list[str]], dict]:
    """Rows of the per-step split on changing batches, and the figures the text quotes."""
    (m0, o0), (m1, o1) = _engines()
    gen = torch.Generator().manual_seed(1)
    batches = [(torch.rand(BATCH, 784, generator=gen), torch.randint(0, 10, (BATCH,), generator=gen))
               for _ in range(64)]
    sgd: list[float] = []
    _timed_step(o1.optimizer, sgd)
    step0, step1, opt1 = [], [], []
    for k in range(steps):
        x, y = batches[k % len(batches)]
        t = time.perf_counter()
        _step(m0, o0, x, y)
        step0.append(time.perf_counter() - t)
        t = time.perf_counter()
        o1.zero_grad()
        nn.functional.cross_entropy(m1(x), y).backward()
        t_opt = time.perf_counter()
        o1.step()
        opt1.append(time.perf_counter() - t_opt)
        step1.append(time.perf_counter() - t)
    half = steps // 2  # the first half warms up
    med = lambda v: 1e3 * statistics.median(v[half:])  # noqa: E731
    in_loop = statistics.median([a - b for a, b in zip(opt1[half:], sgd[half:], strict=True)]) * 1e3

    update = RoleFormat.parse(POLICY["update"])
    views = _update_views(m1)

    def update_alone():
        for v in views:
            v[...] = update(v, seed=7, offset=0)

    weight, act = RoleFormat.parse(POLICY["weight"]), RoleFormat.parse(POLICY["activation"])
    rng = np.random.default_rng(2)
    acts = [rng.random((BATCH, 784), dtype=np.float32)] + [
        rng.standard_normal((BATCH, n)).astype(np.float32) for n in (256, 256, 10)]
    weights = [np.ascontiguousarray(v) for v in views]

    def forward_roles():
        for w in weights:
            weight(w, seed=0)
            weight.grad_mask(w)
        for a in acts:
            act(a, seed=0)
            act.grad_mask(a)

    alone = median_ms(update_alone, 200)
    roles = median_ms(forward_roles, 200)
    rows = [["torch fp32 step", f"{med(step0):.3f}"],
            ["hwsim.torch 8-bit step", f"{med(step1):.3f}"],
            ["of which LowPrecisionOptimizer.step", f"{med(opt1):.3f}"],
            ["… of which torch's SGD step", f"{med(sgd):.3f}"],
            ["… of which the update role, in the training loop", f"{in_loop:.3f}"],
            ["the same update work in a loop of its own", f"{alone:.3f}"],
            ["weight role on every parameter and activation roles, with their masks, alone", f"{roles:.3f}"]]
    figures = {"fp32": med(step0), "hwsim": med(step1), "in_loop": in_loop, "alone": alone, "roles": roles}
    return rows, figures


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--drift-steps", type=int, default=1200, help="steps on one fixed batch (default 1200)")
    ap.add_argument("--steps", type=int, default=300, help="steps on changing batches (default 300)")
    ap.add_argument("--out", default=str(ROOT / "reports" / "benchmarks" / "torch_steps.md"))
    args = ap.parse_args(argv)
    if args.drift_steps < 100 or args.steps < 20:
        ap.error(f"--drift-steps must be >= 100 and --steps >= 20, got {args.drift_steps}, {args.steps}")
    t_start, load_before = time.perf_counter(), os.getloadavg()
    drift_rows = drift(args.drift_steps, 100)
    part_rows, f = parts(args.steps)
    floor = f["fp32"] + f["alone"] + f["roles"]
    text = "\n".join([
        "# Where a hwsim.torch training step's time goes", "",
        *report_header("bench_torch_steps.py", argv, t_start, load_before),
        "MLP 784-256-256-10, SGD lr 0.05, momentum 0.9, batch 64, random inputs; 8-bit rows: "
        "`--weight s8.7 --activation s8.4 --update s16.14:stochastic`.", "",
        "## One fixed batch: the SGD step drifts", "",
        md_table(["steps done", "torch fp32 SGD step (ms, median of the last 100)",
                  "subnormal momentum values (torch fp32)", "hwsim.torch's torch SGD step (ms)"],
                 drift_rows), "",
        "Trained on one batch, the model memorizes it: the gradients fall towards 0 and the momentum "
        "buffers reach float32's subnormal range, where the elementwise ops slow down. Per-step timings "
        "on one fixed batch therefore depend on how long the model has trained; bench_torch.py times "
        "real epochs.", "",
        f"## 64 changing batches, {args.steps} steps (medians of the last "
        f"{args.steps - args.steps // 2})", "",
        md_table(["part (ms per step)", "median"], part_rows), "",
        f"The update role costs {f['in_loop']:.3f} ms in the training loop and {f['alone']:.3f} ms in a loop "
        "of its own. The cause is not isolated here; it is not the waking of Numba's thread pool after "
        "torch's (bench_torch_optim.py → torch_optim.md: the update role run single-threaded in the loop "
        "is no faster). "
        f"torch fp32's step plus the fixedpoint work timed alone is {floor:.3f} ms, "
        f"{floor / f['fp32']:.2f}× torch fp32's step: what hwsim.torch would take with no other overhead "
        f"(it takes {f['hwsim'] / f['fp32']:.2f}×).", "",
    ])
    write_report(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
