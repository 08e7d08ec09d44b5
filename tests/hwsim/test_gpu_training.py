"""Training on the GPU (``xp="cupy"``) against the CPU (real GPU; skipped without one).

Exact mode (every role fixed point, products through ``fixedpoint.matmul``) gives the same
weights bit for bit: every quantization is the same counter-RNG rule on both, the integer
products are exact on both, and the remaining float steps (softmax in float64 rounded to
float32, elementwise Adam, sums of grid values that float32 holds exactly) agree. Fast mode
multiplies in float32 GEMMs whose summation order differs between OpenBLAS and cuBLAS, so its
weights agree only to float tolerance (a different last bit can move a later rounding by one
step of a grid). Checkpoints hold numpy arrays: a GPU run's checkpoint file has the same
entries, dtypes and shapes as a CPU run's, and resumes on the CPU.
"""
from __future__ import annotations

import numpy as np
import pytest

from hwsim import Precision, build_model, train
from hwsim._checkpoint import load as load_checkpoint
from tests.hwsim._synthetic import synthetic_dataset

pytestmark = pytest.mark.gpu

MODEL = "mlp:20-32-3"


def _run(xp: str, precision: Precision, out=None, epochs: int = 2):
    data = synthetic_dataset(20, 600, 512, seed=3)
    model = build_model(MODEL, input_shape=(20,), num_classes=3, seed=1)
    metrics = train(model, data, precision, epochs=epochs, batch=32, lr=3e-3, seed=2, progress=False,
                    out=out, xp=xp)
    return model, metrics


def _weights(model) -> dict:
    return model.state_dict()  # numpy copies, whichever module holds the arrays


def test_exact_mode_gives_the_same_weights_on_gpu(cupy_device) -> None:
    p = Precision.from_flags("fixed16", seed=4, mode="exact")
    cpu, m_cpu = _run("numpy", p)
    gpu, m_gpu = _run("cupy", p)
    assert type(gpu.parameters()[0][2]).__module__.startswith("cupy")
    w_cpu, w_gpu = _weights(cpu), _weights(gpu)
    assert w_cpu.keys() == w_gpu.keys()
    for k in w_cpu:
        assert w_cpu[k].dtype == w_gpu[k].dtype
        assert w_cpu[k].tobytes() == w_gpu[k].tobytes(), k
    assert m_cpu["test_accuracy_per_epoch"] == m_gpu["test_accuracy_per_epoch"]


@pytest.mark.parametrize("preset", ["fp32", "fixed8"])
def test_fast_mode_agrees_to_float_tolerance(cupy_device, preset) -> None:
    p = Precision.from_flags(preset, seed=4)
    cpu, _ = _run("numpy", p, epochs=1)
    gpu, _ = _run("cupy", p, epochs=1)
    w_cpu, w_gpu = _weights(cpu), _weights(gpu)
    for k in w_cpu:
        # a few grid steps of the s16.14 update format (2**-14) at most, fp32: ulps
        np.testing.assert_allclose(w_gpu[k], w_cpu[k], atol=4 * 2.0**-14, rtol=1e-4, err_msg=k)


def test_gpu_checkpoint_has_the_cpu_format_and_resumes_on_cpu(cupy_device, tmp_path) -> None:
    p = Precision.from_flags("fixed16", seed=4, mode="exact")
    _run("numpy", p, out=tmp_path / "cpu", epochs=1)
    _run("cupy", p, out=tmp_path / "gpu", epochs=1)
    (mc, oc, meta_c), (mg, og, meta_g) = load_checkpoint(tmp_path / "cpu"), load_checkpoint(tmp_path / "gpu")
    for a, b in ((mc, mg), (oc, og)):
        assert a.keys() == b.keys()
        for k in a:
            assert type(b[k]) is np.ndarray and a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
            assert a[k].tobytes() == b[k].tobytes(), k  # exact mode: the same numbers too
    assert meta_c.keys() == meta_g.keys()
    # the GPU run's checkpoint resumes on the CPU and matches an uninterrupted CPU run
    model, _ = (build_model(MODEL, input_shape=(20,), num_classes=3, seed=1), None)
    data = synthetic_dataset(20, 600, 512, seed=3)
    train(model, data, p, epochs=2, batch=32, lr=3e-3, seed=2, progress=False, out=tmp_path / "gpu",
          resume=True, xp="numpy")
    full, _ = _run("numpy", p, epochs=2)
    for k, v in _weights(full).items():
        assert model.state_dict()[k].tobytes() == v.tobytes(), k


def test_cli_train_and_eval_with_array_module_cupy(cupy_device, tmp_path, capsys) -> None:
    from hwsim.cli import main

    out = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--quiet", "--precision", "fixed8", "--array-module", "cupy",
                 "--out", str(out)]) == 0
    assert main(["eval", str(out), "--json", "--array-module", "cupy"]) == 0
    assert '"accuracy"' in capsys.readouterr().out
