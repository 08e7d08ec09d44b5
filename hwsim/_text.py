"""Character-level text data for recurrent models.

Specs (``load_text(spec)``, ``hwsim train --data SPEC``):

``text`` (default corpus)
    ``hwsim/data/corpus.txt``: 150,140 bytes of generated English-like text over 27 symbols
    (the alphabet is always these 27, text8-style), made by `hwsim._corpus_gen` (no third-party
    text; project licence, see ``hwsim/data/CORPUS_LICENSE.txt``).
``text:PATH``
    Any UTF-8 file; the alphabet is the set of distinct characters in it (sorted by code point).

The first ``1 - valid_fraction`` of the characters train, the rest validate (the seed's text8 protocol:
first 95 % / last 5 %). The metric is bits per character, the mean cross-entropy in bits.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["TextData", "load_text"]

_CORPUS = Path(__file__).with_name("data") / "corpus.txt"
#: The alphabet of the embedded corpus (text8's 27 symbols, some of which the corpus may not use).
TEXT8_ALPHABET = " abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class TextData:
    """Character codes (int64, indices into ``alphabet``) of the train and validation text."""

    train: np.ndarray
    valid: np.ndarray
    alphabet: str
    name: str

    @property
    def vocab(self) -> int:
        return len(self.alphabet)

    def to_dict(self) -> dict:
        return {"name": self.name, "n_train": len(self.train), "n_valid": len(self.valid),
                "vocab": self.vocab}


def _read_utf8(path: Path) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"text data file not found: {path} (expected a UTF-8 text file)")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start} "
                         f"is invalid); convert the file to UTF-8") from None


def load_text(spec: str = "text", *, valid_fraction: float = 0.05) -> TextData:
    """Load ``text`` (the embedded corpus) or ``text:PATH`` and split it (see the module docstring)."""
    if not isinstance(spec, str) or not (spec == "text" or spec.startswith("text:")):
        raise ValueError(f"unknown text data spec {spec!r}: expected 'text' or 'text:PATH'")
    if not 0.0 < float(valid_fraction) < 1.0:
        raise ValueError(f"valid_fraction must be in (0, 1), got {valid_fraction!r}")
    arg = spec[5:]
    if spec.startswith("text:") and not arg:
        raise ValueError("text data spec 'text:' needs a path: 'text:PATH'")
    path = Path(arg).expanduser() if arg else _CORPUS
    text = _read_utf8(path)
    alphabet = TEXT8_ALPHABET if not arg else "".join(sorted(set(text)))
    if len(alphabet) < 2:
        raise ValueError(f"{path}: a text needs at least 2 distinct characters, found {len(alphabet)}")
    codes = np.searchsorted(np.frombuffer(alphabet.encode("utf-32-le"), dtype=np.uint32),
                            np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)).astype(np.int64)
    n_valid = round(len(codes) * valid_fraction)
    if len(codes) - n_valid < 2 or n_valid < 2:
        raise ValueError(f"{path}: {len(codes)} characters is too short to split into train and "
                         f"validation text (at least {int(np.ceil(4 / valid_fraction))} needed)")
    return TextData(codes[:-n_valid], codes[-n_valid:], alphabet, spec)
