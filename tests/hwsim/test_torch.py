"""hwsim.torch: DLPack in fixedpoint, Quantize, quantize_model against hwsim's own layers, the optimizer."""
import copy
import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import fixedpoint as fxp  # noqa: E402
import hwsim  # noqa: E402
import hwsim.torch as ht  # noqa: E402
from hwsim.torch._roles import stream_seed  # noqa: E402

nn = torch.nn


# ---------------------------------------------------------------------------- zero-copy conversion
def test_views_share_storage():
    t = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    a = ht.as_array(t)
    assert a.ctypes.data == t.data_ptr() and a.dtype == np.float32
    back = ht.as_tensor(a)
    assert back.data_ptr() == t.data_ptr() and back.dtype == t.dtype and back.device == t.device


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**63), n=st.integers(0, 50),
       rounding=st.sampled_from(["nearest_even", "nearest_away", "toward_zero", "floor", "ceil",
                                 "stochastic"]),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_fixedpoint_on_tensors_equals_oracle(seed, n, rounding, dtype):
    t = torch.from_numpy(np.random.default_rng(seed % 2**32).standard_normal(n) * 9).to(dtype)
    fmt = fxp.Fixed(8, 4)
    got = fxp.quantize(t, fmt, rounding, seed=seed)
    want = fxp.quantize(t.numpy(), fmt, rounding, seed=seed, backend="numpy")
    assert isinstance(got, torch.Tensor) and got.dtype == dtype
    assert got.numpy().tobytes() == want.tobytes()
    raw = fxp.to_raw(t, fmt, rounding, seed=seed)
    assert raw.dtype == torch.int64 and np.array_equal(raw.numpy(),
                                                       fxp.to_raw(t.numpy(), fmt, rounding, seed=seed))
    q = fxp.Quantizer(fmt, rounding)
    assert q(t, seed=seed).numpy().tobytes() == want.tobytes()
    for f in (lambda x: fxp.binarize(x, True, seed), lambda x: fxp.ternarize(x, 0.5),
              lambda x: fxp.pow2(x, -4, 2, seed=seed)):
        r = f(t)
        assert isinstance(r, torch.Tensor) and r.numpy().tobytes() == f(t.numpy()).tobytes()


def test_fixedpoint_result_shares_memory_with_returned_tensor():
    t = torch.randn(100)
    # the result tensor wraps the array fixedpoint wrote: same buffer, no copy on the way out
    q = fxp.quantize(t, fxp.Fixed(16, 8))
    assert ht.as_array(q).ctypes.data == q.data_ptr()


def test_tensor_requiring_grad_is_a_clear_error():
    with pytest.raises(TypeError, match="detach"):
        fxp.quantize(torch.randn(3, requires_grad=True), fxp.Fixed(8, 4))


def test_dtype_without_numpy_equivalent_is_a_clear_error():
    """bfloat16 (no numpy dtype): fixedpoint, Quantize, quantize_model and a model converted after
    quantize_model all name the dtype and what to do, in one line."""
    bf16 = torch.ones(3, dtype=torch.bfloat16)
    with pytest.raises(TypeError, match=r"^x: a Tensor of dtype torch.bfloat16, which has no numpy/CuPy "
                                        r"equivalent .*; convert it to float32 or float64 first$"):
        fxp.quantize(bf16, fxp.Fixed(8, 4))
    with pytest.raises(TypeError, match=r"^hwsim.torch: a tensor of dtype torch.bfloat16 has no numpy"):
        ht.Quantize("s8.4")(bf16)
    with pytest.raises(TypeError, match=r"^0: hwsim.torch runs float16, float32 or float64 parameters, "
                                        r"got torch.bfloat16; convert the model first"):
        ht.quantize_model(nn.Sequential(nn.Linear(3, 2)).bfloat16(), "fixed8")
    model = ht.quantize_model(nn.Sequential(nn.Linear(3, 2)), "fixed8").bfloat16()
    with pytest.raises(TypeError, match=r"^hwsim.torch: 0 \(Linear\): hwsim.torch runs float16"):
        model(bf16.reshape(1, 3))


