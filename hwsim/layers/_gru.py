"""Gated recurrent units on sequences ``x`` (N, T, in) -> states (N, T, H), full BPTT over the T steps.

`GRU` is the standard unit (Chung et al. 2014; seed 001 eqs. 4.1–4.4), `ConditionalGRU` the seed's
conditional variant (001 §4.2–4.4) whose update gate is exactly zero for most units, so their state is
copied forward without computing the reset gate or the proposal; with block gating the skipped work is
skipped for real. Layout ``x W`` (weights (in, out)); gate blocks of ``W``/``U``/``b`` are concatenated
along the output axis. Truncated BPTT: with ``carry = True`` (set by the sequence trainer) the last
state of a call is the initial state of the next call (no gradient flows across calls);
`reset_state` zeroes it.

Precision (as `Dense`): the input through ``activation``, ``W``, ``U``, biases through ``weight``,
every new state through ``activation`` (straight-through in backward), the incoming error through
``error``, parameter gradients (of the mean loss over the N·T positions) through ``grad``; updates
through ``update`` by `Layer.commit`.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .._xp import get_array_module
from ._base import Layer, init_rng


def _sigmoid(x):
    xp = get_array_module(x)
    return 0.5 * (1 + xp.tanh(0.5 * x))


def _glorot(rng, n_in: int, n_out: int, dtype):
    a = math.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-a, a, (n_in, n_out)).astype(dtype)


def _orthogonal(rng, n: int, dtype):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * np.sign(np.diag(r))).astype(dtype)


class _Recurrent(Layer):
    """State carrying, quantized operands and the shared input projection of both units."""

    def _init_state(self, in_features: int, hidden: int, dtype) -> None:
        if int(in_features) < 1 or int(hidden) < 1:
            raise ValueError(f"{type(self).__name__} needs in_features, hidden >= 1, got {in_features}, "
                             f"{hidden}")
        self.in_features, self.hidden = int(in_features), int(hidden)
        self.carry = False
        self.state = None

    def reset_state(self) -> None:
        """Forget the carried state (the next call starts from zeros)."""
        self.state = None

    def output_shape(self, input_shape: tuple) -> tuple:
        if tuple(input_shape) != (self.in_features,):
            raise ValueError(f"{type(self).__name__}({self.in_features}, {self.hidden}) got per-step input "
                             f"shape {tuple(input_shape)}")
        return (self.hidden,)

    def _h0(self, x):
        xp = get_array_module(x)
        n = x.shape[0]
        if self.carry and self.state is not None and self.state.shape == (n, self.hidden):
            return self.state
        return xp.zeros((n, self.hidden), dtype=x.dtype)

    def _inputs(self, x):
        """Quantized x (N, T, in), W, U, b and the input projection A = x W + b (N, T, width)."""
        if x.ndim != 3 or x.shape[2] != self.in_features:
            raise ValueError(f"{self.name}: expected input (N, T, {self.in_features}), got {tuple(x.shape)}")
        if self.quantize_input:
            x = self._q("activation", x, 0)
        w, u, b = self._q("weight", self.W, 0), self._q("weight", self.U, 1), self._q("weight", self.b, 2)
        n, t, d = x.shape
        a = (x.reshape(n * t, d) @ w + b).reshape(n, t, -1)
        return x, w, u, a

    def _finish_backward(self, x, w, da, grads: dict):
        """dW, db from the input projection's error ``da``; quantized mean-loss gradients; dx."""
        n, t, d = x.shape
        da2 = da.reshape(n * t, -1)
        scale = 1.0 / (n * t)
        grads["W"] = x.reshape(n * t, d).T @ da2
        grads["b"] = da2.sum(axis=0)
        for i, (name, g) in enumerate(grads.items()):
            g = (g * scale).astype(self.W.dtype, copy=False)
            setattr(self, "d" + name, self._q("grad", g, i))
        return (da2 @ w.T).reshape(n, t, d)

    def _step_out(self, h):
        return self._q("activation", h, 1)

    def _q(self, role: str, x, slot: int):
        """``x`` through ``role``'s quantizer, kept in the parameter dtype (BLAS needs one dtype)."""
        y = self.quantize(role, x, slot)
        return y if y.dtype == self.W.dtype else y.astype(self.W.dtype)


