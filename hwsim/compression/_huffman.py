"""Canonical Huffman coding of non-negative integer symbols (Han et al. 2015, section 4).

Stream layout (all integers little-endian), written by :func:`huffman_encode`:

====================  ==========================================================
``uint32 n``          number of encoded symbols
``uint32 m``          number of distinct symbols (alphabet size)
``m x uint32``        the distinct symbols, in canonical order
``m x uint8``         their code lengths in bits (1..64)
bit stream            the concatenated codes, most significant bit first,
                      zero-padded to a whole byte
====================  ==========================================================

Canonical codes (Schwartz & Kallick 1964): symbols are sorted by (code length, symbol);
the first gets code 0, each next code is ``(previous + 1) << (length - previous length)``.
Only the lengths need storing. The size of a stream is ``len(huffman_encode(...))``: the
size reports count these exact bytes, header included.
"""
from __future__ import annotations

import heapq
import struct

import numpy as np

_MAX_LEN = 64


def _as_symbols(symbols: np.ndarray) -> np.ndarray:
    s = np.asarray(symbols)
    if s.ndim != 1:
        raise ValueError(f"symbols must be a 1-D array, got shape {s.shape}")
    if s.size and not np.issubdtype(s.dtype, np.integer):
        raise TypeError(f"symbols must be integers, got dtype {s.dtype}")
    s = s.astype(np.int64)
    if s.size and (s.min() < 0 or s.max() > 0xFFFFFFFF):
        raise ValueError("symbols must lie in [0, 2**32 - 1]")
    return s


def code_lengths(counts: dict[int, int]) -> dict[int, int]:
    """Huffman code length in bits of each symbol, from its count (ties broken by symbol).

    A one-symbol alphabet gets a 1-bit code.
    """
    if not counts:
        return {}
    if len(counts) == 1:
        return {next(iter(counts)): 1}
    # heap items: (weight, tie-breaker, symbols in this subtree)
    heap = [(int(c), int(s), [int(s)]) for s, c in sorted(counts.items())]
    heapq.heapify(heap)
    lengths = {int(s): 0 for s in counts}
    while len(heap) > 1:
        w1, t1, s1 = heapq.heappop(heap)
        w2, t2, s2 = heapq.heappop(heap)
        for s in s1 + s2:
            lengths[s] += 1
        heapq.heappush(heap, (w1 + w2, min(t1, t2), s1 + s2))
    if max(lengths.values()) > _MAX_LEN:
        raise ValueError(f"Huffman code longer than {_MAX_LEN} bits; the distribution is too skewed")
    return lengths


def canonical_codes(lengths: dict[int, int]) -> dict[int, tuple[int, int]]:
    """Canonical code ``(code, length)`` of each symbol, from its code length."""
    codes: dict[int, tuple[int, int]] = {}
    code, prev_len = 0, 0
    for sym, length in sorted(lengths.items(), key=lambda kv: (kv[1], kv[0])):
        code <<= length - prev_len
        codes[sym] = (code, length)
        code += 1
        prev_len = length
    return codes


def _bitstream(symbols: np.ndarray, codes: dict[int, tuple[int, int]]) -> bytes:
    """Concatenate the codes of ``symbols`` MSB first and pack into bytes."""
    if symbols.size == 0:
        return b""
    alphabet = np.array(sorted(codes), dtype=np.int64)
    pos = np.searchsorted(alphabet, symbols)
    code = np.array([codes[int(s)][0] for s in alphabet], dtype=np.uint64)[pos]
    length = np.array([codes[int(s)][1] for s in alphabet], dtype=np.int64)[pos]
    starts = np.cumsum(length) - length
    total = int(length.sum())
    owner = np.repeat(np.arange(symbols.size), length)
    shift = (length[owner] - 1 - (np.arange(total) - starts[owner])).astype(np.uint64)
    bits = ((code[owner] >> shift) & np.uint64(1)).astype(np.uint8)
    return np.packbits(bits).tobytes()


def huffman_encode(symbols: np.ndarray) -> bytes:
    """Encode a 1-D array of integer symbols in [0, 2**32) into a self-describing byte string."""
    s = _as_symbols(symbols)
    uniq, cnt = np.unique(s, return_counts=True)
    codes = canonical_codes(code_lengths(dict(zip(uniq.tolist(), cnt.tolist()))))
    order = sorted(codes, key=lambda k: (codes[k][1], k))
    header = struct.pack("<II", s.size, len(order))
    header += struct.pack(f"<{len(order)}I", *order)
    header += bytes(codes[k][1] for k in order)
    return header + _bitstream(s, codes)


def huffman_decode(data: bytes) -> np.ndarray:
    """Decode a stream written by :func:`huffman_encode` back to its int64 symbols."""
    if len(data) < 8:
        raise ValueError("Huffman stream too short: missing its 8-byte header")
    n, m = struct.unpack_from("<II", data, 0)
    head = 8 + 5 * m
    if len(data) < head:
        raise ValueError("Huffman stream truncated inside its symbol table")
    order = struct.unpack_from(f"<{m}I", data, 8)
    lengths = data[8 + 4 * m : head]
    codes = canonical_codes(dict(zip(order, lengths)))
    # canonical decoding: per length, the first code and the index of its first symbol
    first_code: dict[int, int] = {}
    first_index: dict[int, int] = {}
    count: dict[int, int] = {}
    for i, sym in enumerate(order):
        c, length = codes[sym]
        if length not in first_code:
            first_code[length], first_index[length], count[length] = c, i, 0
        count[length] += 1
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8, offset=head)).tolist()
    out = np.empty(n, dtype=np.int64)
    pos = 0
    for k in range(n):
        code, length = 0, 0
        while True:
            if pos >= len(bits):
                raise ValueError(f"Huffman stream truncated at symbol {k} of {n}")
            code = (code << 1) | bits[pos]
            pos += 1
            length += 1
            if length in count and code - first_code[length] < count[length]:
                out[k] = order[first_index[length] + code - first_code[length]]
                break
            if length >= _MAX_LEN:
                raise ValueError(f"invalid Huffman code at symbol {k}")
    return out