# ---------------------------------------------------------------------------- Quantize
def test_quantize_forward_backward_hand_values():
    m = ht.Quantize("s8.4", "s8.2")
    x = torch.tensor([-200.0, 0.30, 1.0 / 3, 100.0], requires_grad=True)
    y = m(x)
    assert y.tolist() == [-8.0, 0.3125, 0.3125, 7.9375]
    y.backward(torch.tensor([1.0, 0.3, 0.6, 1.0]))
    # straight-through mask zero outside [-8, 7.9375]; then the error rounded to s8.2 (step 0.25)
    assert x.grad.tolist() == [0.0, 0.25, 0.5, 0.0]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32), step=st.integers(0, 5))
def test_quantize_stochastic_seeds_follow_hwsim_rule(seed, step):
    m = ht.Quantize("s8.4:stochastic", "s8.4:stochastic", seed=seed, index=3)
    m.set_step(step)
    x = torch.linspace(-3, 3, 40, requires_grad=True)
    y = m(x)
    want = fxp.quantize(x.detach().numpy(), fxp.Fixed(8, 4), "stochastic",
                        seed=stream_seed(seed, 3, "activation", 0, step))
    assert y.detach().numpy().tobytes() == want.tobytes()
    dy = torch.linspace(-1, 1, 40)
    y.backward(dy)
    want_dx = fxp.quantize(dy.numpy(), fxp.Fixed(8, 4), "stochastic",
                           seed=stream_seed(seed, 3, "error", 0, step))
    assert x.grad.numpy().tobytes() == want_dx.tobytes()
    assert m.step == step + 1


def test_quantize_gradient_is_straight_through_by_finite_difference():
    m = ht.Quantize("s16.12")       # fine grid inside range: the forward is the identity to 2**-12
    x = torch.tensor([0.5, -1.25, 3.0], dtype=torch.float64, requires_grad=True)
    (m(x) ** 2).sum().backward()
    h = 2.0**-6
    fd = [((m(x.detach() + h * e) ** 2).sum() - (m(x.detach() - h * e) ** 2).sum()).item() / (2 * h)
          for e in torch.eye(3, dtype=torch.float64)]
    assert np.allclose(x.grad.numpy(), fd, atol=2**-10)


# ---------------------------------------------------------------------------- same numbers as hwsim
def _grid(rng, shape, step, lo, hi):
    return (rng.integers(lo, hi, shape) * step).astype(np.float32)


def _pair(arch, precision, seed=0):
    """(torch model quantized, hwsim Sequential) with identical parameters on coarse grids."""
    rng = np.random.default_rng(seed)
    model = arch()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.from_numpy(_grid(rng, tuple(p.shape), 2.0**-4, -8, 8)))
    return model, precision


@pytest.mark.parametrize("policy", [
    dict(weight="s8.4", activation="s8.4", error="s8.4", grad="s16.10", update="s16.12:stochastic"),
    dict(weight="s8.4", activation="s8.4:stochastic", error="s8.6:stochastic", update="s12.8:stochastic"),
])
def test_quantize_model_equals_hwsim_step_by_step(policy):
    torch.manual_seed(0)
    def arch():
        return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 4))
    model, _ = _pair(arch, None)
    net = ht.to_hwsim(model, (6,))                      # copies, converted before quantization
    precision = hwsim.Precision.from_flags("fp32", seed=11, **policy)
    net.set_precision(precision)
    ht.quantize_model(model, precision)
    lr = 2.0**-4
    opt = ht.LowPrecisionOptimizer(torch.optim.SGD(model.parameters(), lr=lr))
    hopt = hwsim.SGD(net, lr=lr)
    rng = np.random.default_rng(1)
    n = 8
    for step in range(4):
        x = _grid(rng, (n, 6), 2.0**-3, -16, 16)
        dy_mean = _grid(rng, (n, 4), 2.0**-6, -8, 8)        # d(mean loss)/dy on a coarse grid
        net.set_step(step)
        want_y = net.forward(x, training=True)
        net.backward(dy_mean * n)
        hopt.step()
        xt = torch.from_numpy(x)
        opt.zero_grad()
        y = model(xt)
        assert y.detach().numpy().tobytes() == want_y.tobytes(), step
        y.backward(torch.from_numpy(dy_mean))
        for (layer, name, _), (tname, p) in zip(net.parameters(), model.named_parameters()):
            g = p.grad.numpy().T if name == "W" else p.grad.numpy()
            assert np.array_equal(g, layer.grads()[name]), (step, tname)
        opt.step()
        for (layer, name, w), (tname, p) in zip(net.parameters(), model.named_parameters()):
            pw = p.detach().numpy().T if name == "W" else p.detach().numpy()
            assert pw.tobytes() == np.ascontiguousarray(w).tobytes(), (step, tname)


