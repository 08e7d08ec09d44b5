"""The fixed-point format ``Fixed(word, frac, signed)``: a raw integer scaled by ``2**-frac``."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ._validate import check_int

#: Largest word length: raw values and their sums of two stay inside int64.
MAX_WORD = 62
#: Allowed range of ``frac`` (negative, or larger than ``word``, are legal scale formats).
MIN_FRAC, MAX_FRAC = -64, 64

_SIGNED_UNSIGNED = re.compile(r"^([su])(\d+)\.(-?\d+)$")
_ARM_Q = re.compile(r"^(u?q)(\d+)\.(\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Fixed:
    """A binary fixed-point format.

    A value is ``raw * 2**-frac`` with ``raw`` an integer of ``word`` bits: two's complement
    ``[-2**(word-1), 2**(word-1) - 1]`` when ``signed``, else ``[0, 2**word - 1]``.
    ``1 <= word <= 62`` and ``-64 <= frac <= 64``; ``frac < 0`` or ``frac > word`` are legal
    (pure scale formats). ``str(Fixed(16, 8)) == "s16.8"``.
    """

    word: int
    frac: int
    signed: bool = True

    def __post_init__(self) -> None:
        check_int(self.word, "word", 1, MAX_WORD)
        check_int(self.frac, "frac", MIN_FRAC, MAX_FRAC)
        if not isinstance(self.signed, bool):
            raise TypeError(f"signed must be a bool, got {self.signed!r}")

    @classmethod
    def parse(cls, text: str) -> Fixed:
        """Parse ``"s16.8"`` / ``"u8.8"`` (word.frac) or ARM ``"Q7.8"`` / ``"UQ8.8"``.

        ARM ``Qm.n`` is signed with ``m`` integer and ``n`` fraction bits, word ``m + n + 1``;
        ``UQm.n`` is unsigned with word ``m + n``.
        """
        if not isinstance(text, str):
            raise TypeError(f"format text must be a str, got {type(text).__name__}")
        s = text.strip()
        m = _SIGNED_UNSIGNED.match(s)
        if m:
            return cls(int(m.group(2)), int(m.group(3)), m.group(1) == "s")
        m = _ARM_Q.match(s)
        if m:
            whole, frac = int(m.group(2)), int(m.group(3))
            if m.group(1).lower() == "q":
                return cls(whole + frac + 1, frac, True)
            return cls(whole + frac, frac, False)
        raise ValueError(
            f"cannot parse fixed-point format {text!r}: expected 's<word>.<frac>', "
            "'u<word>.<frac>', ARM 'Q<int>.<frac>' or 'UQ<int>.<frac>'"
        )

    @property
    def step(self) -> float:
        """Value of one least-significant bit, ``2**-frac``."""
        return 2.0 ** -self.frac

    @property
    def raw_min(self) -> int:
        """Smallest raw integer."""
        return -(1 << (self.word - 1)) if self.signed else 0

    @property
    def raw_max(self) -> int:
        """Largest raw integer."""
        return (1 << (self.word - 1)) - 1 if self.signed else (1 << self.word) - 1

    @property
    def min(self) -> float:
        """Smallest representable value (exact as a float64 when ``word <= 53``)."""
        return float(self.raw_min) * self.step

    @property
    def max(self) -> float:
        """Largest representable value (exact as a float64 when ``word <= 53``)."""
        return float(self.raw_max) * self.step

    def __str__(self) -> str:
        return f"{'s' if self.signed else 'u'}{self.word}.{self.frac}"
