"""hwsim.torch's optimizer step, two ways to make it cheaper, in the loop → reports/benchmarks/torch_optim.md.

The MLP and policy of bench_torch.py (784-256-256-10, SGD lr 0.05, momentum 0.9, batch 64, ``--weight
s8.7 --activation s8.4 --update s16.14:stochastic``), 64 random batches in turn. Variants, each a fresh
model trained ``--steps`` steps per round, rounds interleaved:

- torch fp32: ``torch.optim.SGD`` on the plain model (the reference);
- shipped: ``LowPrecisionOptimizer`` as it is: torch's SGD step, then the ``update`` role;
- update single-threaded: the same, with Numba's threads set to 1 while the ``update`` role runs — if
  waking Numba's thread pool after torch's were what makes the role cost more in the loop than alone
  (torch_steps.md), this variant would be faster;
- fused SGD: torch's SGD arithmetic in one Numba pass per parameter (`_fused_sgd_pass`: ``fma`` where
  torch's ATen ``add`` kernel fuses, checked bit for bit against torch's ``SGD.step`` before timing), in
  place of torch's step, then the ``update`` role. Its parameters after every round are compared with
  the shipped variant's (the same bits are expected).

Run: ``python benchmarks/bench_torch_optim.py [--steps 200] [--rounds 7]``.
"""
from __future__ import annotations

import hwsim  # noqa: F401  first: sets OMP_WAIT_POLICY=PASSIVE before any OpenMP runtime loads

# isort: split

import argparse  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from llvmlite import ir  # noqa: E402
from numba import njit, types  # noqa: E402
from numba.extending import intrinsic  # noqa: E402
from torch import nn  # noqa: E402

import hwsim.torch as ht  # noqa: E402
from hwsim import md_table  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from bench_torch import BATCH, LR, MOMENTUM, POLICY, _mlp, report_header, write_report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("torch fp32", "shipped", "update single-threaded", "fused SGD")


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c`` rounded once (LLVM's ``llvm.fma``)."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        ty = args[0].type
        return builder.call(builder.module.declare_intrinsic("llvm.fma", [ty], ir.FunctionType(ty, [ty] * 3)),
                            args)

    return a(a, b, c), codegen


@njit(cache=True)
def _fused_sgd_pass(p, g, buf, neg_lr, momentum, first):
    """torch's single-tensor SGD step (momentum, no dampening, weight decay or Nesterov) on flat
    float32 arrays: ``buf = fma(g, 1, buf * momentum)`` (``buf = g`` on the first step), then
    ``p = fma(buf, -lr, p)`` — ATen's ``add`` with ``alpha`` is one fused multiply-add."""
    one = momentum / momentum
    for i in range(p.size):
        b = g[i] if first else _fma(g[i], one, buf[i] * momentum)
        buf[i] = b
        p[i] = _fma(b, neg_lr, p[i])


def _flat(a: np.ndarray) -> np.ndarray:
    """``a`` (C- or F-contiguous) as a 1-D view in memory order: the pass writes through it."""
    if not (a.flags.c_contiguous or a.flags.f_contiguous):
        raise ValueError(f"the fused SGD pass needs contiguous tensors, got strides {a.strides}")
    return a.reshape(-1) if a.flags.c_contiguous else a.T.reshape(-1)


def _same_bits(a: list, b: list) -> bool:
    """True when the tensors of ``a`` and ``b`` hold the same bytes, pair by pair (-0.0 is not 0.0)."""
    return all(x.detach().numpy().tobytes() == y.detach().numpy().tobytes()
               for x, y in zip(a, b, strict=True))


def _fused_step(sgd: torch.optim.SGD):
    """A replacement for ``sgd.step`` running `_fused_sgd_pass` on every parameter with a gradient."""
    group = sgd.param_groups[0]
    neg_lr, momentum = np.float32(-group["lr"]), np.float32(group["momentum"])

    def step(closure=None):
        for p in group["params"]:
            if p.grad is None:
                continue
            state = sgd.state[p]
            first = "momentum_buffer" not in state
            if first:
                state["momentum_buffer"] = torch.empty_like(p.grad)
            _fused_sgd_pass(_flat(ht.as_array(p)), _flat(ht.as_array(p.grad)),
                            _flat(ht.as_array(state["momentum_buffer"])), neg_lr, momentum, first)

    return step


def _equal_to_torch_sgd(steps: int = 3) -> bool:
    """True when `_fused_step` gives torch's ``SGD.step`` bits (parameters and momentum buffers) on
    the MLP's parameter shapes with random gradients spread over six decades."""
    gen = torch.Generator().manual_seed(3)
    params = [torch.randn(p.shape, generator=gen) for p in _mlp().parameters()]
    a = [nn.Parameter(p.clone()) for p in params]
    b = [nn.Parameter(p.clone()) for p in params]
    sa, sb = (torch.optim.SGD(ps, lr=LR, momentum=MOMENTUM) for ps in (a, b))
    fused = _fused_step(sb)
    for _ in range(steps):
        for pa, pb in zip(a, b, strict=True):
            g = torch.randn(pa.shape, generator=gen) * 10.0 ** torch.randint(-4, 2, pa.shape, generator=gen)
            pa.grad, pb.grad = g.clone(), g.clone()
        sa.step()
        fused()
        if not (_same_bits(a, b) and _same_bits([sa.state[p]["momentum_buffer"] for p in a],
                                                  [sb.state[p]["momentum_buffer"] for p in b])):
            return False
    return True


def _engine(variant: str):
    if variant == "torch fp32":
        model = _mlp()
        return model, torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    model = ht.quantize_model(_mlp(), "fp32", **POLICY)
    opt = ht.LowPrecisionOptimizer(torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM))
    if variant == "fused SGD":
        opt.optimizer.step = _fused_step(opt.optimizer)
    elif variant == "update single-threaded":
        sgd_step, lp_step, threads = opt.optimizer.step, opt.step, numba.get_num_threads()

        def sgd_then_one_thread(closure=None):
            loss = sgd_step(closure)
            numba.set_num_threads(1)  # for the update role that follows
            return loss

        def step(closure=None):
            try:
                return lp_step(closure)
            finally:
                numba.set_num_threads(threads)

        opt.optimizer.step, opt.step = sgd_then_one_thread, step
    return model, opt