def test_conv_model_equals_hwsim():
    def arch():
        return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(3 * 4 * 4, 5))
    model, _ = _pair(arch, None, seed=2)
    net = ht.to_hwsim(model, (1, 8, 8))
    precision = hwsim.Precision.from_flags("fixed8", seed=4)
    net.set_precision(precision)
    ht.quantize_model(model, precision)
    x = _grid(np.random.default_rng(3), (4, 1, 8, 8), 2.0**-3, -8, 8)
    want = net.forward(x, training=True)
    dy = _grid(np.random.default_rng(4), (4, 5), 2.0**-5, -8, 8)
    want_dx = net.backward(dy * 4)
    xt = torch.from_numpy(x).requires_grad_()
    y = model(xt)
    assert y.detach().numpy().tobytes() == want.tobytes()
    y.backward(torch.from_numpy(dy))
    assert np.array_equal(xt.grad.numpy() * 4, want_dx)
    assert np.array_equal(model[0].weight.grad.numpy(), net.layers[0].dW)


def test_quantize_model_trains_on_digits():
    data = hwsim.load_data("digits", flatten=True)
    torch.manual_seed(0)
    model = ht.quantize_model(nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)), "fixed8",
                              update="s16.12:stochastic")
    opt = ht.LowPrecisionOptimizer(torch.optim.Adam(model.parameters(), lr=1e-2))
    X, y = torch.from_numpy(data.X_train), torch.from_numpy(data.y_train)
    losses = []
    for epoch in range(3):
        for i in range(0, len(X), 64):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(X[i:i + 64]), y[i:i + 64])
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    with torch.no_grad():
        acc = (model.eval()(torch.from_numpy(data.X_test)).argmax(1).numpy() == data.y_test).mean()
    assert acc > 0.8


def test_trained_model_can_be_saved_whole_and_reloaded():
    # torch.save(model) after a training forward used to fail: hwsim layers' backward caches hold closures.
    torch.manual_seed(0)
    model = ht.quantize_model(nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3), nn.Tanh()), "fixed8")
    x = torch.randn(4, 6)
    model(x).sum().backward()
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    with torch.no_grad():
        assert model.eval()(x).numpy().tobytes() == loaded.eval()(x).numpy().tobytes()
    loaded.train()
    loaded(x).sum().backward()  # the reloaded model trains: its layers are bound to its own parameters
    assert all(p.grad is not None for p in loaded.parameters())
    assert loaded[0].weight.data_ptr() != model[0].weight.data_ptr()


def test_copied_and_reloaded_models_train_like_the_original():
    """copy.deepcopy and torch.save/load drop a parameter's attributes; the copies' parameters are bound
    again to the copies' own layers, so LowPrecisionOptimizer applies the policy's stochastic update
    role with the same seeds and advances the copies' steps (before, a copy's update role was skipped)."""
    torch.manual_seed(0)
    model = ht.quantize_model(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)), "fixed8",
                              update="s16.12:stochastic")
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    copies = [copy.deepcopy(model), torch.load(buf, weights_only=False)]
    x, y = torch.randn(8, 4), torch.tensor([0, 1] * 4)
    for m in [model, *copies]:
        opt = ht.LowPrecisionOptimizer(torch.optim.SGD(m.parameters(), lr=0.1))
        for _ in range(3):
            opt.zero_grad()
            nn.functional.cross_entropy(m(x), y).backward()
            opt.step()
        assert [layer.layer.step for layer in m] == [3, 3, 3]
        assert all(torch.equal(p * 4096, (p * 4096).round()) for p in m.parameters())  # on the s16.12 grid
    for c in copies:
        assert all(torch.equal(p, q) and p.data_ptr() != q.data_ptr()
                   for p, q in zip(model.parameters(), c.parameters(), strict=True))


