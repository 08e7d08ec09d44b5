"""The stored form of a pruned, weight-shared model and its byte-size report (Han et al. 2015, Table 2).

Per layer four blobs are stored: the codebook (``2**bits`` float32, entry 0 = 0), the stream
of shared-weight indices of the stored entries, the stream of relative sparse indices
(``index_bits`` each, filler zeros included, see :mod:`._sparse`) and the float32 bias.
Each index stream is stored either at fixed width (``"fixed"``: P+Q in the paper, values
packed MSB first at ``bits`` / ``index_bits`` bits each) or Huffman coded (``"huffman"``:
P+Q+H, see :mod:`._huffman`).

File layout of :meth:`CompressedModel.to_bytes`: ``b"HWSC"``, ``uint32`` header length,
a UTF-8 JSON header (per layer: name, shape, bits, index_bits, coding, blob lengths), then
the blobs in header order. The report's sizes are the lengths of these bytes, and the
total is ``len(to_bytes())``.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import numpy as np

from ._huffman import huffman_decode, huffman_encode
from ._kmeans import SharedWeights
from ._sparse import SparseCodes, sparse_decode, sparse_encode

_MAGIC = b"HWSC"
_CODINGS = ("fixed", "huffman")
_BLOBS = ("codebook", "weights", "index", "bias")


def pack_fixed(values: np.ndarray, bits: int) -> bytes:
    """Pack non-negative ints below ``2**bits`` at ``bits`` bits each, MSB first; a uint32 count first."""
    v = np.asarray(values, dtype=np.int64)
    if v.size and (v.min() < 0 or v.max() >= 1 << bits):
        raise ValueError(f"values must lie in [0, 2**{bits} - 1]")
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)
    b = ((v[:, None] >> shifts) & 1).astype(np.uint8).ravel()
    return struct.pack("<I", v.size) + np.packbits(b).tobytes()


def unpack_fixed(data: bytes, bits: int) -> np.ndarray:
    """Inverse of :func:`pack_fixed`."""
    (n,) = struct.unpack_from("<I", data, 0)
    b = np.unpackbits(np.frombuffer(data, dtype=np.uint8, offset=4))[: n * bits]
    if b.size != n * bits:
        raise ValueError("fixed-width stream truncated")
    weights = (1 << np.arange(bits - 1, -1, -1, dtype=np.int64))
    return b.reshape(n, bits).astype(np.int64) @ weights


def _encode_stream(values: np.ndarray, bits: int, coding: str) -> bytes:
    return huffman_encode(values) if coding == "huffman" else pack_fixed(values, bits)


def _decode_stream(data: bytes, bits: int, coding: str) -> np.ndarray:
    return huffman_decode(data) if coding == "huffman" else unpack_fixed(data, bits)


@dataclass
class CompressedLayer:
    """One dense layer in stored form (blobs are the exact stored bytes)."""

    name: str
    shape: tuple[int, ...]
    bits: int
    index_bits: int
    coding: str
    blobs: dict[str, bytes]
    stored_entries: int   # nonzero weights + filler zeros
    nonzero: int

    @classmethod
    def encode(cls, name: str, shared: SharedWeights, bias: np.ndarray | None,
               index_bits: int, coding: str = "huffman") -> "CompressedLayer":
        """Store ``shared`` (with ``bias``) by relative index at ``index_bits``, coded as ``coding``."""
        if coding not in _CODINGS:
            raise ValueError(f"coding must be one of {_CODINGS}, got {coding!r}")
        sc = sparse_encode(shared.indices.ravel(), index_bits)
        b = np.zeros(0, np.float32) if bias is None else np.asarray(bias, np.float32)
        blobs = {
            "codebook": np.asarray(shared.codebook, "<f4").tobytes(),
            "weights": _encode_stream(sc.codes, shared.bits, coding),
            "index": _encode_stream(sc.diffs, index_bits, coding),
            "bias": b.astype("<f4").tobytes(),
        }
        return cls(name, tuple(shared.indices.shape), shared.bits, int(index_bits), coding, blobs,
                   int(sc.codes.size), int(np.count_nonzero(shared.indices)))

    def decode(self) -> tuple[np.ndarray, np.ndarray]:
        """The float32 weight (of ``shape``) and bias these bytes store."""
        codebook = np.frombuffer(self.blobs["codebook"], "<f4")
        codes = _decode_stream(self.blobs["weights"], self.bits, self.coding)
        diffs = _decode_stream(self.blobs["index"], self.index_bits, self.coding)
        idx = sparse_decode(SparseCodes(diffs, codes, int(np.prod(self.shape)), self.index_bits))
        return codebook[idx].reshape(self.shape), np.frombuffer(self.blobs["bias"], "<f4").copy()

    def with_coding(self, coding: str) -> "CompressedLayer":
        """The same codes stored with another ``coding`` ("fixed" = P+Q, "huffman" = P+Q+H)."""
        if coding not in _CODINGS:
            raise ValueError(f"coding must be one of {_CODINGS}, got {coding!r}")
        blobs = dict(self.blobs)
        for key, bits in (("weights", self.bits), ("index", self.index_bits)):
            blobs[key] = _encode_stream(_decode_stream(self.blobs[key], bits, self.coding), bits, coding)
        return CompressedLayer(self.name, self.shape, self.bits, self.index_bits, coding, blobs,
                               self.stored_entries, self.nonzero)

    @property
    def nbytes(self) -> int:
        return sum(len(v) for v in self.blobs.values())

    def report_row(self) -> dict:
        """Han et al. Table 2 columns for this layer (sizes in bytes of the stored blobs)."""
        n = int(np.prod(self.shape))
        original = 4 * (n + len(self.blobs["bias"]) // 4)
        per = max(self.stored_entries, 1)
        return {
            "layer": self.name, "weights": n, "nonzero_pct": 100.0 * self.nonzero / max(n, 1),
            "weight_bits": 8 * len(self.blobs["weights"]) / per,
            "index_bits": 8 * len(self.blobs["index"]) / per,
            "fillers": self.stored_entries - self.nonzero,
            "stored_bytes": self.nbytes, "original_bytes": original,
            "compression": original / self.nbytes,
        }


@dataclass
class CompressedModel:
    """A sequence of compressed layers; ``to_bytes`` is the file that is stored."""

    layers: list[CompressedLayer]

    def _header(self) -> bytes:
        meta = [{"name": layer.name, "shape": list(layer.shape), "bits": layer.bits,
                 "index_bits": layer.index_bits, "coding": layer.coding,
                 "stored_entries": layer.stored_entries, "nonzero": layer.nonzero,
                 "lengths": [len(layer.blobs[k]) for k in _BLOBS]} for layer in self.layers]
        return json.dumps(meta, separators=(",", ":")).encode()

    def to_bytes(self) -> bytes:
        head = self._header()
        return (_MAGIC + struct.pack("<I", len(head)) + head
                + b"".join(layer.blobs[k] for layer in self.layers for k in _BLOBS))

    @classmethod
    def from_bytes(cls, data: bytes) -> "CompressedModel":
        if data[:4] != _MAGIC:
            raise ValueError("not a compressed hwsim model (bad magic bytes)")
        (hlen,) = struct.unpack_from("<I", data, 4)
        meta = json.loads(data[8:8 + hlen].decode())
        pos, layers = 8 + hlen, []
        for m in meta:
            blobs = {}
            for key, n in zip(_BLOBS, m["lengths"]):
                blobs[key] = bytes(data[pos:pos + n])
                pos += n
            layers.append(CompressedLayer(m["name"], tuple(m["shape"]), m["bits"], m["index_bits"],
                                          m["coding"], blobs, m["stored_entries"], m["nonzero"]))
        if pos != len(data):
            raise ValueError(f"compressed model has {len(data) - pos} trailing or missing bytes")
        return cls(layers)

    def with_coding(self, coding: str) -> "CompressedModel":
        """Every layer re-stored with ``coding``."""
        return CompressedModel([layer.with_coding(coding) for layer in self.layers])

    def report(self) -> list[dict]:
        """Per-layer rows plus a ``header`` row and a ``total`` row whose bytes equal ``len(to_bytes())``."""
        rows = [layer.report_row() for layer in self.layers]
        header = 8 + len(self._header())
        stored = sum(r["stored_bytes"] for r in rows) + header
        original = sum(r["original_bytes"] for r in rows)
        weights = sum(r["weights"] for r in rows)
        nz = sum(layer.nonzero for layer in self.layers)
        rows.append({"layer": "header", "stored_bytes": header})
        rows.append({"layer": "total", "weights": weights, "nonzero_pct": 100.0 * nz / max(weights, 1),
                     "stored_bytes": stored, "original_bytes": original,
                     "compression": original / stored})
        return rows
