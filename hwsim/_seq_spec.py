"""``seq:`` model specs: a network written as its input and a comma-separated list of layer tokens.

Grammar::

    seq:IN,LAYER,LAYER,...
    IN     := N | CxHxW | HxW           input size (784) or shape (1x28x28), positive integers
    LAYER  := name | name(ARG,...,key=VALUE,...)
    ARG    := VALUE
    VALUE  := integer | float (1e-3) | true | false | word

Examples: ``seq:784,dense(256),relu,dense(10)`` (the same network, with the same initial weights for
the same seed, as ``mlp:784-256-10``), ``seq:1x28x28,conv(6,5,padding=2),relu,maxpool(2),flatten,
dense(10)``.

Layer families add their tokens with `register_layer_token` (this module imports no layer, so any
layer module may register itself). A token's builder receives a `LayerArgs`: the parsed arguments,
the input shape (batch axis excluded), the dtype and an initialisation seed; it reads its arguments
through `LayerArgs.positional` / `LayerArgs.keyword` (which check type and range), and the parser
then rejects any argument the builder did not read, naming it. Initialisation seeds are drawn in
order, one per builder that reads `LayerArgs.seed`, from ``numpy.random.SeedSequence(seed)``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["LayerArgs", "register_layer_token", "layer_tokens", "parse_seq", "seq_input_shape"]

_REQUIRED = object()
_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")
_INT = re.compile(r"[+-]?\d+\Z")


@dataclass(frozen=True)
class LayerToken:
    """A registered ``seq:`` token: ``build(args) -> Layer | list[Layer]`` and its usage text."""

    name: str
    build: Callable[["LayerArgs"], Any]
    usage: str


_TOKENS: dict[str, LayerToken] = {}


def register_layer_token(name: str, build: Callable[["LayerArgs"], Any], usage: str) -> None:
    """Make ``name`` a ``seq:`` layer token (``usage`` is shown in errors, e.g. ``"dense(OUT)"``).

    Registering the same name twice with a different builder is an error (families must not shadow
    each other)."""
    if not _NAME.match(name):
        raise ValueError(f"seq token name {name!r}: lower-case letters, digits and '_' only")
    old = _TOKENS.get(name)
    if old is not None and old.build is not build:
        raise ValueError(f"seq token {name!r} is already registered ({old.usage})")
    _TOKENS[name] = LayerToken(name, build, usage)


def layer_tokens() -> dict[str, str]:
    """Registered token name -> usage text, sorted by name."""
    return {n: _TOKENS[n].usage for n in sorted(_TOKENS)}


class LayerArgs:
    """The arguments of one layer token, and what its builder needs to know about its position.

    ``in_shape`` is the layer's input shape without the batch axis; ``dtype`` the parameter dtype.
    """

    def __init__(self, spec: str, token: str, name: str, pos: list, kw: dict, in_shape: tuple,
                 dtype: Any, seeds: "_SeedStream") -> None:
        self.spec, self.token, self.name = spec, token, name
        self.in_shape, self.dtype = tuple(in_shape), dtype
        self._pos, self._kw, self._seeds = pos, kw, seeds
        self._used_pos: set[int] = set()
        self._used_kw: set[str] = set()

    # ------------------------------------------------------------------ values
    def positional(self, i: int, what: str, *, kind: type = int, default: Any = _REQUIRED,
                   lo: float | None = None, hi: float | None = None, choices: tuple | None = None) -> Any:
        """Positional argument ``i`` (named ``what`` in errors), or ``default`` when absent; a
        keyword of the same name is accepted too (``dense(out=10)``)."""
        self._used_pos.add(i)
        if what in self._kw:
            if i < len(self._pos):
                raise self.error(f"{what} given twice")
            return self.keyword(what, kind=kind, default=default, lo=lo, hi=hi, choices=choices)
        if i >= len(self._pos):
            if default is _REQUIRED:
                raise self.error(f"missing {what} (usage: {_TOKENS[self.name].usage})")
            return default
        return self._check(what, self._pos[i], kind, lo, hi, choices)

    def keyword(self, key: str, *, kind: type = int, default: Any = _REQUIRED, lo: float | None = None,
                hi: float | None = None, choices: tuple | None = None) -> Any:
        """Keyword argument ``key``, or ``default`` when absent."""
        self._used_kw.add(key)
        if key not in self._kw:
            if default is _REQUIRED:
                raise self.error(f"missing {key}= (usage: {_TOKENS[self.name].usage})")
            return default
        return self._check(key, self._kw[key], kind, lo, hi, choices)

    @property
    def seed(self) -> int:
        """The next initialisation seed (each read draws a new one)."""
        return self._seeds.next()

    @property
    def in_features(self) -> int:
        """The input width of a layer that needs flat input (error naming the token otherwise)."""
        if len(self.in_shape) != 1:
            raise self.error(f"needs a flat input, got shape {'x'.join(map(str, self.in_shape))}: "
                             f"put 'flatten' before it")
        return int(self.in_shape[0])

    def error(self, message: str) -> ValueError:
        """A ValueError naming this token and the spec."""
        return ValueError(f"bad layer token {self.token!r} in {self.spec!r}: {message}")

    def _check(self, what: str, v: Any, kind: type, lo: Any, hi: Any, choices: tuple | None) -> Any:
        if kind is bool:
            if not isinstance(v, bool):
                raise self.error(f"{what} must be true or false, got {v!r}")
            return v
        if kind is int and (isinstance(v, bool) or not isinstance(v, int)):
            raise self.error(f"{what} must be an integer, got {v!r}")
        if kind is float:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise self.error(f"{what} must be a finite number, got {v!r}")
            v = float(v)
        if kind is str:
            v = str(v)
        if choices is not None and v not in choices:
            raise self.error(f"{what} must be one of {', '.join(map(str, choices))}, got {v!r}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            rng = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
            raise self.error(f"{what} must be in {rng}, got {v!r}")
        return v

    def _unused(self) -> list[str]:
        extra = [repr(v) for i, v in enumerate(self._pos) if i not in self._used_pos]
        extra += [f"{k}=" for k in self._kw if k not in self._used_kw]
        return extra


class _SeedStream:
    def __init__(self, seed: int, n: int) -> None:
        self._words = np.random.SeedSequence(seed).generate_state(max(n, 1))
        self._i = 0

    def next(self) -> int:
        if self._i >= len(self._words):  # more seeded draws than tokens: extend (prefix-stable)
            self._words = np.random.SeedSequence(int(self._words[0])).generate_state(2 * len(self._words))
        w = int(self._words[self._i])
        self._i += 1
        return w


def _split_top(text: str, spec: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"bad model spec {spec!r}: unbalanced ')'")
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if depth:
        raise ValueError(f"bad model spec {spec!r}: unbalanced '('")
    parts.append("".join(cur).strip())
    return parts


def _value(text: str) -> Any:
    t = text.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    if _INT.match(t):
        return int(t)
    try:
        return float(t)
    except ValueError:
        return t


def _parse_token(token: str, spec: str) -> tuple[str, list, dict]:
    m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*", token, flags=re.S)
    if not m:
        raise ValueError(f"bad layer token {token!r} in {spec!r}: expected NAME or NAME(ARG,...,KEY=VALUE)")
    name, body = m.group(1).lower(), m.group(2)
    pos: list = []
    kw: dict = {}
    if body is not None and body.strip():
        for arg in _split_top(body, spec):
            if not arg:
                raise ValueError(f"bad layer token {token!r} in {spec!r}: empty argument")
            key, eq, val = arg.partition("=")
            if eq:
                key = key.strip().lower()
                if not _NAME.match(key):
                    raise ValueError(f"bad layer token {token!r} in {spec!r}: bad keyword {key!r}")
                if key in kw:
                    raise ValueError(f"bad layer token {token!r} in {spec!r}: {key}= given twice")
                kw[key] = _value(val)
            elif kw:
                raise ValueError(f"bad layer token {token!r} in {spec!r}: positional argument "
                                 f"{arg!r} after a keyword")
            else:
                pos.append(_value(arg))
    return name, pos, kw


def seq_input_shape(spec: str) -> tuple[int, ...]:
    """The IN part of a ``seq:`` spec as a shape (ValueError naming it when malformed)."""
    body = spec.split(":", 1)[1] if ":" in spec else spec
    first = _split_top(body, spec)[0]
    parts = first.lower().replace("×", "x").split("x")
    if not first or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"bad input token {first!r} in {spec!r}: expected the input size (784) or "
                         f"shape (1x28x28), positive integers joined by 'x'")
    return tuple(int(p) for p in parts)


def parse_seq(spec: str, seed: int = 0, dtype: Any = np.float32) -> tuple[tuple[int, ...], list]:
    """``(input shape, layers)`` of a ``seq:`` spec; ValueError naming a bad token and, for an unknown
    name, listing the registered ones."""
    if not spec.startswith("seq:"):
        raise ValueError(f"bad model spec {spec!r}: a seq spec starts with 'seq:'")
    in_shape = seq_input_shape(spec)
    tokens = _split_top(spec[4:], spec)[1:]
    if not tokens:
        raise ValueError(f"bad model spec {spec!r}: no layers after the input size "
                         f"(e.g. 'seq:784,dense(10)')")
    seeds = _SeedStream(seed, len(tokens))
    shape, layers = in_shape, []
    for token in tokens:
        if not token:
            raise ValueError(f"bad model spec {spec!r}: empty layer token")
        name, pos, kw = _parse_token(token, spec)
        entry = _TOKENS.get(name)
        if entry is None:
            raise ValueError(f"bad layer token {token!r} in {spec!r}: unknown layer {name!r}; valid layers: "
                             f"{', '.join(layer_tokens().values())}")
        args = LayerArgs(spec, token, name, pos, kw, shape, dtype, seeds)
        built = entry.build(args)
        extra = args._unused()
        if extra:
            raise args.error(f"unexpected argument(s) {', '.join(extra)} (usage: {entry.usage})")
        for layer in built if isinstance(built, list) else [built]:
            try:
                shape = tuple(layer.output_shape(shape))
            except ValueError as e:
                raise args.error(str(e)) from None
            layers.append(layer)
    return in_shape, layers