def test_optimizer_shares_param_groups_so_schedulers_drive_it():
    model = ht.quantize_model(nn.Sequential(nn.Linear(4, 3)), "fixed8")
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    opt = ht.LowPrecisionOptimizer(sgd, update="s16.12:stochastic")
    assert isinstance(opt, torch.optim.Optimizer) and opt.param_groups is sgd.param_groups
    schedule = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    x = torch.randn(4, 4)
    for _ in range(3):
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
        schedule.step()
    assert sgd.param_groups[0]["lr"] == 0.1 / 8 and opt.t == 3 and opt.state is sgd.state
    assert len(sgd.state) == 2  # the wrapped SGD stepped: its momentum buffers


def test_optimizer_update_bits_equal_fixedpoint_for_plain_parameters():
    p = nn.Parameter(torch.linspace(-2, 2, 30))
    opt = ht.LowPrecisionOptimizer(torch.optim.SGD([p], lr=0.1), update="s8.4:stochastic", seed=5)
    for t in range(3):
        p.grad = torch.full_like(p, 0.37)
        before = p.detach().numpy().copy()
        opt.step()
        want = fxp.quantize((before - np.float32(0.1) * np.float32(0.37)).astype(np.float32), fxp.Fixed(8, 4),
                            "stochastic", seed=stream_seed(5, 0, "update", 0, t))
        assert p.detach().numpy().tobytes() == want.tobytes()
    assert opt.t == 3


def test_batchnorm_running_stats_reach_torch_buffers():
    model = ht.quantize_model(nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)), "fp32")
    model(torch.randn(16, 4))
    assert not torch.equal(model[1].running_mean, torch.zeros(3))
    assert set(model.state_dict()) == {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                       "1.running_var", "1.num_batches_tracked"} - {"1.num_batches_tracked"}


def test_workload_matches_hwsim_workload():
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    wl = ht.workload(model, torch.zeros(8, 64), "fixed8")
    want = hwsim.workload(hwsim.build_model("mlp:64-32-10", (64,), 10),
                          hwsim.Precision.from_flags("fixed8"), batch=8)
    assert [(type(o).__name__, o.name) for o in wl.ops] == [(type(o).__name__, o.name) for o in want.ops]
    assert wl.ops[0].m == 8 and wl.ops[0].a_bits == 8


def test_errors_name_the_problem():
    with pytest.raises(TypeError, match=r"0: torch.nn.modules.rnn.LSTM is not supported"):
        ht.quantize_model(nn.Sequential(nn.LSTM(3, 3)), "fp32")
    with pytest.raises(TypeError, match="groups=1"):
        ht.quantize_model(nn.Sequential(nn.Conv2d(2, 2, 3, groups=2)), "fp32")
    with pytest.raises(ValueError, match="bad format token"):
        ht.Quantize("s8.x")
    with pytest.raises(TypeError, match=r"^model: quantize_model replaces the layers inside a model, and a "
                                        r"bare Linear has none; wrap it: "
                                        r"quantize_model\(nn.Sequential\(model\), \.\.\.\)$"):
        ht.quantize_model(nn.Linear(2, 2), "fp32")
    with pytest.raises(ValueError, match="precision 'fixed3'"):
        ht.quantize_model(nn.Sequential(nn.Linear(2, 2)), "fixed3")
    model = ht.quantize_model(nn.Sequential(nn.Linear(2, 2)), "fp32", grad="s8.4")
    with pytest.raises(ValueError, match="already quantizes gradients"):
        ht.LowPrecisionOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), grad="s8.4")
    y = model(torch.randn(2, 2))
    model(torch.randn(2, 2))
    with pytest.raises(RuntimeError, match="call backward before the next training forward"):
        y.sum().backward()


@pytest.mark.parametrize("x, error, message", [
    (torch.zeros(2, 5), ValueError, r"^hwsim.torch: 0 \(Linear\) needs input shape \(N, \.\.\., 4\) with a "
                                   r"batch axis first, got \(2, 5\)$"),
    (torch.zeros(4), ValueError, r"0 \(Linear\) needs input shape \(N, \.\.\., 4\).*got \(4,\)$"),
    (torch.zeros(2, 4, dtype=torch.float64), TypeError,
     r"^hwsim.torch: 0 \(Linear\) needs input of its parameters' dtype torch.float32, got torch.float64$"),
    (torch.zeros(2, 4, dtype=torch.int64), TypeError, r"0 \(Linear\).*got torch.int64$"),
])
def test_bad_input_is_a_one_line_error_naming_the_module(x, error, message):
    model = ht.quantize_model(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)), "fixed8")
    with pytest.raises(error, match=message):
        model(x)


