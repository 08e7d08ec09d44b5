"""The seed papers' training schemes and compression pipeline on MNIST, against the papers' numbers.

MNIST t10k files from ``--data`` (first 8,000 images train, last 2,000 test). Writes a markdown
report (default ``reports/benchmarks/schemes.md``) with the exact command line:

1. training schemes on ``mlp:784-H-H-10`` (``--hidden``), same epochs/batch/seed for every row;
2. post-training min-max quantization of a float LeNet-300-100 (Han et al.'s MLP);
3. deep compression of that network (prune -> share -> Huffman), per-layer stored sizes;
4. group lasso + dead-neuron removal; 5. distillation into a small student.
Every row gets the estimated latency and energy of one inference on ``stm32h743`` (weights in
flash) and ``h100-sxm`` from ``hwsim.workload`` + ``devices.estimate``.

    python benchmarks/bench_schemes.py            # 784-1024-1024-10, 10 epochs per row
    python benchmarks/bench_schemes.py --only-costs   # only the device-cost cells of the existing report

``--only-costs`` trains nothing: a row's cost depends on its network's shape and weight / activation
widths only, which it rebuilds (untrained, same specs and policies) or reads from the report (the
group-lasso network's widths, the compressed layers' stored bytes).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import sys
import time
from pathlib import Path

import cost_refresh
import numpy as np

import devices
import hwsim
from hwsim.compression import (
    GroupLasso,
    compressed_workload,
    deep_compress,
    distill,
    post_training_quantize,
    remove_dead_neurons,
)
from hwsim.schemes import BinaryQuantizer, TernaryQuantizer, get_scheme

DEVICES = ("stm32h743", "h100-sxm")
LENET = "mlp:784-300-100-10"

# label, scheme, params, lr, published MNIST test error (%) and its source
SCHEME_ROWS = [
    ("fp32 (+BN)", "fp32", {"batchnorm": True}, 1e-3, "1.33 [L] / 1.30 [C]"),
    ("BinaryConnect det.", "binaryconnect", {}, 1e-2, "1.29 [C]"),
    ("BinaryConnect stoch.", "binaryconnect", {"stochastic": True}, 1e-1, "1.23 [L] / 1.18 [C]"),
    ("TernaryConnect stoch.", "ternaryconnect", {}, 1e-1, "—"),
    ("BC + quantized backprop", "quantized-backprop", {}, 1e-1, "1.29 [L]"),
    ("TC + quantized backprop", "quantized-backprop", {"weights": "ternary"}, 1e-1, "1.15 [L]"),
    ("TWN", "twn", {}, 1e-3, "— (0.65 LeNet-5 CNN [T])"),
    ("BNN", "bnn", {}, 3e-2, "0.96 [B]"),
]
PTQ_BITS = (32, 16, 12, 10, 8, 6, 4)
PTQ_SEED = {32: "98.42", 12: "98.43", 10: "98.44", 8: "98.44", 6: "98.32"}
# Han, Mao, Dally 2015, Table 2 (LeNet-300-100): weights kept, weight bits (P+Q), index bits
HAN = {"dense0": ("235K", "8%", 6, 5), "dense2": ("30K", "9%", 6, 5), "dense4": ("1K", "26%", 6, 5),
       "total": ("266K", "8%", 6, 5)}


#: How the rows' device costs treat the schemes' products (printed under table 1).
COST_NOTE = ("Costs: `hwsim.workload` counts a binary, ternary or power-of-two weight times a float32 "
             "activation as a `shift` product (a sign flip or shift plus an accumulate: BinaryConnect's "
             "\"MACs become additions\"), so BinaryConnect, TernaryConnect, TWN and quantized backprop save "
             "the multiplications as well as the weight reads (1–2 bits instead of 32); BNN is costed with "
             "binary weights and activations (XNOR-popcount op rates, first layer included).")


def _cost(model, precision=None, wl=None) -> dict:
    """{device: (latency s, energy J)} of one inference (``wl`` or the model's workload);
    weights in flash on the MCU."""
    wl = hwsim.workload(model, precision, batch=1) if wl is None else wl
    out = {}
    for dev in DEVICES:
        ops = [dataclasses.replace(op, weights_level="flash")
               if dev == "stm32h743" and isinstance(op, devices.MatMul) else op for op in wl]
        est = devices.estimate(devices.Workload(ops), dev)
        out[dev] = (est.latency_s, est.energy_j)
    return out


def _cost_cells(c: dict) -> str:
    return " | ".join(f"{c[d][0] * 1e3:.3g} ms / {c[d][1] * 1e6:.3g} µJ" for d in DEVICES)


def _train(model, data, precision, epochs, batch, lr, seed, scheme=None) -> tuple[dict, float]:
    t = time.perf_counter()
    m = hwsim.train(model, data, precision, epochs=epochs, batch=batch, lr=lr, seed=seed, progress=False,
                    scheme=scheme, schedule="cosine")
    return m, time.perf_counter() - t


def _timed(fn, x, repeat: int = 5):
    """(median seconds, result) of ``fn(x)`` over ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        y = fn(x)
        times.append(time.perf_counter() - t)
    return float(np.median(times)), y


def _deterministic(precision):
    """The policy with stochastic binary/ternary weights replaced by their deterministic form."""
    w = precision.weight
    if isinstance(w, BinaryQuantizer) and w.stochastic:
        return precision.replace(weight=BinaryQuantizer())
    if isinstance(w, TernaryQuantizer) and w.stochastic:
        return precision.replace(weight=TernaryQuantizer())
    return precision


def _error(model, data, precision) -> float:
    return 100 * (1 - hwsim.evaluate(model, data.X_test, data.y_test, precision)["accuracy"])


def bench_schemes(data, args, out: list[str]) -> None:
    spec = f"mlp:784-{args.hidden}-{args.hidden}-10"
    out += [f"## 1. Training schemes (`{spec}`, batch norm after every layer, {args.epochs} epochs, "
            f"batch {args.batch}, Adam with a cosine schedule, seed {args.seed})", "",
            "Test error with the quantized weights (stochastic schemes: their deterministic form, sign or "
            "threshold 0.5, i.e. the deployable network) and with the real-valued master weights (how the "
            "BinaryConnect paper tests its stochastic variant). Learning rates per scheme: binary/ternary "
            "master weights start in [-1, 1] (`unit_init`, the paper's H = Glorot scaling), so they take "
            "larger steps.", "",
            "| scheme | lr | error % quantized | error % real-valued | published MNIST error % | train s | "
            + " | ".join(f"{d} latency / energy" for d in DEVICES) + " |",
            "|---|---|---|---|---|---|" + "---|" * len(DEVICES)]
    errors = {}
    for label, name, params, lr, seed_err in SCHEME_ROWS:
        scheme = get_scheme(name, **params)
        model = scheme.build_model(spec, (784,), 10, seed=args.seed)
        prec = scheme.precision(args.seed)
        _, secs = _train(model, data, prec, args.epochs, args.batch, lr, args.seed)
        err = _error(model, data, _deterministic(prec))
        err_real = _error(model, data, hwsim.Precision())
        model.set_precision(prec)
        errors[label] = err
        if hasattr(scheme, "workload_precision"):
            prec = scheme.workload_precision(args.seed)
        if name == "bnn":
            packed = hwsim.schemes.PackedBNN(model)
            t_packed, y_packed = _timed(packed.forward, data.X_test)
            t_float, y_float = _timed(model.forward, data.X_test)
            same = np.array_equal(y_packed, y_float)
            label += (f" (XNOR-popcount path {'bit-identical' if same else 'DIFFERS'}; {len(data.X_test)} "
                      f"test images in {t_packed * 1e3:.0f} ms packed vs {t_float * 1e3:.0f} ms float "
                      "emulation, median of 5)")
        out.append(f"| {label} | {lr:g} | {err:.2f} | {err_real:.2f} | {seed_err} | {secs:.0f} | "
                   f"{_cost_cells(_cost(model, prec))} |")
        print(out[-1], file=sys.stderr, flush=True)
    gap = errors["BinaryConnect det."] - errors["fp32 (+BN)"]
    gap_s = errors["BinaryConnect stoch."] - errors["fp32 (+BN)"]
    out += ["", f"BinaryConnect − fp32: det. {gap:+.2f} points, stoch. {gap_s:+.2f} points "
            f"(goal: within 1.5 points; {'met' if max(gap, gap_s) <= 1.5 else 'MISSED'}).", "",
            COST_NOTE, ""]


def bench_ptq(base, data, out: list[str]) -> None:
    out += ["## 2. Post-training min-max quantization (float LeNet-300-100, weights and biases per layer)",
            "",
            "| bits | our test accuracy % | published (MNIST) % | per-layer formats (W) | "
            + " | ".join(f"{d} latency / energy" for d in DEVICES) + " |",
            "|---|---|---|---|" + "---|" * len(DEVICES)]
    acc = {}
    for bits in PTQ_BITS:
        if bits == 32:
            q, formats, prec = base, {}, None
        else:
            q, formats = post_training_quantize(base, bits)
            prec = hwsim.Precision.from_flags(weight=f"s{bits}.{bits - 1}")   # the cost depends on bits only
        acc[bits] = 100 * hwsim.evaluate(q, data.X_test, data.y_test)["accuracy"]
        fw = ", ".join(v for k, v in formats.items() if k.endswith(".W")) or "float32"
        label = "32 (float)" if bits == 32 else str(bits)
        out.append(f"| {label} | {acc[bits]:.2f} | {PTQ_SEED.get(bits, '—')} | {fw} | "
                   f"{_cost_cells(_cost(q, prec))} |")
    d8 = acc[32] - acc[8]
    out += ["",
            f"8 bits vs float: {-d8:+.2f} points (goal: within 0.3; {'met' if d8 <= 0.3 else 'MISSED'}).",
            ""]


def bench_deep_compression(base, data, args, out: list[str]) -> None:
    model = copy.deepcopy(base)
    sparsity = {0: 0.92, 2: 0.91, 4: 0.74}          # Han et al.'s LeNet-300-100 keep ratios
    t = time.perf_counter()
    res = deep_compress(model, data, sparsity=sparsity, bits=args.share_bits, index_bits=5, prune_rounds=3,
                        epochs_per_round=args.prune_epochs, share_epochs=1, batch=args.batch, lr=args.lr,
                        seed=args.seed)
    secs = time.perf_counter() - t
    fixed = res["stored"].with_coding("fixed")
    rows_h = {r["layer"]: r for r in res["report"]}
    rows_f = {r["layer"]: r for r in fixed.report()}
    out += [f"## 3. Deep compression (LeNet-300-100; prune to Han et al.'s per-layer ratios in 3 rounds of "
            f"{args.prune_epochs} epoch(s) of retraining, {args.share_bits}-bit k-means sharing + 1 epoch of "
            f"centroid fine-tuning, 5-bit relative indices; {secs:.0f} s)", "",
            "Sizes are the bytes of the stored file (`CompressedModel.to_bytes()`), header included. "
            "P = pruning, Q = quantization (sharing), H = Huffman.", "",
            "| layer | weights | kept % (Han) | weight bits P+Q (Han) | weight bits P+Q+H | index bits P+Q "
            "(Han) | index bits P+Q+H | fillers | bytes P+Q | bytes P+Q+H | rate P+Q+H |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows_h.items():
        if name == "header":
            out.append(f"| header | | | | | | | | {rows_f['header']['stored_bytes']} | "
                       f"{r['stored_bytes']} | |")
            continue
        han = HAN.get(name, ("", "", "", ""))
        if name == "total":
            out.append(f"| **total** | {r['weights']} | {r['nonzero_pct']:.1f} ({han[1]}) | | | | | | "
                       f"{rows_f['total']['stored_bytes']} ({rows_f['total']['compression']:.1f}×, Han 32×) "
                       f"| {r['stored_bytes']} | **{r['compression']:.1f}×** (Han 40×) |")
            continue
        f = rows_f[name]
        out.append(f"| {name} | {r['weights']} | {r['nonzero_pct']:.1f} ({han[1]}) | {args.share_bits} "
                   f"({han[2]}) | {r['weight_bits']:.2f} | 5 ({han[3]}) | {r['index_bits']:.2f} | "
                   f"{r['fillers']} | {f['stored_bytes']} | {r['stored_bytes']} | {r['compression']:.1f}× |")
    acc = res["accuracy"]
    loss = 100 * (acc["baseline"] - acc["stored"])
    wl = compressed_workload(model, res["stored"])
    layer_bits = {op.name.split("/")[0]: op.b_bits for op in wl if isinstance(op, devices.MatMul)}
    out += ["", "| stage | test accuracy % | " + " | ".join(f"{d} latency / energy" for d in DEVICES) + " |",
            "|---|---|" + "---|" * len(DEVICES),
            f"| float baseline | {100 * acc['baseline']:.2f} | {_cost_cells(_cost(base))} |",
            f"| pruned + retrained | {100 * acc['pruned']:.2f} | |",
            f"| shared + fine-tuned | {100 * acc['shared']:.2f} | |",
            f"| decoded from the stored bytes | {100 * acc['stored']:.2f} | "
            f"{_cost_cells(_cost(model, wl=wl))} |", "",
            f"Total compression {res['compression']:.1f}× with {loss:+.2f} points accuracy loss "
            f"(goal ≥ 20× with ≤ 1 point: {'met' if res['compression'] >= 20 and loss <= 1 else 'MISSED'}). "
            "Costs of the compressed model: weights read at their stored bits per weight "
            f"({', '.join(f'{k} {v}' for k, v in layer_bits.items())}); neither profile declares "
            "`exploits_sparsity`, so the zero weights' MACs are still executed.", ""]


def bench_group_lasso(data, args, out: list[str]) -> None:
    model = hwsim.build_model(LENET, (784,), 10, seed=args.seed)
    hook = GroupLasso(lam=args.gl_lam, prox_lr=args.gl_lr)
    t = time.perf_counter()
    m = hwsim.train(model, data, hwsim.Precision(), epochs=args.epochs, batch=args.batch, lr=args.gl_lr,
                    optimizer="sgd", momentum=0.9, seed=args.seed, progress=False, schedule="cosine",
                    scheme=hook)
    secs = time.perf_counter() - t
    small, kept = remove_dead_neurons(model)
    acc_small = hwsim.evaluate(small, data.X_test, data.y_test)["accuracy"]
    m_ft, _ = _train(small, data, hwsim.Precision(), 1, args.batch, args.lr, args.seed)
    out += ["## 4. Group lasso + dead-neuron removal (Scardapane et al. 2017; LeNet-300-100, λ = "
            f"{args.gl_lam:g}, SGD lr {args.gl_lr:g} momentum 0.9 with proximal group steps, {args.epochs} "
            f"epochs, {secs:.0f} s)", "",
            "| model | neurons per layer | test accuracy % | "
            + " | ".join(f"{d} latency / energy" for d in DEVICES) + " |",
            "|---|---|---|" + "---|" * len(DEVICES),
            f"| trained with group lasso | 784-300-100-10 | {100 * m['test_accuracy']:.2f} | "
            f"{_cost_cells(_cost(model))} |",
            f"| dead neurons removed (norm ≤ 1e-3) | {'-'.join(map(str, kept))} | "
            f"{100 * acc_small:.2f} | {_cost_cells(_cost(small))} |",
            f"| … and the {784 - kept[0]} unused inputs dropped (cost only) | {'-'.join(map(str, kept))} | "
            "same | "
            f"{_cost_cells(_cost(hwsim.build_model('mlp:' + '-'.join(map(str, kept)), (kept[0],), 10)))} |",
            f"| + 1 epoch fine-tuning without penalty | same | {100 * m_ft['test_accuracy']:.2f} | same |",
            ""]


def bench_distillation(teacher, data, args, out: list[str]) -> None:
    spec = f"mlp:784-{args.student}-10"
    plain = hwsim.build_model(spec, (784,), 10, seed=args.seed)
    m_plain = hwsim.train(plain, data, hwsim.Precision(), epochs=args.epochs, batch=args.batch,
                          lr=args.student_lr, seed=args.seed, progress=False)
    student = hwsim.build_model(spec, (784,), 10, seed=args.seed)
    m_dist = distill(student, teacher, data, epochs=args.epochs, batch=args.batch, lr=args.student_lr,
                     temperature=args.temperature, alpha=0.9, seed=args.seed)
    t_acc = hwsim.evaluate(teacher, data.X_test, data.y_test)["accuracy"]
    out += [f"## 5. Distillation (Hinton et al. 2015; T = {args.temperature:g}, α = 0.9, {args.epochs} "
            f"epochs; both students: same init, Adam lr {args.student_lr:g} constant)", "",
            "| model | test accuracy % | " + " | ".join(f"{d} latency / energy" for d in DEVICES) + " |",
            "|---|---|" + "---|" * len(DEVICES),
            f"| teacher {LENET} | {100 * t_acc:.2f} | {_cost_cells(_cost(teacher))} |",
            f"| student {spec}, hard labels | {100 * m_plain['test_accuracy']:.2f} | "
            f"{_cost_cells(_cost(plain))} |",
            f"| student {spec}, distilled | {100 * m_dist['test_accuracy']:.2f} | "
            f"{_cost_cells(_cost(student))} |", ""]


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _row_costs(args, text: str) -> dict[str, dict[str, dict]]:
    """{section number: {first cell of a table row: cost}} of every costed row, with the current model."""
    spec = f"mlp:784-{args.hidden}-{args.hidden}-10"
    one = {}
    for label, name, params, _, _ in SCHEME_ROWS:
        scheme = get_scheme(name, **params)
        model = scheme.build_model(spec, (784,), 10, seed=args.seed)
        prec = getattr(scheme, "workload_precision", scheme.precision)(args.seed)
        model.set_precision(scheme.precision(args.seed))
        one[label] = _cost(model, prec)
    base = hwsim.build_model(LENET, (784,), 10, seed=args.seed)
    ptq = {"32 (float)": _cost(base)}
    for bits in PTQ_BITS[1:]:
        q = post_training_quantize(base, bits)[0]
        ptq[str(bits)] = _cost(q, hwsim.Precision.from_flags(weight=f"s{bits}.{bits - 1}"))
    stored = {}  # layer -> (weights, kept %, bytes P+Q+H) from the deep-compression table
    for line in text.splitlines():
        c = _cells(line) if line.startswith("| dense") else []
        if len(c) == 11:
            stored[c[0]] = (int(c[1]), float(c[2].split()[0]), int(c[9]))
    ops = []
    for op in hwsim.workload(base, batch=1):
        layer = op.name.split("/")[0]
        if isinstance(op, devices.MatMul) and layer in stored:
            w, kept, nbytes = stored[layer]
            op = dataclasses.replace(op, b_bits=max(1, math.ceil(8 * nbytes / w)), sparsity=1 - kept / 100)
        ops.append(op)
    deep = {"float baseline": _cost(base),
            "decoded from the stored bytes": _cost(base, wl=devices.Workload(ops))}
    widths = next(_cells(line)[1] for line in text.splitlines() if line.startswith("| dead neurons removed"))
    kept = [int(x) for x in widths.split("-")]
    lasso = {"trained with group lasso": _cost(base),
             "dead neurons removed (norm ≤ 1e-3)": _cost(hwsim.build_model(
                 "mlp:784-" + "-".join(map(str, kept[1:])), (784,), 10)),
             f"… and the {784 - kept[0]} unused inputs dropped (cost only)": _cost(hwsim.build_model(
                 "mlp:" + "-".join(map(str, kept)), (kept[0],), 10))}
    student = _cost(hwsim.build_model(f"mlp:784-{args.student}-10", (784,), 10, seed=args.seed))
    distil = {f"teacher {LENET}": _cost(base), f"student mlp:784-{args.student}-10, hard labels": student,
              f"student mlp:784-{args.student}-10, distilled": student}
    return {"1": one, "2": ptq, "3": deep, "4": lasso, "5": distil}


def only_costs(args) -> None:
    """Rewrite the device-cost cells of the existing ``args.out`` (every other cell, line and figure as it
    is) and put a dated note under each refreshed section."""
    path = Path(args.out)
    text = path.read_text()
    since = cost_refresh.measured_on(path)
    costs = _row_costs(args, text)
    lines, section, last_hit = cost_refresh.strip_notes(text).split("\n"), None, {}
    for i, line in enumerate(lines):
        if line.startswith("## "):
            section = line[3:].split(".")[0]
        rows = costs.get(section, {})
        first = _cells(line)[0] if line.startswith("| ") else None
        label = next((k for k in rows if first == k or (first or "").startswith(k + " (")), None)
        if label is not None:
            c = _cells(line)
            lines[i] = "| " + " | ".join(c[:len(c) - len(DEVICES)]) + f" | {_cost_cells(rows[label])} |"
            last_hit[section] = i
    for i in sorted(last_hit.values(), reverse=True):   # the note under each refreshed section's last table
        while i + 1 < len(lines) and lines[i + 1].startswith("|"):
            i += 1
        lines[i + 1:i + 1] = ["", cost_refresh.note("python benchmarks/bench_schemes.py --only-costs", since,
                                                     " (and earlier cost-model changes since this run)")]
    path.write_text("\n".join(lines))
    print(f"rewrote the device costs of {path}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/mnist"))
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam lr of the float/compression runs")
    ap.add_argument("--prune-epochs", type=int, default=1)
    ap.add_argument("--share-bits", type=int, default=6)
    ap.add_argument("--gl-lam", type=float, default=1e-3)
    ap.add_argument("--gl-lr", type=float, default=0.1, help="SGD lr of the group-lasso run")
    ap.add_argument("--student", type=int, default=32)
    ap.add_argument("--student-lr", type=float, default=3e-3)
    ap.add_argument("--temperature", type=float, default=4.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sections", default="schemes,ptq,compression,grouplasso,distill")
    ap.add_argument("--out", default="reports/benchmarks/schemes.md")
    ap.add_argument("--only-costs", action="store_true",
                    help="recompute only the device-cost cells of the existing --out report (no training)")
    args = ap.parse_args(argv)
    if args.only_costs:
        only_costs(args)
        return
    sections = set(args.sections.split(","))
    data = hwsim.load_data(f"mnist:{args.data}", split=8000, flatten=True)
    t0 = time.perf_counter()
    out = ["# Training schemes and compression on MNIST", "",
           "Command: `python " + " ".join(["benchmarks/bench_schemes.py", *sys.argv[1:]]) + "`", "",
           f"Data: MNIST t10k, first {len(data.X_train)} images train, last {len(data.X_test)} test "
           "(the papers trained on 60,000 images: compare orderings and gaps, not absolute errors). "
           "Latency / energy: one inference (batch 1) from `hwsim.workload` + `devices.estimate`.", ""]
    if "schemes" in sections:
        bench_schemes(data, args, out)
    base = None
    if sections & {"ptq", "compression", "distill"}:
        base = hwsim.build_model(LENET, (784,), 10, seed=args.seed)
        _train(base, data, hwsim.Precision(), args.epochs, args.batch, args.lr, args.seed)
    if "ptq" in sections:
        bench_ptq(base, data, out)
    if "compression" in sections:
        bench_deep_compression(base, data, args, out)
    if "grouplasso" in sections:
        bench_group_lasso(data, args, out)
    if "distill" in sections:
        bench_distillation(base, data, args, out)
    out += ["Sources of the published numbers: [L] Lin, Courbariaux, Memisevic, Bengio 2016 (ICLR), Table 1; "
            "[C] Courbariaux, Bengio, David 2015 (NeurIPS), Table 2; [B] Courbariaux, Hubara et al. 2016, "
            "arXiv:1602.02830, Table 1; [T] Li, Zhang, Liu 2016, arXiv:1605.04711; PTQ seed table as given "
            "in the project issue; Han, Mao, Dally 2016 (ICLR), Table 2 (LeNet-300-100).", "",
            f"Total wall time: {time.perf_counter() - t0:.0f} s on this machine.", ""]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(out))
    print("\n".join(out))


if __name__ == "__main__":
    main()
