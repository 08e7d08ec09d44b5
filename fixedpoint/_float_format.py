"""`FloatFormat`: an IEEE-style binary floating-point format of any small width.

A value with exponent code ``E`` (``exp`` bits) and stored mantissa ``M`` (``man`` bits) is

    normal     (E >= 1):  (-1)^s * 2^(E - bias) * (1 + M / 2^man)
    subnormal  (E == 0):  (-1)^s * 2^(1 - bias) * (M / 2^man)      (or +-0 only, subnormals=False)

so ``emin = 1 - bias`` is the exponent of the smallest normal number and the grid step in the
binade ``[2^e, 2^(e+1))`` is ``2^(max(e, emin) - man)``. What the top exponent code holds is
given by ``specials`` (the names follow ml_dtypes / the OCP FP8 and MX specifications):

- ``"ieee"``  (default): the all-ones exponent code is +-inf (M = 0) or NaN (M != 0).
  float16 = ``FloatFormat(5, 10)``, bfloat16 = ``FloatFormat(8, 7)``, float8_e5m2 = ``FloatFormat(5, 2)``.
- ``"fn"``: finite, no infinities; the all-ones exponent code holds normal numbers except the single
  all-ones pattern S.1..1.1..1, which is NaN. float8_e4m3fn = ``FloatFormat(4, 3, specials="fn")``
  (max 448).
- ``"fnuz"``: finite, unsigned zero: every code is a number except 1.0..0.0..0 (the would-be -0),
  which is NaN; there is no -0 (a result -0 becomes +0). The default bias of these formats is
  ``2^(exp-1)`` (one more than IEEE), as in ml_dtypes / Graphcore / AMD, so that the names mean what
  they mean elsewhere, bit for bit: ``"e4m3fnuz"`` = float8_e4m3fnuz = ``FloatFormat(4, 3,
  specials="fnuz")`` (bias 8, max 240), ``"e5m2fnuz"`` = float8_e5m2fnuz (bias 16, max 57,344);
  float8_e4m3b11fnuz = ``"e4m3b11fnuz"``.

Note that ``"e4m3"`` (IEEE-style: inf and NaN in the top exponent code, max 240) is ml_dtypes'
float8_e4m3, not OCP FP8 E4M3: that one is ``"e4m3fn"`` (alias ``"fp8_e4m3"``, max 448).
- ``"finite"``: every code is a finite number, no inf and no NaN (OCP MX FP4/FP6; ml_dtypes calls
  these float4_e2m1fn, float6_e2m3fn, float6_e3m2fn). FP4 E2M1 = ``FloatFormat(2, 1, specials="finite")``.

All arithmetic of the emulation is exact in float64, which bounds the formats: ``2 <= exp <= 11``,
``0 <= man <= 52``, and every value must be a float64 (``emax <= 1023`` and the smallest step
``2^(emin - man) >= 2^-1074``), which bounds ``bias``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

SPECIALS = ("ieee", "fn", "fnuz", "finite")
_SUFFIX = {"ieee": "", "fn": "fn", "fnuz": "fnuz", "finite": "fin"}
_PATTERN = re.compile(r"e(\d+)m(\d+)(?:b(-?\d+))?(fnuz|fn|fin)?(_ftz)?")
#: Short names accepted by `FloatFormat.parse` besides the ``e<E>m<M>[b<bias>][fn|fnuz|fin][_ftz]`` form.
ALIASES = {
    "fp64": "e11m52", "binary64": "e11m52", "fp32": "e8m23", "binary32": "e8m23",
    "fp16": "e5m10", "binary16": "e5m10", "half": "e5m10", "bf16": "e8m7", "bfloat16": "e8m7",
    "tf32": "e8m10", "fp8_e4m3": "e4m3fn", "fp8_e5m2": "e5m2", "fp6_e3m2": "e3m2fin",
    "fp6_e2m3": "e2m3fin", "fp4": "e2m1fin", "fp4_e2m1": "e2m1fin",
}


def _check_int(name: str, value: object, lo: int, hi: int,
               why: str = "(exact float64 emulation)") -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int in {lo}..{hi}, got {value!r}")
    if not lo <= int(value) <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi} {why}, got {value}")
    return int(value)


def _default_bias(exp: int, specials: str) -> int:
    """``2^(exp-1) - 1`` (IEEE), or ``2^(exp-1)`` for ``"fnuz"`` formats (ml_dtypes' float8_*fnuz)."""
    return 2 ** (exp - 1) - (0 if specials == "fnuz" else 1)


@dataclass(frozen=True)
class FloatFormat:
    """An immutable binary floating-point format (see the module docstring for the bit layout).

    ``exp``: exponent bits, 2..11. ``man``: stored mantissa (fraction) bits, 0..52.
    ``bias``: exponent bias, default ``2^(exp-1) - 1`` (``2^(exp-1)`` for ``specials="fnuz"``, the
    ml_dtypes convention). ``subnormals=False``: flush-to-zero format
    (results below the smallest normal become +-0 after rounding). ``specials``: ``"ieee"``,
    ``"fn"``, ``"fnuz"`` or ``"finite"`` (what the top exponent code and -0 mean).
    """

    exp: int
    man: int
    bias: int | None = None
    subnormals: bool = True
    specials: str = "ieee"
    # Derived constants (filled in by __post_init__).
    emin: int = field(init=False, repr=False, compare=False)
    emax: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        exp = _check_int("exp", self.exp, 2, 11)
        man = _check_int("man", self.man, 0, 52)
        if self.specials not in SPECIALS:
            raise ValueError(f"specials must be one of {SPECIALS}, got {self.specials!r}")
        if not isinstance(self.subnormals, (bool, np.bool_)):
            raise TypeError(f"subnormals must be a bool, got {self.subnormals!r}")
        default_bias = _default_bias(exp, self.specials)
        top_code = 2**exp - 1
        if self.specials == "ieee" or (self.specials == "fn" and man == 0):
            top_code -= 1  # the all-ones exponent holds no finite value
        # Valid biases keep every value a float64: top binade <= 1023, smallest step >= 2^-1074.
        bias = default_bias if self.bias is None else self.bias
        lo, hi = top_code - 1023, 1075 - man
        bias = _check_int("bias", bias, lo, hi, f"for exp={exp}, man={man}, "
                          f"specials={self.specials!r} (every value must be a float64)")
        object.__setattr__(self, "exp", exp)
        object.__setattr__(self, "man", man)
        object.__setattr__(self, "bias", bias)
        object.__setattr__(self, "subnormals", bool(self.subnormals))
        object.__setattr__(self, "emin", 1 - bias)
        object.__setattr__(self, "emax", top_code - bias)

    # ----------------------------------------------------------------- derived values
    @property
    def has_inf(self) -> bool:
        """True when the format encodes +-inf (``specials="ieee"``)."""
        return self.specials == "ieee"

    @property
    def has_nan(self) -> bool:
        """True when the format encodes a NaN (every ``specials`` except ``"finite"``)."""
        return self.specials != "finite"

    @property
    def has_neg_zero(self) -> bool:
        """True when -0 is a value (every ``specials`` except ``"fnuz"``)."""
        return self.specials != "fnuz"

    @property
    def max(self) -> float:
        """Largest finite value (exact float64)."""
        top_man = 2 ** (self.man + 1) - 1  # 1.11..1 as an integer significand
        if self.specials == "fn" and self.man > 0:
            top_man -= 1  # S.1..1.1..1 is NaN
        return float(np.ldexp(float(top_man), self.emax - self.man))

    @property
    def min(self) -> float:
        """Most negative finite value, ``-max``."""
        return -self.max

    @property
    def tiny(self) -> float:
        """Smallest positive normal value, ``2^emin``."""
        return float(np.ldexp(1.0, self.emin))

    @property
    def smallest(self) -> float:
        """Smallest positive value: ``2^(emin - man)`` with subnormals, else ``tiny``."""
        return float(np.ldexp(1.0, self.emin - self.man)) if self.subnormals else self.tiny

    @property
    def eps(self) -> float:
        """Gap between 1 and the next larger value, ``2^-man``."""
        return float(np.ldexp(1.0, -self.man))

    @property
    def bits(self) -> int:
        """Storage width in bits (sign + exponent + mantissa)."""
        return 1 + self.exp + self.man

    def fits(self, dtype: np.dtype) -> bool:
        """True when every value of the format is exactly representable in the float ``dtype``."""
        info = np.finfo(dtype)
        return (self.man <= info.nmant and self.emax <= info.maxexp - 1
                and self.emin - self.man >= info.minexp - info.nmant)

    # ----------------------------------------------------------------- names
    def __str__(self) -> str:
        bias = "" if self.bias == _default_bias(self.exp, self.specials) else f"b{self.bias}"
        ftz = "" if self.subnormals else "_ftz"
        return f"e{self.exp}m{self.man}{bias}{_SUFFIX[self.specials]}{ftz}"

    @classmethod
    def parse(cls, text: str) -> "FloatFormat":
        """Build a format from its name: ``"e4m3fn"``, ``"e5m2"``, ``"e4m3b8fnuz"``, ``"e5m10_ftz"``,
        or an alias in `ALIASES` (``"fp16"``, ``"bf16"``, ``"fp8_e4m3"``, ``"fp4"``, ...).

        ``str(FloatFormat.parse(s)) `` is the canonical name; ``parse(str(fmt)) == fmt``.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        key = text.strip().lower()
        match = _PATTERN.fullmatch(ALIASES.get(key, key))
        if match is None:
            raise ValueError(f"text: cannot parse {text!r} as a float format; expected "
                             f"'e<E>m<M>[b<bias>][fn|fnuz|fin][_ftz]' or one of {sorted(ALIASES)}")
        exp, man, bias, suffix, ftz = match.groups()
        specials = {"fn": "fn", "fnuz": "fnuz", "fin": "finite", None: "ieee"}[suffix]
        return cls(int(exp), int(man), None if bias is None else int(bias),
                   subnormals=ftz is None, specials=specials)


#: Named formats (IEEE 754 binary16/32, bfloat16, OCP FP8 E4M3/E5M2, OCP MX FP6/FP4).
FP16 = FloatFormat(5, 10)
BF16 = FloatFormat(8, 7)
FP8_E4M3 = FloatFormat(4, 3, specials="fn")
FP8_E5M2 = FloatFormat(5, 2)
FP6_E3M2 = FloatFormat(3, 2, specials="finite")
FP6_E2M3 = FloatFormat(2, 3, specials="finite")
FP4_E2M1 = FloatFormat(2, 1, specials="finite")