def test_bad_input_of_a_later_module_changes_nothing():
    """Every module of a run is checked before any runs: BatchNorm's running statistics and the
    training-call counters stay as they were; the message names the module that rejects the input."""
    torch.manual_seed(0)
    model = ht.quantize_model(nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(),
                                            nn.Flatten(), nn.Linear(3 * 4 * 4, 2)), "fixed8")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    calls = [m.calls for m in model]
    with pytest.raises(ValueError, match=r"^hwsim.torch: 4 \(Linear\) needs input shape \(N, \.\.\., 48\)"):
        model(torch.randn(2, 2, 7, 7))
    with pytest.raises(ValueError, match=r"^hwsim.torch: 0 \(Conv2d\): Conv2d\(cin=2\) needs input shape"):
        model(torch.randn(2, 3, 6, 6))
    with pytest.raises(ValueError, match=r"0 \(Conv2d\): Conv2d kernel 3x3 does not fit input \(2, 2, 2\)"):
        model(torch.randn(2, 2, 2, 2))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [m.calls for m in model] == calls
    assert model(torch.randn(2, 2, 6, 6)).shape == (2, 2)  # then a good input runs
    with pytest.raises(ValueError, match=r"1 \(BatchNorm2d\): BatchNorm\(3\) needs input shape"):
        model[1](torch.randn(2, 4, 3, 3))
    double = ht.quantize_model(nn.Sequential(nn.Linear(4, 3)), "fixed8").double()  # dtype follows the weights
    assert double(torch.ones(2, 4, dtype=torch.float64)).dtype == torch.float64


def test_batchnorm_takes_what_torch_takes():
    """torch's rules, checked before any module runs: one value per channel cannot be normalised in
    training (hwsim's layer would return zeros), BatchNorm2d takes (N, C, H, W) only, BatchNorm1d here
    (N, C) only; in eval mode a single sample runs."""
    model = ht.quantize_model(nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)), "fixed8")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"^hwsim.torch: 1 \(BatchNorm1d\) needs more than 1 value per "
                                         r"channel when training \(as torch's\), got input shape \(1, 3\)$"):
        model(torch.randn(1, 4))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items()) and model[0].calls == 0
    assert model.eval()(torch.randn(1, 4)).shape == (1, 3)
    norm2d = ht.quantize_model(nn.Sequential(nn.BatchNorm2d(3)), "fixed8")
    with pytest.raises(ValueError, match=r"0 \(BatchNorm2d\) needs a 4-D input \(N, C, H, W\).*got input "
                                         r"shape \(5, 3\)$"):
        norm2d(torch.randn(5, 3))
    with pytest.raises(ValueError, match=r"needs more than 1 value per channel"):
        norm2d(torch.randn(1, 3, 1, 1))
    assert norm2d(torch.randn(1, 3, 2, 1)).shape == (1, 3, 2, 1)  # two values per channel
    norm1d = ht.quantize_model(nn.Sequential(nn.BatchNorm1d(3)), "fixed8")
    with pytest.raises(ValueError, match=r"0 \(BatchNorm1d\) needs a 2-D input \(N, C\) \(hwsim's BatchNorm "
                                         r"has no \(N, C, L\) form\)"):
        norm1d(torch.randn(5, 3, 4))


def test_half_precision_model_equals_its_float32_twin_on_exact_values():
    """A float16 model runs (forward, backward, optimizer step) and, where every float16 sum is exact
    (weights on a 1/8 grid, inputs 0..2), gives its float32 twin's outputs and gradients."""
    def make():
        model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        with torch.no_grad():
            for i, p in enumerate(model.parameters()):
                p.copy_(((torch.arange(p.numel()) * 5 + i) % 9 - 4).reshape(p.shape) / 8)
        return model
    x = torch.tensor([[0.0, 1, 2, 1], [2, 0, 1, 1]])
    single = ht.quantize_model(make(), "fixed8")
    half = ht.quantize_model(make().half(), "fixed8")
    y32, y16 = single(x), half(x.half())
    assert y16.dtype == torch.float16 and torch.equal(y16.float(), y32)
    y32.sum().backward()
    y16.sum().backward()
    for p32, p16 in zip(single.parameters(), half.parameters(), strict=True):
        assert p16.grad.dtype == torch.float16 and torch.equal(p16.grad.float(), p32.grad)
    ht.LowPrecisionOptimizer(torch.optim.SGD(half.parameters(), lr=0.125), update="s8.6:stochastic").step()
    assert all(p.dtype == torch.float16 and torch.isfinite(p).all() for p in half.parameters())