class GRU(_Recurrent):
    """``z = σ(x W_z + h U_z + b_z)``, ``r = σ(x W_r + h U_r + b_r)``,
    ``ĥ = tanh(x W_h + (r ⊙ h) U_h + b_h)``, ``h' = (1 − z) ⊙ h + z ⊙ ĥ``.

    Parameters ``W`` (in, 3H), ``U`` (H, 3H), ``b`` (3H), blocks ordered [z | r | h]; init: Glorot
    uniform ``W`` per gate, orthogonal ``U`` per gate, zero ``b`` (the seed's setup, 001:763–780).
    """

    def __init__(self, in_features: int, hidden: int, *, seed=0, dtype=np.float32):
        super().__init__()
        self._init_state(in_features, hidden, dtype)
        self.name = "gru"
        rng, H = init_rng(seed), self.hidden
        self.W = np.concatenate([_glorot(rng, self.in_features, H, dtype) for _ in range(3)], axis=1)
        self.U = np.concatenate([_orthogonal(rng, H, dtype) for _ in range(3)], axis=1)
        self.b = np.zeros(3 * H, dtype=dtype)
        self.dW, self.dU, self.db = np.zeros_like(self.W), np.zeros_like(self.U), np.zeros_like(self.b)

    def params(self) -> dict:
        return {"W": self.W, "U": self.U, "b": self.b}

    def grads(self) -> dict:
        return {"W": self.dW, "U": self.dU, "b": self.db}

    def forward(self, x, *, training: bool = False):
        x, w, u, a = self._inputs(x)
        xp, H = get_array_module(x), self.hidden
        u_zr, u_h = xp.ascontiguousarray(u[:, :2 * H]), xp.ascontiguousarray(u[:, 2 * H:])
        h = self._h0(x)
        out = xp.empty((x.shape[0], x.shape[1], H), dtype=x.dtype)
        steps = []
        for t in range(x.shape[1]):
            zr = _sigmoid(a[:, t, :2 * H] + h @ u_zr)
            z, r = zr[:, :H], zr[:, H:]
            rh = r * h
            c = xp.tanh(a[:, t, 2 * H:] + rh @ u_h)
            hn = self._step_out(h + z * (c - h))
            if training:
                steps.append((h, z, r, rh, c))
            out[:, t] = h = hn
        if self.carry:
            self.state = h
        if training:
            self._cache = (x, w, u_zr, u_h, steps)
        return out

    def backward(self, dy):
        x, w, u_zr, u_h, steps = self._cache
        dy = self._q("error", dy, 0)
        xp, H = get_array_module(dy), self.hidden
        da = xp.empty((x.shape[0], x.shape[1], 3 * H), dtype=dy.dtype)
        du_zr, du_h = xp.zeros_like(u_zr), xp.zeros_like(u_h)
        dh = xp.zeros_like(dy[:, 0])
        for t in reversed(range(len(steps))):
            h, z, r, rh, c = steps[t]
            dh = dh + dy[:, t]
            dz, dc, dhp = dh * (c - h), dh * z, dh * (1 - z)
            dac = dc * (1 - c * c)
            drh = dac @ u_h.T
            du_h += rh.T @ dac
            dr = drh * h
            dhp += drh * r
            dzr = xp.concatenate([dz * z * (1 - z), dr * r * (1 - r)], axis=1)
            dhp += dzr @ u_zr.T
            du_zr += h.T @ dzr
            da[:, t, :2 * H] = dzr
            da[:, t, 2 * H:] = dac
            dh = dhp
        grads = {"U": xp.concatenate([du_zr, du_h], axis=1)}
        return self._finish_backward(x, w, da, grads)

    # ------------------------------------------------------------------ cost (one time step)
    def workload_forward(self, b, label: str, x_shape: tuple, y_shape: tuple, training: bool) -> None:
        """One time step of ``B`` streams: input and recurrent products, gates (4 ops per sigmoid /
        tanh element), state update (3 ops per element)."""
        B, d, H = b.B, self.in_features, self.hidden
        b.gemm(f"{label}/input", B, d, 3 * H, "activation", "weight", "acc")
        b.gemm(f"{label}/recurrent_zr", B, H, 2 * H, "activation", "weight", "acc")
        b.gemm(f"{label}/recurrent_h", B, H, H, "activation", "weight", "acc")
        b.ew(f"{label}/gates", 3 * B * H, "acc", 4)
        b.ew(f"{label}/state_update", B * H, "activation", 3, inputs=3)

    def workload_backward(self, b, label: str, x_shape: tuple, y_shape: tuple, first: bool) -> None:
        B, d, H = b.B, self.in_features, self.hidden
        b.ew(f"{label}/bwd_gates", 3 * B * H, "error", 6, op="mac", inputs=3)
        b.gemm(f"{label}/error_recurrent", B, 3 * H, H, "error", "weight", "error")
        b.gemm(f"{label}/grad_recurrent", H, B, 3 * H, "activation", "error", "grad")
        if not first:
            b.gemm(f"{label}/error_input", B, 3 * H, d, "error", "weight", "error")
        b.gemm(f"{label}/grad_input", d, B, 3 * H, "activation", "error", "grad")


