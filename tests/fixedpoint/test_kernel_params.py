"""The kernel parameters are packed and read by name: `Params` fields and the index constants of the
arrays that ``_fixed_numba.call_arrays`` packs. A reordered or renamed field must fail here."""
from __future__ import annotations

import numpy as np
import pytest

import fixedpoint as fxp
from fixedpoint import _fixed_numba as fn
from fixedpoint import _fixed_scalar as fs
from fixedpoint._modes import Rounding


def test_params_head_is_everything_before_the_stream_fields() -> None:
    assert fs.Params._fields[fs.N_HEAD:] == ("key", "counter0", "k", "kpow")
    assert fs.Params._fields[:2] == ("mode", "wrap")


@pytest.mark.parametrize("fmt", [fxp.Fixed(16, 8), fxp.Fixed(8, -3, signed=False), fxp.Fixed(60, 64)])
def test_head_and_format_scalars_are_built_by_field_name(fmt) -> None:
    want = dict(mode=int(Rounding.CEIL), wrap=True, scale=2.0**fmt.frac, modulus=2.0 ** (fmt.word - fmt.frac),
                inv_modulus=2.0 ** (fmt.frac - fmt.word), lo=float(fmt.raw_min), hi=float(fmt.raw_max + 1),
                raw_min=fmt.raw_min, raw_max=fmt.raw_max, mask=(1 << fmt.word) - 1, step=fmt.step)
    head = fs.call_head(int(Rounding.CEIL), True, fmt)
    assert dict(zip(fs.Params._fields, head)) == want
    assert len(head) == fs.N_HEAD
    scalars = dict(zip(fs.Params._fields[fs.Params._fields.index("scale"):], fs.format_scalars(fmt)))
    assert scalars == {name: value for name, value in want.items() if name not in ("mode", "wrap")}
    q = fxp.Quantizer(fmt, "ceil", "wrap")
    assert q._head == head


def _index_constants(prefix: str) -> dict[str, int]:
    return {name: value for name, value in vars(fn).items() if name.startswith(prefix) and name.isupper()}


@pytest.mark.parametrize(("names", "prefix"), [(fn.FUSED_CONSTANTS, "C_"), (fn.BLOCK_FLOATS, "F_"),
                                                (fn.BLOCK_INTS, "I_")])
def test_array_index_constants_match_their_field_names(names, prefix) -> None:
    assert _index_constants(prefix) == {prefix + name.upper(): i for i, name in enumerate(names)}


@pytest.mark.parametrize(("x_char", "out_dtype"), [("d", np.float64), ("f", np.float32), ("d", np.int64)])
def test_call_arrays_packs_by_name(x_char, out_dtype) -> None:
    fmt = fxp.Fixed(16, 8)
    head = fs.call_head(int(Rounding.STOCHASTIC), False, fmt)
    fast, c, c_round, fp, ip = fn.call_arrays(x_char, np.dtype(out_dtype), head, 7)
    assert fast
    assert c.dtype == (np.float32 if x_char == "f" and out_dtype == np.float32 else np.float64)
    assert (c[fn.C_SCALE], c[fn.C_LO], c[fn.C_TOP], c[fn.C_STEP]) == (256.0, -32768.0, 32767.0, 2.0**-8)
    assert (c[fn.C_WRAP_SIZE], c[fn.C_INV_WRAP_SIZE], c[fn.C_BIG]) == (2.0**16, 2.0**-16, 2.0**52)
    assert (c[fn.C_TINY], c[fn.C_KPOW]) == (0.0, 128.0)  # frac >= 0: nothing underflows
    assert (c_round[fn.C_LO], c_round[fn.C_TOP], c_round[fn.C_STEP]) == (
        -np.finfo(c.dtype).max, np.finfo(c.dtype).max, 1.0)
    assert fp[fn.F_UNIT] == (2.0**-8 if out_dtype == np.int64 else 1.0)
    assert (fp[fn.F_SCALE], fp[fn.F_MODULUS], fp[fn.F_INV_MODULUS]) == (256.0, 256.0, 1 / 256)
    assert (fp[fn.F_LO], fp[fn.F_HI], fp[fn.F_STEP]) == (-32768.0, 32768.0, 2.0**-8)
    assert (ip[fn.I_MODE], ip[fn.I_WRAP], ip[fn.I_RAW_MIN], ip[fn.I_RAW_MAX]) == (
        int(Rounding.STOCHASTIC), 0, -32768, 32767)
    assert (ip[fn.I_MASK], ip[fn.I_K], ip[fn.I_KPOW]) == (65535, 7, 128)