def _fused_and_per_module(make, policy):
    """Two copies of a model through quantize_model: one as built (its runs of hwsim modules are one
    autograd node each), one with a forward hook on every child (each child called on its own: one
    node per module); the list counts the hook calls."""
    torch.manual_seed(0)
    fused = ht.quantize_model(make(), policy, update="s16.12:stochastic")
    torch.manual_seed(0)
    single, calls = ht.quantize_model(make(), policy, update="s16.12:stochastic"), []
    for m in single:
        m.register_forward_hook(lambda *_: calls.append(1))
    return fused, single, calls


@pytest.mark.parametrize("make, outputs, input_grad", [
    (lambda: nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Dropout(0.25), nn.Linear(16, 16),
                           nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 5)), 5, False),
    (lambda: nn.Sequential(nn.Flatten(), nn.BatchNorm1d(12), nn.Linear(12, 8), nn.Hardtanh(),
                           nn.Linear(8, 3)), 3, True),
])
def test_run_of_hwsim_modules_as_one_node_gives_the_same_bits(make, outputs, input_grad):
    fused, single, calls = _fused_and_per_module(make, "fixed8")
    assert type(fused).__name__ == "HwsimSequential" and isinstance(fused, nn.Sequential)
    assert list(fused.state_dict()) == list(single.state_dict())
    opts = [ht.LowPrecisionOptimizer(torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9))
            for m in (fused, single)]
    rng = np.random.default_rng(1)
    for step in range(4):
        x = torch.from_numpy(rng.standard_normal((8, 12)).astype(np.float32) * 3)
        dy = torch.from_numpy(rng.standard_normal((8, outputs)).astype(np.float32))
        got = []
        for model, opt in zip((fused, single), opts):
            xi = x.clone().requires_grad_(input_grad)
            opt.zero_grad()
            y = model(xi)
            y.backward(dy)
            opt.step()
            got.append([y.detach().numpy().copy(), None if xi.grad is None else xi.grad.numpy().copy(),
                        *(t.detach().numpy().copy() for t in model.state_dict().values())])
        assert (got[0][1] is None) == (not input_grad)
        for a, b in zip(*got):
            assert (a is None and b is None) or a.tobytes() == b.tobytes()
    assert len(calls) == 4 * len(single)
    assert type(fused(torch.zeros(8, 12)).grad_fn).__name__ == "_RunFunctionBackward"


def test_run_keeps_hwsim_engine_errors_for_any_batch_size():
    """Inside a run the errors stay those of the summed loss, as in hwsim's engine: ×N where the gradient
    enters, ÷N where it leaves. With N = 6 a ÷N and ×N at every module (one node per module) would round
    the full-precision errors of tanh; the run gives hwsim's chained backward bit for bit."""
    model = ht.quantize_model(nn.Sequential(nn.Tanh(), nn.Sigmoid(), nn.Tanh(), nn.Sigmoid()), "fp32")
    net = ht.to_hwsim(model, (7,))
    x = torch.from_numpy(np.random.default_rng(5).standard_normal((6, 7)).astype(np.float32))
    dy = np.random.default_rng(6).standard_normal((6, 7)).astype(np.float32)
    xt = x.clone().requires_grad_()
    model(xt).backward(torch.from_numpy(dy))
    net.forward(x.numpy(), training=True)
    want = net.backward(dy * np.float32(6)) / np.float32(6)
    assert xt.grad.numpy().tobytes() == want.tobytes()


def test_run_of_hwsim_modules_keeps_the_errors():
    model = ht.quantize_model(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), "fp32")
    y = model(torch.randn(2, 3))
    model(torch.randn(2, 3))
    with pytest.raises(RuntimeError, match="'dense2' keeps the state of its last forward only"):
        y.sum().backward()
    model.eval()
    y = model(torch.randn(2, 3))
    with pytest.raises(RuntimeError, match="backward through 'dense2' run in eval mode"):
        y.sum().backward()