GATES = ("full", "rank", "block")


class ConditionalGRU(_Recurrent):
    """The seed's conditional GRU (001 eqs. 4.5–4.11):

    ``r = σ(x W_r + h U_r + b_r)``, ``ĥ = tanh(x W_h + r ⊙ (h U_h) + b_h)`` (reset gate outside U_h),
    ``h' = (1 − z) ⊙ h + z ⊙ ĥ``, ``z = cliptanh(BN(v) + s)`` with ``cliptanh(y) = tanh(y)`` for
    y > 0 else 0 and ``BN(v) = (v − μ) / sqrt(σ² + eps)`` (per unit; minibatch statistics at each
    step in training, running averages with ``momentum`` in inference; no affine parameters).

    **Sign convention: more negative ``s`` → sparser z** (at s = 0 about half of the normalised
    gate is ≤ 0; the seed's printed ``BN − s`` contradicts its own text, see
    shared/reference/seed-systems.md §8). Gate pre-activation ``v``:

    - ``gate="full"``: ``v = x W_z + h U_z + b_z`` (H units);
    - ``gate="rank"`` (unstructured, rank ``r``): ``v = relu(x W_z + h U_z + b_z) W_o + b_o``,
      W_z (in, r), U_z (H, r), W_o (r, H) — eqs. 4.8–4.9 with f = ReLU;
    - ``gate="block"``: ``v = x W_z + h U_z + b_z`` with ``g`` gate units, each copied to a block
      of ``H / g`` consecutive state units (eqs. 4.10–4.11: the fixed replication matrix, b = 0;
      f = identity, since the normalisation follows directly).

    With ``gate="block"`` and ``skip=True`` each step computes the reset gate and proposal of a
    block only for the examples whose gate for that block is non-zero: per block, the rows of
    those examples are gathered and multiplied by the block's columns of ``[U_r | U_h]`` (one BLAS
    product per block and step, forward and backward, the seed's Fig. 4.4); skipped state units
    are copied. The input projection ``x W`` is computed densely for all units (one product for all
    steps). ``skip=False`` runs the same model densely (the speed baseline). Attributes:
    ``last_sparsity`` (fraction of exactly-zero z in the latest call), ``sparsity`` (cumulative
    since `reset_sparsity`).
    """

    def __init__(self, in_features: int, hidden: int, *, gate: str = "block", s: float = 0.0,
                 rank: int = 16, blocks: int = 16, skip: bool = True, eps: float = 1e-5,
                 momentum: float = 0.1, seed=0, dtype=np.float32):
        super().__init__()
        self._init_state(in_features, hidden, dtype)
        if gate not in GATES:
            raise ValueError(f"ConditionalGRU gate must be one of {', '.join(GATES)}, got {gate!r}")
        H = self.hidden
        if gate == "block" and not (1 <= int(blocks) <= H and H % int(blocks) == 0):
            raise ValueError(f"ConditionalGRU blocks (gate dimension) must divide hidden={H}, got {blocks!r}")
        if gate == "rank" and not 1 <= int(rank) <= H:
            raise ValueError(f"ConditionalGRU rank must be in [1, {H}], got {rank!r}")
        if not math.isfinite(float(s)):
            raise ValueError(f"ConditionalGRU s must be finite, got {s!r}")
        self.name = "cgru"
        self.gate, self.s, self.skip = gate, float(s), bool(skip) and gate == "block"
        self.rank, self.blocks = int(rank), int(blocks)
        self.eps, self.momentum = float(eps), float(momentum)
        self.G = {"full": H, "rank": self.rank, "block": self.blocks}[gate]
        rng = init_rng(seed)
        self.W = np.concatenate([_glorot(rng, self.in_features, n, dtype) for n in (self.G, H, H)], axis=1)
        u_g = _orthogonal(rng, H, dtype)[:, :self.G]
        self.U = np.concatenate([u_g, _orthogonal(rng, H, dtype), _orthogonal(rng, H, dtype)], axis=1)
        self.b = np.zeros(self.G + 2 * H, dtype=dtype)
        if gate == "rank":
            self.Wo = _glorot(rng, self.rank, H, dtype)
            self.bo = np.zeros(H, dtype=dtype)
        n_bn = self.blocks if gate == "block" else H
        self.running_mean = np.zeros(n_bn, dtype=dtype)
        self.running_var = np.ones(n_bn, dtype=dtype)
        for name, p in self.params().items():
            setattr(self, "d" + name, np.zeros_like(p))
        self.last_sparsity = math.nan
        self.reset_sparsity()

    def params(self) -> dict:
        p = {"W": self.W, "U": self.U, "b": self.b}
        if self.gate == "rank":
            p.update(Wo=self.Wo, bo=self.bo)
        return p

    def grads(self) -> dict:
        return {name: getattr(self, "d" + name) for name in self.params()}

    def buffers(self) -> dict:
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def reset_sparsity(self) -> None:
        self._zeros, self._gates = 0, 0

    @property
    def sparsity(self) -> float:
        """Cumulative fraction of exactly-zero update-gate values since `reset_sparsity` (NaN before)."""
        return self._zeros / self._gates if self._gates else math.nan

    # ------------------------------------------------------------------ the gate
    def _gate(self, pre, training: bool, wo, bo):
        """(z (N, H), cache) from the gate pre-activation ``pre`` (N, G)."""
        xp = get_array_module(pre)
        u = None
        if self.gate == "rank":
            u = xp.maximum(pre, 0)
            v = u @ wo + bo
        else:
            v = pre
        if training:
            mu, var = v.mean(axis=0), v.var(axis=0)
            m = self.momentum
            self.running_mean = ((1 - m) * self.running_mean + m * mu).astype(self.running_mean.dtype)
            n = v.shape[0]
            unbiased = var * (n / (n - 1)) if n > 1 else var
            self.running_var = ((1 - m) * self.running_var + m * unbiased).astype(self.running_var.dtype)
        else:
            mu, var = self.running_mean, self.running_var
        std = xp.sqrt(var + self.eps)
        xh = (v - mu) / std
        zp = xh + v.dtype.type(self.s)
        zq = xp.where(zp > 0, xp.tanh(zp), 0).astype(v.dtype, copy=False)
        z = xp.repeat(zq, self.hidden // self.blocks, axis=1) if self.gate == "block" else zq
        return z, (u, xh, std, zp, zq)

    def _gate_backward(self, dz, cache, wo):
        """d(pre-activation) (N, G) from dL/dz (N, H) (training-mode normalisation); ``(dpre, dWo, dbo)``."""
        u, xh, std, zp, zq = cache
        if self.gate == "block":
            dz = dz.reshape(dz.shape[0], self.blocks, -1).sum(axis=2)
        dzp = dz * (1 - zq * zq) * (zp > 0)
        dv = (dzp - dzp.mean(axis=0) - xh * (dzp * xh).mean(axis=0)) / std
        if self.gate != "rank":
            return dv, None, None
        return (dv @ wo.T) * (u > 0), u.T @ dv, dv.sum(axis=0)

    # ------------------------------------------------------------------ passes
    def _block_weights(self, uc):
        """(g, H, 2·bs) contiguous: block j's columns of U_r and U_h side by side."""
        xp, H, g = get_array_module(uc), self.hidden, self.blocks
        bs = H // g
        ur = uc[:, :H].reshape(H, g, bs).transpose(1, 0, 2)
        uh = uc[:, H:].reshape(H, g, bs).transpose(1, 0, 2)
        return xp.ascontiguousarray(xp.concatenate([ur, uh], axis=2))

    def forward(self, x, *, training: bool = False):
        x, w, u, a = self._inputs(x)
        xp, H, G = get_array_module(x), self.hidden, self.G
        wo = bo = None
        if self.gate == "rank":
            wo, bo = self._q("weight", self.Wo, 3), self._q("weight", self.bo, 4)
        u_g, u_c = xp.ascontiguousarray(u[:, :G]), xp.ascontiguousarray(u[:, G:])
        u_blk = self._block_weights(u_c) if self.skip else None
        bs = H // self.blocks
        h = self._h0(x)
        n, T = x.shape[0], x.shape[1]
        out = xp.empty((n, T, H), dtype=x.dtype)
        steps, zeros = [], 0
        for t in range(T):
            z, gcache = self._gate(a[:, t, :G] + h @ u_g, training, wo, bo)
            zeros += int((z == 0).sum())
            if self.skip:
                zq = gcache[4]
                r, q, c = (xp.zeros((n, H), dtype=x.dtype) for _ in range(3))
                rows = []
                for j in range(self.blocks):
                    idx = xp.nonzero(zq[:, j] > 0)[0]
                    rows.append(idx)
                    if len(idx) == 0:
                        continue
                    cols = slice(j * bs, (j + 1) * bs)
                    p = h[idx] @ u_blk[j]
                    rj = _sigmoid(a[idx, t, G + j * bs:G + (j + 1) * bs] + p[:, :bs])
                    qj = p[:, bs:]
                    r[idx, cols], q[idx, cols] = rj, qj
                    c[idx, cols] = xp.tanh(a[idx, t, G + H + j * bs:G + H + (j + 1) * bs] + rj * qj)
            else:
                rows = None
                p = h @ u_c
                r = _sigmoid(a[:, t, G:G + H] + p[:, :H])
                q = p[:, H:]
                c = xp.tanh(a[:, t, G + H:] + r * q)
            hn = self._step_out(h + z * (c - h))
            if training:
                steps.append((h, z, gcache, r, q, c, rows))
            out[:, t] = h = hn
        self.last_sparsity = zeros / (n * T * H) if n * T else math.nan
        self._zeros += zeros
        self._gates += n * T * H
        if self.carry:
            self.state = h
        if training:
            self._cache = (x, w, u_g, u_c, u_blk, wo, steps)
        return out

    def backward(self, dy):
        x, w, u_g, u_c, u_blk, wo, steps = self._cache
        dy = self._q("error", dy, 0)
        xp, H, G = get_array_module(dy), self.hidden, self.G
        bs = H // self.blocks
        da = xp.empty((x.shape[0], x.shape[1], G + 2 * H), dtype=dy.dtype)
        du_g = xp.zeros_like(u_g)
        du_c = xp.zeros_like(u_c) if u_blk is None else None
        du_blk = xp.zeros_like(u_blk) if u_blk is not None else None
        dwo = dbo = None
        dh = xp.zeros_like(dy[:, 0])
        for t in reversed(range(len(steps))):
            h, z, gcache, r, q, c, rows = steps[t]
            dh = dh + dy[:, t]
            dz, dc, dhp = dh * (c - h), dh * z, dh * (1 - z)
            dac = dc * (1 - c * c)
            dar = dac * q * r * (1 - r)
            dq = dac * r
            if rows is None:
                dp = xp.concatenate([dar, dq], axis=1)
                dhp += dp @ u_c.T
                du_c += h.T @ dp
            else:
                for j, idx in enumerate(rows):
                    if len(idx) == 0:
                        continue
                    cols = slice(j * bs, (j + 1) * bs)
                    dp = xp.concatenate([dar[idx, cols], dq[idx, cols]], axis=1)
                    dhp[idx] += dp @ u_blk[j].T
                    du_blk[j] += h[idx].T @ dp
            dpre, dwo_t, dbo_t = self._gate_backward(dz, gcache, wo)
            if dwo_t is not None:
                dwo = dwo_t if dwo is None else dwo + dwo_t
                dbo = dbo_t if dbo is None else dbo + dbo_t
            dhp += dpre @ u_g.T
            du_g += h.T @ dpre
            da[:, t, :G] = dpre
            da[:, t, G:G + H] = dar
            da[:, t, G + H:] = dac
            dh = dhp
        if du_blk is not None:
            du_c = xp.concatenate([du_blk[:, :, :bs].transpose(1, 0, 2).reshape(H, H),
                                   du_blk[:, :, bs:].transpose(1, 0, 2).reshape(H, H)], axis=1)
        grads = {"U": xp.concatenate([du_g, du_c], axis=1)}
        if self.gate == "rank":
            grads["Wo"], grads["bo"] = dwo, dbo
        return self._finish_backward(x, w, da, grads)

    # ------------------------------------------------------------------ cost (one time step)
    def _active(self) -> float:
        if math.isnan(self.sparsity):
            warnings.warn(f"{self.name}: no measured gate sparsity yet (run a forward pass on data); "
                          f"costing all blocks active", stacklevel=4)
            return 1.0
        return 1.0 - self.sparsity

    def _candidate_products(self, b, label: str, fwd: bool) -> None:
        B, H = b.B, self.hidden
        if not self.skip:
            if fwd:
                b.gemm(f"{label}/recurrent_rh", B, H, 2 * H, "activation", "weight", "acc")
            else:
                b.gemm(f"{label}/error_rh", B, 2 * H, H, "error", "weight", "error")
                b.gemm(f"{label}/grad_rh", H, B, 2 * H, "activation", "error", "grad")
            return
        m = max(1, math.ceil(self._active() * B))
        bs = H // self.blocks
        for j in range(self.blocks):
            if fwd:
                b.gemm(f"{label}/block{j}", m, H, 2 * bs, "activation", "weight", "acc")
            else:
                b.gemm(f"{label}/error_block{j}", m, 2 * bs, H, "error", "weight", "error")
                b.gemm(f"{label}/grad_block{j}", H, m, 2 * bs, "activation", "error", "grad")

    def workload_forward(self, b, label: str, x_shape: tuple, y_shape: tuple, training: bool) -> None:
        """One time step of ``B`` streams: input product, gate product(s) and normalisation, then the
        reset/proposal product — dense, or with ``skip`` one product per block over the measured
        active fraction of the streams (``⌈(1 − sparsity)·B⌉`` rows) — and the elementwise update."""
        B, d, H, G = b.B, self.in_features, self.hidden, self.G
        b.gemm(f"{label}/input", B, d, G + 2 * H, "activation", "weight", "acc")
        b.gemm(f"{label}/recurrent_gate", B, H, G, "activation", "weight", "acc")
        if self.gate == "rank":
            b.gemm(f"{label}/gate_out", B, G, H, "acc", "weight", "acc")
        n_bn = self.blocks if self.gate == "block" else H
        b.ew(f"{label}/gate_norm", B * n_bn, "acc", 4 + 4, op="mac")
        self._candidate_products(b, label, True)
        b.ew(f"{label}/gates", 2 * B * H, "acc", 4)
        b.ew(f"{label}/state_update", B * H, "activation", 3, inputs=3)

    def workload_backward(self, b, label: str, x_shape: tuple, y_shape: tuple, first: bool) -> None:
        B, d, H, G = b.B, self.in_features, self.hidden, self.G
        b.ew(f"{label}/bwd_gates", 3 * B * H, "error", 6, op="mac", inputs=3)
        self._candidate_products(b, label, False)
        b.gemm(f"{label}/error_gate", B, G, H, "error", "weight", "error")
        b.gemm(f"{label}/grad_gate", H, B, G, "activation", "error", "grad")
        if not first:
            b.gemm(f"{label}/error_input", B, G + 2 * H, d, "error", "weight", "error")
        b.gemm(f"{label}/grad_input", d, B, G + 2 * H, "activation", "error", "grad")
