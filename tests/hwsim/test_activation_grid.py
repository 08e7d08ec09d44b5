"""Activations that map the activation grid into itself (`maps_grid`) pass an on-grid input's
grid on unquantized (`passes_grid`); the others quantize their output."""
from __future__ import annotations

import numpy as np
import pytest

from hwsim import Dense, Precision, Sequential
from hwsim._precision import parse_quantizer
from hwsim.layers import ACTIVATIONS, Activation
from hwsim.layers._activations import maps_grid

# Fixed (wide, narrow range, step 2, unsigned, wrap, stochastic), float and scheme grids.
GRIDS = ["s8.4", "s4.5", "s8.-1", "u8.4", "u4.5", "s8.4:nearest_even:wrap", "s6.3:stochastic", "e4m3",
         "fp16", "bf16", "binary", "ternary", "pow2[-8,0]", "pow2[-8,-1]", "pow2[1,3]"]


def on_grid(q, a):
    return bool(np.array_equal(q(a, seed=0, offset=0), a))


@pytest.mark.parametrize("grid", GRIDS)
def test_output_is_on_the_grid_exactly_when_maps_grid(grid):
    """For random on-grid inputs (and the grid's extremes, 0, ±1), f's output lies on the same grid
    if and only if `maps_grid` says so."""
    q = parse_quantizer(grid)
    rng = np.random.default_rng(0)
    raw = np.concatenate([rng.standard_normal(4000) * 2.0 ** rng.integers(-6, 9, 4000),
                          [-1e30, 1e30, 0.0, 1.0, -1.0]])
    x = q(raw, seed=1, offset=0)
    assert on_grid(q, x)
    for kind, f in ACTIVATIONS.items():
        y = f(np, x)[0]
        assert on_grid(q, y) == maps_grid(kind, q), (kind, grid)


def test_maps_grid_values():
    expect = {"s8.4": {"relu", "hard_tanh", "sign"}, "s4.5": {"relu", "hard_tanh"}, "s8.-1": {"relu"},
              "e4m3": {"relu", "hard_tanh", "sign"}, "binary": {"hard_tanh", "sign"},
              "twn": {"relu"}}  # per-tensor scale: 0 stays, ±1 need not be grid points
    for grid, kinds in expect.items():
        assert {k for k in ACTIVATIONS if maps_grid(k, parse_quantizer(grid))} == kinds, grid
    assert not any(maps_grid(k, None) for k in ACTIVATIONS)


@pytest.mark.parametrize("kind", sorted(ACTIVATIONS))
@pytest.mark.parametrize("grid", ["s8.4", "s8.-1"])
def test_passes_grid_in_a_model(kind, grid):
    """After a Dense (output on the activation grid) the activation passes the grid exactly when it
    maps it into itself; either way its output equals the quantized one and the next Dense needs
    no input quantization."""
    p = Precision.from_flags(weight="s8.6", activation=grid, seed=3)
    net = Sequential([Dense(5, 7, seed=1), Activation(kind), Dense(7, 2, seed=2)], (5,))
    net.set_precision(p)
    act = net.layers[1]
    assert act.passes_grid == maps_grid(kind, p.activation)
    assert not net.layers[2].quantize_input
    x = net.layers[0].forward(np.random.default_rng(4).standard_normal((8, 5)).astype(np.float32) * 4)
    y = act.forward(x)
    np.testing.assert_array_equal(y, act.quantize("activation", act._f(np, x)[0], 2))
    act.quantize_input = True  # an input off the grid: always quantized
    assert not act.passes_grid
