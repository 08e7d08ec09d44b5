"""``seq:`` tokens of the conditional-computation layers (seed 001 ch. 3–4).

``estdense(OUT,rank=K[,every=N,threshold=T])``
    `EstimatedDense`: a Dense layer computing only the outputs a rank-K estimator predicts positive
    (follow it with ``relu``; use a plain ``dense`` for the output layer — no mask there).
``gru(H)``
    The standard GRU over a sequence (N, T, IN) -> (N, T, H).
``cgru(H[,gate=block|rank|full,blocks=G,rank=R,s=S,skip=true])``
    `ConditionalGRU` (default gate=block, blocks=16, s=0; more negative s -> sparser update gate).

A character-level model is then e.g. ``seq:27,cgru(256,blocks=16,s=-0.25),dense(27)``: IN is the
alphabet size (one-hot input per step), the last dense layer gives the logits of the next character
at every step (`hwsim.train_text`).
"""
from __future__ import annotations

from ._seq_spec import LayerArgs, register_layer_token
from .layers._estimated import EstimatedDense
from .layers._gru import GATES, GRU, ConditionalGRU


def _estdense(a: LayerArgs) -> EstimatedDense:
    n_in = a.in_features
    out = a.positional(0, "out", lo=1)
    rank = a.keyword("rank", lo=1, hi=min(n_in, out))
    return EstimatedDense(n_in, out, rank, every=a.keyword("every", default=0, lo=0),
                          threshold=a.keyword("threshold", kind=float, default=0.0), seed=a.seed,
                          dtype=a.dtype)


def _gru(a: LayerArgs) -> GRU:
    n_in = a.in_features
    return GRU(n_in, a.positional(0, "hidden", lo=1), seed=a.seed, dtype=a.dtype)


def _cgru(a: LayerArgs) -> ConditionalGRU:
    n_in = a.in_features
    hidden = a.positional(0, "hidden", lo=1)
    gate = a.keyword("gate", kind=str, default="block", choices=GATES)
    blocks = a.keyword("blocks", default=16, lo=1, hi=hidden)
    if gate == "block" and hidden % blocks:
        raise a.error(f"blocks={blocks} must divide hidden={hidden}")
    return ConditionalGRU(n_in, hidden, gate=gate, blocks=blocks,
                          rank=a.keyword("rank", default=16, lo=1, hi=hidden),
                          s=a.keyword("s", kind=float, default=0.0),
                          skip=a.keyword("skip", kind=bool, default=True),
                          seed=a.seed, dtype=a.dtype)


register_layer_token("estdense", _estdense, "estdense(OUT,rank=K[,every=N,threshold=T])")
register_layer_token("gru", _gru, "gru(H)")
register_layer_token("cgru", _cgru, "cgru(H[,gate=block|rank|full,blocks=G,rank=R,s=S,skip=true])")