def measure(steps: int, rounds: int) -> tuple[dict, dict, bool]:
    """Per variant the per-round medians (ms) of the step and of the optimizer phase (the last
    ``steps - steps // 4`` steps of each round), and whether the fused variant's parameters equal the
    shipped one's after every round."""
    gen = torch.Generator().manual_seed(1)
    batches = [(torch.rand(BATCH, 784, generator=gen), torch.randint(0, 10, (BATCH,), generator=gen))
               for _ in range(64)]
    step_ms = {v: [] for v in VARIANTS}
    opt_ms = {v: [] for v in VARIANTS}
    same = True
    for _ in range(rounds):
        final = {}
        for variant in VARIANTS:
            model, opt = _engine(variant)
            total, optim = [], []
            for k in range(steps):
                x, y = batches[k % len(batches)]
                t0 = time.perf_counter()
                opt.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                t1 = time.perf_counter()
                opt.step()
                t2 = time.perf_counter()
                total.append(t2 - t0)
                optim.append(t2 - t1)
            warm = steps // 4
            step_ms[variant].append(1e3 * statistics.median(total[warm:]))
            opt_ms[variant].append(1e3 * statistics.median(optim[warm:]))
            final[variant] = list(model.parameters())
        same &= _same_bits(final["shipped"], final["fused SGD"])
    return step_ms, opt_ms, same


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200,
                    help="training steps per variant and round (default 200)")
    ap.add_argument("--rounds", type=int, default=7, help="rounds, variants interleaved (default 7)")
    ap.add_argument("--out", default=str(ROOT / "reports" / "benchmarks" / "torch_optim.md"))
    args = ap.parse_args(argv)
    if args.steps < 20 or args.rounds < 2:
        ap.error(f"--steps must be >= 20 and --rounds >= 2, got {args.steps}, {args.rounds}")
    t_start, load_before = time.perf_counter(), os.getloadavg()
    if not _equal_to_torch_sgd():
        print("the fused SGD pass differs from this torch build's SGD.step: nothing to compare",
              file=sys.stderr)
        return 1
    step_ms, opt_ms, same = measure(args.steps, args.rounds)
    med = {v: statistics.median(step_ms[v][1:]) for v in VARIANTS}  # the first round warms up
    med_opt = {v: statistics.median(opt_ms[v][1:]) for v in VARIANTS}
    rows = [[v, f"{med[v]:.3f}", f"{med[v] / med['torch fp32']:.2f}", f"{med_opt[v]:.3f}",
             ", ".join(f"{t:.3f}" for t in step_ms[v])] for v in VARIANTS]
    text = "\n".join([
        "# hwsim.torch's optimizer step: two ways to make it cheaper, in the training loop", "",
        *report_header("bench_torch_optim.py", argv, t_start, load_before),
        f"MLP 784-256-256-10, SGD lr {LR}, momentum {MOMENTUM}, batch {BATCH}, 64 random batches in turn; "
        "hwsim.torch rows: `--weight s8.7 --activation s8.4 --update s16.14:stochastic`. Each round trains a "
        f"fresh model of every variant for {args.steps} steps (variants interleaved); per round the median "
        f"of its last {args.steps - args.steps // 4} steps; the table's medians leave out the first round "
        "(warm-up).", "",
        md_table(["variant", "step (ms, median of rounds)", "/ torch fp32",
                  "of which the optimizer step (ms)", "every round's step (ms)"], rows), "",
        "The fused SGD pass equals torch's `SGD.step` bit for bit (checked on the MLP's parameter shapes "
        "before timing), and the fused variant's parameters after every round "
        f"{'equal' if same else '**differ from**'} the shipped variant's.", "",
        f"- *Update single-threaded* vs *shipped*: {med_opt['update single-threaded']:.3f} vs "
        f"{med_opt['shipped']:.3f} ms per optimizer step. Waking Numba's thread pool is "
        f"{'not ' if med_opt['update single-threaded'] >= 0.95 * med_opt['shipped'] else ''}what makes "
        "the update role cost more in the training loop than alone.",
        f"- *Fused SGD* vs *shipped*: {med_opt['fused SGD']:.3f} vs {med_opt['shipped']:.3f} ms per "
        f"optimizer step, {med['fused SGD']:.3f} vs {med['shipped']:.3f} ms per training step "
        f"({med['fused SGD'] / med['torch fp32']:.2f}× vs {med['shipped'] / med['torch fp32']:.2f}× torch "
        "fp32). One pass per parameter (read parameter, gradient and momentum buffer; write parameter "
        "and buffer) in place of torch's three ATen calls per parameter.", "",
    ])
    write_report(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
