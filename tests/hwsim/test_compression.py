"""Compression pipeline: Huffman, relative sparse indices, k-means sharing, pruning, group lasso,
distillation, stored-model sizes."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hwsim.compression import (
    CompressedLayer,
    CompressedModel,
    centroid_grads,
    distillation_loss,
    group_lasso_grad,
    group_lasso_penalty,
    group_lasso_prox,
    huffman_decode,
    huffman_encode,
    kmeans_share,
    magnitude_mask,
    sparse_decode,
    sparse_encode,
)
from hwsim.compression._huffman import canonical_codes, code_lengths

symbol_arrays = arrays(np.int64, st.integers(0, 300), elements=st.integers(0, 40))


# ---------------------------------------------------------------- Huffman
@settings(max_examples=40)
@given(symbol_arrays)
def test_huffman_round_trip(s: np.ndarray) -> None:
    data = huffman_encode(s)
    np.testing.assert_array_equal(huffman_decode(data), s)


@settings(max_examples=40)
@given(symbol_arrays)
def test_huffman_size_is_header_plus_code_bits(s: np.ndarray) -> None:
    uniq, cnt = np.unique(s, return_counts=True)
    lengths = code_lengths(dict(zip(uniq.tolist(), cnt.tolist())))
    bits = sum(lengths[u] * c for u, c in zip(uniq.tolist(), cnt.tolist()))
    assert len(huffman_encode(s)) == 8 + 5 * len(uniq) + -(-bits // 8)


def test_huffman_known_code_and_prefix_free() -> None:
    lengths = code_lengths({0: 45, 1: 13, 2: 12, 3: 16, 4: 9, 5: 5})   # CLRS example
    assert lengths == {0: 1, 1: 3, 2: 3, 3: 3, 4: 4, 5: 4}
    codes = canonical_codes(lengths)
    assert codes[0] == (0b0, 1) and codes[1] == (0b100, 3) and codes[5] == (0b1111, 4)
    words = [format(c, f"0{n}b") for c, n in codes.values()]
    assert not any(a != b and b.startswith(a) for a in words for b in words)


def test_huffman_bad_input() -> None:
    with pytest.raises(ValueError, match="2\\*\\*32"):
        huffman_encode(np.array([-1]))
    with pytest.raises(TypeError):
        huffman_encode(np.array([0.5]))
    with pytest.raises(ValueError, match="truncated"):
        huffman_decode(huffman_encode(np.arange(50))[:-3])


# ---------------------------------------------------------------- relative indices
@settings(max_examples=40)
@given(c=arrays(np.int64, st.integers(0, 200), elements=st.integers(0, 3)), bits=st.integers(1, 6))
def test_sparse_round_trip_and_width(c: np.ndarray, bits: int) -> None:
    c = c * (c > 1)                        # mostly zeros
    sc = sparse_encode(c, bits)
    np.testing.assert_array_equal(sparse_decode(sc), c)
    assert sc.diffs.size == 0 or (sc.diffs.min() >= 0 and sc.diffs.max() < 2 ** bits)
    assert np.count_nonzero(sc.codes) == np.count_nonzero(c)


def test_sparse_filler_zero_as_in_paper() -> None:
    c = np.zeros(20, np.int64)
    c[[1, 15]] = [5, 3]                     # gap of 14 > 8 with 3-bit indices: one filler
    sc = sparse_encode(c, 3)
    assert sc.diffs.tolist() == [1, 7, 5] and sc.codes.tolist() == [5, 0, 3] and sc.fillers == 1
    with pytest.raises(ValueError, match="index_bits"):
        sparse_encode(c, 0)


# ---------------------------------------------------------------- k-means sharing
def test_kmeans_linear_init_and_codebook() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(40, 30)).astype(np.float32)
    mask = magnitude_mask(w, 0.5)
    sh = kmeans_share(w, 3, mask)
    assert sh.codebook.shape == (8,) and sh.codebook[0] == 0
    assert np.all(np.diff(sh.codebook[1:]) > 0)
    np.testing.assert_array_equal(sh.indices == 0, ~mask)
    dense = sh.dense()
    # every surviving weight maps to its nearest centroid
    dist = np.abs(w[mask][:, None] - sh.codebook[1:][None, :])
    np.testing.assert_allclose(np.abs(w[mask] - dense[mask]), dist.min(axis=1), rtol=1e-6, atol=1e-7)
    # 7 values represent the data better than a uniform grid of 7 levels
    grid = np.linspace(w[mask].min(), w[mask].max(), 7)
    err_grid = np.abs(w[mask][:, None] - grid[None]).min(axis=1)
    assert np.mean((w[mask] - dense[mask]) ** 2) < np.mean(err_grid ** 2)


def test_centroid_grads_sum_shared_weights() -> None:
    sh = kmeans_share(np.array([[0.1, 0.9], [0.12, 0.88]], np.float32), 2)
    g = centroid_grads(np.array([[1.0, 2.0], [3.0, 4.0]]), sh)
    lo, hi = sh.indices[0, 0], sh.indices[0, 1]
    assert g[lo] == 4.0 and g[hi] == 6.0 and g[0] == 0.0 and g.sum() == 10.0


def test_kmeans_bad_bits() -> None:
    with pytest.raises(ValueError, match="bits"):
        kmeans_share(np.ones(3), 0)


# ---------------------------------------------------------------- pruning
@settings(max_examples=30)
@given(w=arrays(np.float32, st.integers(1, 100), elements=st.floats(-5, 5, width=32)),
       sparsity=st.floats(0, 0.99))
def test_magnitude_mask_keeps_largest(w: np.ndarray, sparsity: float) -> None:
    m = magnitude_mask(w, sparsity)
    assert m.sum() == round((1 - sparsity) * w.size)
    if m.any() and (~m).any():
        assert np.abs(w[m]).min() >= np.abs(w[~m]).max()


def test_magnitude_mask_bad_sparsity() -> None:
    with pytest.raises(ValueError, match="sparsity"):
        magnitude_mask(np.ones(4), 1.0)


# ---------------------------------------------------------------- group lasso
def test_group_lasso_penalty_grad_prox() -> None:
    rng = np.random.default_rng(1)
    W = rng.normal(size=(5, 3))
    W[2] = 0.0
    b = rng.normal(size=3)
    lam = 0.1
    expect = lam * (np.sqrt(3) * np.linalg.norm(W, axis=1).sum() + np.sqrt(3) * np.linalg.norm(b))
    assert group_lasso_penalty(W, b, lam) == pytest.approx(expect)
    gW, gb = group_lasso_grad(W, b, lam)
    assert np.all(gW[2] == 0)
    # finite differences on a nonzero group
    eps = 1e-6
    E = np.zeros_like(W)
    E[0, 1] = eps
    fd = (group_lasso_penalty(W + E, b, lam) - group_lasso_penalty(W - E, b, lam)) / (2 * eps)
    assert gW[0, 1] == pytest.approx(fd, rel=1e-5)
    # prox: groups with norm <= t*sqrt(|g|) vanish exactly, others shrink along themselves
    t = np.linalg.norm(W[1]) / np.sqrt(3)
    W2, b2 = group_lasso_prox(W, b, t)
    assert np.all(W2[1] == 0) and np.all(W2[2] == 0)
    big = np.linalg.norm(W, axis=1) > np.linalg.norm(W[1])
    np.testing.assert_allclose(np.linalg.norm(W2[big], axis=1),
                               np.linalg.norm(W[big], axis=1) - t * np.sqrt(3))
    with pytest.raises(ValueError, match="lam"):
        group_lasso_penalty(W, b, -1.0)


# ---------------------------------------------------------------- distillation
def test_distillation_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(2)
    z, v = rng.normal(size=(4, 5)), rng.normal(size=(4, 5)) * 3
    y = np.array([0, 3, 1, 4])
    loss, g = distillation_loss(z, v, y, temperature=3.0, alpha=0.7)
    eps = 1e-6
    for i, j in [(0, 0), (2, 4), (3, 1)]:
        E = np.zeros_like(z)
        E[i, j] = eps
        fd = len(z) * (distillation_loss(z + E, v, y, temperature=3.0, alpha=0.7)[0]
                       - distillation_loss(z - E, v, y, temperature=3.0, alpha=0.7)[0]) / (2 * eps)
        assert g[i, j] == pytest.approx(fd, rel=1e-5, abs=1e-9)
    # the student matching the teacher exactly has zero soft-target gradient
    _, g_same = distillation_loss(v, v, y, temperature=2.0, alpha=1.0)
    np.testing.assert_allclose(g_same, 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(z, v, y, temperature=0.0)


# ---------------------------------------------------------------- stored model
@pytest.mark.parametrize("coding", ["fixed", "huffman"])
def test_stored_model_round_trip_and_exact_size(coding: str, tmp_path) -> None:
    rng = np.random.default_rng(3)
    layers = []
    for i, shape in enumerate([(60, 40), (40, 10)]):
        w = rng.normal(size=shape).astype(np.float32)
        sh = kmeans_share(w, 4, magnitude_mask(w, 0.92))
        layers.append((sh, rng.normal(size=shape[1]).astype(np.float32)))
    cm = CompressedModel([CompressedLayer.encode(f"fc{i}", sh, b, 3, coding)
                          for i, (sh, b) in enumerate(layers)])
    path = tmp_path / "model.hwsc"
    path.write_bytes(cm.to_bytes())
    back = CompressedModel.from_bytes(path.read_bytes())
    for (sh, b), cl in zip(layers, back.layers):
        w2, b2 = cl.decode()
        np.testing.assert_array_equal(w2, sh.dense())
        np.testing.assert_array_equal(b2, b)
    rows = cm.report()
    assert rows[-1]["stored_bytes"] == path.stat().st_size
    assert sum(r["stored_bytes"] for r in rows[:-1]) == path.stat().st_size
    assert rows[0]["fillers"] > 0 and rows[-1]["compression"] > 5
    other = cm.with_coding("huffman" if coding == "fixed" else "fixed")
    for a, b in zip(cm.layers, other.layers):
        np.testing.assert_array_equal(a.decode()[0], b.decode()[0])
    with pytest.raises(ValueError, match="coding"):
        CompressedLayer.encode("x", layers[0][0], None, 3, "zip")
    with pytest.raises(ValueError, match="magic"):
        CompressedModel.from_bytes(b"nope" + path.read_bytes()[4:])


# ---------------------------------------------------------------- on models

import hwsim  # noqa: E402
from hwsim import Dataset  # noqa: E402
from hwsim.compression import (  # noqa: E402
    GroupLasso,
    Pruning,
    WeightSharing,
    compressed_workload,
    deep_compress,
    distill,
    minmax_format,
    post_training_quantize,
    remove_dead_neurons,
)
from tests.hwsim._synthetic import synthetic_dataset  # noqa: E402


@pytest.fixture(scope="module")
def data() -> Dataset:
    return synthetic_dataset(10, 400, 320)


def _fit(data: Dataset, spec: str = "mlp:10-24-24-3", epochs: int = 3, **kw):
    model = hwsim.build_model(spec, (10,), 3, seed=0)
    m = hwsim.train(model, data, hwsim.Precision(), epochs=epochs, batch=32, lr=1e-2, progress=False, **kw)
    return model, m


def test_pruning_masks_hold_through_finetuning(data: Dataset) -> None:
    model, _ = _fit(data)
    hook = Pruning.by_magnitude(model, {0: 0.8, 2: 0.5})
    m = hwsim.train(model, data, hwsim.Precision(), epochs=2, batch=32, lr=1e-2, progress=False, scheme=hook)
    assert m["train_loss"][-1] < 1.0
    for i, mask in hook.masks.items():
        W = model.layers[i].W
        assert np.all(W[~mask] == 0) and np.count_nonzero(W) == mask.sum()
    assert (~hook.masks[0]).mean() == pytest.approx(0.8, abs=0.01)


def test_weight_sharing_finetuning_keeps_the_codebook(data: Dataset) -> None:
    model, _ = _fit(data)
    Pruning.by_magnitude(model, 0.5)
    hook = WeightSharing.by_kmeans(model, 3)
    before = {i: sh.codebook.copy() for i, sh in hook.shared.items()}
    hwsim.train(model, data, hwsim.Precision(), epochs=1, batch=32, lr=1e-2, progress=False, scheme=hook)
    for i, sh in hook.shared.items():
        W = model.layers[i].W
        np.testing.assert_array_equal(W, sh.codebook[sh.indices])       # every weight is a centroid
        assert len(np.unique(W)) <= 8 and np.all((W == 0) == (sh.indices == 0))
        assert not np.array_equal(sh.codebook, before[i])                # the centroids were tuned


def test_deep_compress_stores_and_decodes(data: Dataset) -> None:
    model, _ = _fit(data, "mlp:10-64-64-3")
    res = deep_compress(model, data, sparsity=0.8, bits=4, index_bits=4, prune_rounds=2, batch=32, lr=3e-3)
    assert set(res["accuracy"]) == {"baseline", "pruned", "shared", "stored"}
    assert res["accuracy"]["stored"] == res["accuracy"]["shared"]       # decoding is lossless
    assert res["report"][-1]["stored_bytes"] == len(res["stored"].to_bytes())
    assert res["compression"] > 4
    wl = compressed_workload(model, res["stored"])
    mm = [op for op in wl if op.name.startswith("dense") and op.name.endswith("/fwd")]
    rows = {r["layer"]: r for r in res["report"]}
    assert len(mm) == 3
    for op in mm:
        r = rows[op.name.split("/")[0]]
        assert op.b_bits == -(-8 * r["stored_bytes"] // r["weights"]) and op.b_bits < 32
        assert op.sparsity == pytest.approx(1 - r["nonzero_pct"] / 100)


def test_minmax_format_and_ptq(data: Dataset) -> None:
    fmt = minmax_format(np.array([-0.7, 0.3]), 8)
    assert (fmt.word, fmt.frac) == (8, 7) and fmt.min <= -0.7
    assert minmax_format(np.array([0.0, 1.0]), 8).frac == 6              # 1.0 > s8.7's max
    assert minmax_format(np.array([-1.0, 0.0]), 8).frac == 7             # -1.0 = s8.7's min
    model, _ = _fit(data)
    q, formats = post_training_quantize(model, 6)
    for layer in q.layers:
        for name, a in layer.params().items():
            f = hwsim.RoleFormat.parse(formats[f"{layer.index}.{name}"]).fmt
            raw = a.astype(np.float64) * 2.0 ** f.frac
            assert np.all(raw == np.round(raw)) and raw.min() >= f.raw_min and raw.max() <= f.raw_max
            assert np.abs(a - dict(model.layers[layer.index].params())[name]).max() <= f.step / 2
    with pytest.raises(ValueError, match="bits"):
        post_training_quantize(model, 1)


def test_group_lasso_removes_neurons_without_changing_outputs(data: Dataset) -> None:
    model, _ = _fit(data, epochs=1)
    hook = GroupLasso(lam=0.05, prox_lr=0.2)
    p0 = hook.penalty(model)
    hwsim.train(model, data, hwsim.Precision(), epochs=3, batch=32, lr=1e-2, progress=False, scheme=hook)
    assert hook.penalty(model) < p0
    small, kept = remove_dead_neurons(model)
    assert kept[-1] == 3 and kept[1] < 24                   # some hidden neurons died
    np.testing.assert_allclose(small.forward(data.X_test), model.forward(data.X_test), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="MLP"):
        remove_dead_neurons(hwsim.build_model("cnn:lenet5", (1, 8, 8), 10))


def test_distillation_trains_a_student(data: Dataset) -> None:
    teacher, _ = _fit(data, "mlp:10-64-3")
    student = hwsim.build_model("mlp:10-8-3", (10,), 3, seed=4)
    m = distill(student, teacher, data, epochs=3, batch=32, lr=1e-2, temperature=3.0)
    assert m["train_loss"][-1] < m["train_loss"][0] and m["test_accuracy"] > 0.6
    assert (distillation_loss(np.ones((2, 3)), np.ones((2, 3)), np.zeros(2, int), alpha=1.0)[0]
            == pytest.approx(0))