def test_scheme_by_name():
    model = ht.quantize_model(nn.Sequential(nn.Linear(4, 2)), "binaryconnect")
    assert model.hwsim_precision.weight.kind == "binary"


@pytest.mark.gpu
def test_cuda_tensors_equal_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    pytest.importorskip("cupy")
    t = torch.randn(1000, device="cuda")
    got = fxp.quantize(t, fxp.Fixed(8, 4), "stochastic", seed=9)
    assert got.device == t.device
    assert got.cpu().numpy().tobytes() == fxp.quantize(t.cpu().numpy(), fxp.Fixed(8, 4), "stochastic",
                                                       seed=9).tobytes()
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4))
    cpu = ht.quantize_model(model, "fixed8", seed=3)
    x = torch.randn(8, 6)
    want = cpu(x).detach()
    gpu = ht.quantize_model(nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4)), "fixed8",
                            seed=3).cuda()
    gpu.load_state_dict(cpu.state_dict())
    assert torch.equal(gpu(x.cuda()).detach().cpu(), want)


# ---------------------------------------------------------------------------- fast paths
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32), n=st.integers(1, 9), step=st.integers(0, 3),
       error=st.sampled_from([None, "s8.6", "s8.4:stochastic"]),
       grad=st.sampled_from([None, "s8.5", "s12.8:stochastic"]), weight=st.sampled_from(["s8.7", "s4.1"]))
def test_first_layer_gradients_without_input_gradient_equal_hwsim_backward(seed, n, step, error, grad,
                                                                          weight):
    # weight s4.1 saturates (range ±4 vs weights up to ±5): the weight mask is not None
    rng = np.random.default_rng(seed)
    precision = hwsim.Precision.from_flags("fp32", seed=seed, weight=weight, activation="s8.4", error=error,
                                           grad=grad)
    W, b = rng.uniform(-5, 5, (7, 5)).astype(np.float32), rng.uniform(-1, 1, 5).astype(np.float32)
    x = (rng.standard_normal((n, 7)) * 4).astype(np.float32)
    dy = (rng.standard_normal((n, 5)) * 3).astype(np.float32)
    plain, fast = hwsim.layers.Dense(7, 5), hwsim.layers.Dense(7, 5)
    for layer in (plain, fast):
        layer.W, layer.b = W.copy(), b.copy()
        layer.precision, layer.index, layer.step = precision, 2, step
        layer.forward(x, training=True)
    plain.backward(dy)
    assert fast._backward_matrix(dy, n, input_grad=False) is None
    assert fast.dW.tobytes() == plain.dW.tobytes() and fast.db.tobytes() == plain.db.tobytes()


def test_input_needing_no_gradient_gives_the_same_parameter_gradients():
    def run(requires_grad):
        torch.manual_seed(0)
        model = ht.quantize_model(nn.Sequential(nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 3)), "fixed8",
                                  error="s8.6:stochastic", seed=3)
        x = torch.linspace(-2, 2, 48).reshape(4, 12).requires_grad_(requires_grad)
        nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2, 1])).backward()
        return [p.grad.numpy().tobytes() for p in model.parameters()], x.grad
    fast, no_dx = run(False)
    plain, dx = run(True)
    assert fast == plain and no_dx is None and dx is not None


def test_linear_weight_stored_in_hwsim_layout_without_copies():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 3))
    w = model[0].weight
    before = w.detach().clone()
    ht.quantize_model(model, "fixed8", update="s16.12:stochastic")
    assert model[0].weight is w and w.shape == (3, 5) and w.stride() == (1, 3) and torch.equal(w, before)
    layer = ht.hwsim_layers(model)[0]
    assert layer.W.flags.c_contiguous and layer.W.ctypes.data == w.data_ptr()
    model(torch.randn(4, 5)).sum().backward()
    assert w.grad.stride() == w.stride()          # hwsim's dW.T, kept by autograd as it is
    opt = ht.LowPrecisionOptimizer(torch.optim.SGD(model.parameters(), lr=0.1))
    opt.step()
    assert w.stride() == (1, 3) and layer.W.ctypes.data == w.data_ptr()
    assert set(model.state_dict()) == {"0.weight", "0.bias"}
