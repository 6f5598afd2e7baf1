"""Sparse (top-k) training path of SparseAutoencoder: kernels and dense/sparse parity (O14)."""

import contextlib
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sparsestat._kernels import sae as K  # noqa: E402
from sparsestat._kernels._dispatch import force_backend, get_kernel  # noqa: E402
from sparsestat.neural import GSAE, AbsTopK, BatchTopK, MutualChoice, SparseAutoencoder, TopK  # noqa: E402
from sparsestat.neural.layers import (  # noqa: E402
    SparseAutoencoderModule,
    auxk_loss,
    densify_codes,
    gather_preactivations,
    make_activation,
    row_topk_indices,
    select_sparse,
    sparse_decode,
)

pytestmark = pytest.mark.torch


def _flat_selection(rng, B, F, k):
    rank = rng.standard_normal((B, F))
    idx = np.argsort(-rank, axis=1)[:, :k]
    rows = np.repeat(np.arange(B), k)
    return rank, idx, rows, idx.reshape(-1)


# --------------------------------------------------------------------------- kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [1, 3, 17])
def test_row_topk_numba_matches_generic_and_argsort(dtype, k):
    rng = np.random.default_rng(k)
    rank = rng.standard_normal((40, 29)).astype(dtype)
    fast = get_kernel("sae_row_topk", rank)(rank, k)
    with force_backend("generic"):
        generic = get_kernel("sae_row_topk", rank)(rank, k)
    oracle = np.argsort(-rank, axis=1, kind="stable")[:, :k]
    assert fast.shape == (40, k)
    np.testing.assert_array_equal(np.sort(fast, 1), np.sort(oracle, 1))
    np.testing.assert_array_equal(np.sort(generic, 1), np.sort(oracle, 1))
    # the generic kernel also runs on torch tensors
    gt = K.row_topk(torch.from_numpy(rank), k)
    np.testing.assert_array_equal(np.sort(gt.numpy(), 1), np.sort(oracle, 1))


def test_row_topk_keeps_masked_entries_last():
    rank = np.array([[-np.inf, 1.0, -np.inf, 0.5, 2.0]])
    assert sorted(K._row_topk(rank, 3)[0].tolist()) == [1, 3, 4]


@pytest.mark.parametrize("signed", [False, True])
def test_masked_topk_keeps_the_k_largest_nonzero_codes_of_the_columns(signed):
    rng = np.random.default_rng(3)
    values = rng.standard_normal((30, 20)) - 0.8  # many rows with few positive entries
    values[3] = -1.0  # a row without any positive entry
    values[4] = -1.0
    values[4, :6] = 0.5  # ties: the earlier columns win
    columns = np.array([0, 1, 2, 3, 4, 5, 7, 11, 12, 19])
    k = 4
    outs = {}
    for backend in ("numba", "generic"):
        with force_backend(backend):
            outs[backend] = get_kernel("sae_masked_topk", values)(values, columns, k, signed)
    for r in range(30):
        code = np.abs(values[r, columns]) if signed else np.maximum(values[r, columns], 0)
        order = np.argsort(-code, kind="stable")[:k]
        want = sorted(columns[order[code[order] > 0]].tolist())
        for backend, (rows, cols) in outs.items():
            assert np.all(np.diff(rows) >= 0)
            assert sorted(cols[rows == r].tolist()) == want, (backend, r)
    assert (outs["numba"][0] == 3).sum() == (0 if not signed else k)
    ties = [0, 1, 2, 3] if not signed else [7, 11, 12, 19]  # signed: |-1| beats 0.5
    assert sorted(outs["numba"][1][outs["numba"][0] == 4].tolist()) == ties


def test_sparse_backward_kernels_match_dense_products():
    rng = np.random.default_rng(0)
    B, F, d, k = 12, 9, 5, 3
    _, _, rows, cols = _flat_selection(rng, B, F, k)
    g_out, xc = rng.standard_normal((B, d)), rng.standard_normal((B, d))
    vals, g_vals = rng.standard_normal(B * k), rng.standard_normal(B * k)
    D, W = rng.standard_normal((F, d)), rng.standard_normal((F, d))
    Z = np.zeros((B, F))
    Z[rows, cols] = vals
    G = np.zeros((B, F))
    G[rows, cols] = g_vals
    # dense oracles: x_hat = Z D  ->  dZ = g D^T at the support, dD = Z^T g
    oracle_dec = ((g_out @ D.T)[rows, cols], Z.T @ g_out)
    oracle_enc = (G @ W, G.T @ xc, G.sum(0))
    for backend in ("numba", "generic"):
        with force_backend(backend):
            dec = get_kernel("sae_sparse_decode_backward", D)(g_out, vals, rows, cols, D)
            enc = get_kernel("sae_sparse_encode_backward", W)(g_vals, rows, cols, xc, W)
        for got, want in zip(dec + enc, oracle_dec + oracle_enc):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # generic kernels on torch tensors
    t = [torch.from_numpy(np.asarray(a)) for a in (g_vals, rows, cols, xc, W)]
    for got, want in zip(K.sparse_encode_backward(*t), oracle_enc):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- O14 parity
CASES = [
    ("topk", lambda: TopK(5)),
    ("abstopk", lambda: AbsTopK(5)),
    ("abstopk-batch", lambda: AbsTopK(5, scope="batch")),
    ("batchtopk", lambda: BatchTopK(5)),
    ("mutual_choice", lambda: MutualChoice(5)),
]


def _module(make, dtype, seed=0):
    torch.manual_seed(seed)
    m = SparseAutoencoderModule(16, 96, make()).to(dtype).train()
    with torch.no_grad():
        m.b_dec.normal_()
        m.b_enc.normal_(0, 0.3)
        m.W_enc.add_(0.2 * torch.randn_like(m.W_enc))
    return m


@pytest.fixture(params=["numba", "generic"])
def kernels(request):
    """Run with the compiled CPU kernels, or inside ``force_backend("generic")``: the torch
    (``embedding_bag``) code that other devices run, here on the CPU."""
    with force_backend("generic") if request.param == "generic" else contextlib.nullcontext():
        yield request.param


@pytest.mark.parametrize("activation, make", CASES)
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_sparse_forward_and_gradients_equal_dense(activation, make, dtype, tol, kernels):
    x = torch.randn(48, 16, dtype=torch.float64).to(dtype) * 2
    grads, outs = [], []
    for sparse in (False, True):
        m = _module(make, dtype)
        if sparse:
            x_hat, (vals, rows, cols, _), pre = m.forward_sparse(x)
            z = densify_codes(vals, rows, cols, pre.shape)
        else:
            x_hat, z, pre = m(x)
        loss = (x - x_hat).square().sum(1).mean() + 0.1 * z.abs().sum(1).mean()
        loss.backward()
        grads.append([p.grad for p in m.parameters()])
        outs.append((x_hat.detach(), z.detach(), getattr(m.act, "threshold", None)))
    (xh0, z0, t0), (xh1, z1, t1) = outs
    scale = float(x.abs().max())
    assert torch.allclose(z0, z1, rtol=tol, atol=tol * scale)
    assert torch.allclose(xh0, xh1, rtol=tol, atol=tol * scale)
    if t0 is not None:
        assert torch.allclose(t0, t1, rtol=tol, atol=tol)
    for g0, g1 in zip(*grads):
        assert torch.allclose(g0, g1, rtol=tol, atol=tol * float(g0.abs().max()))
    if activation == "topk":  # exactly k codes per row, nonnegative
        assert bool(((z1 != 0).sum(1) == 5).all()) and bool((z1 >= 0).all())


@pytest.mark.parametrize("signed", [False, True])
def test_sparse_auxk_equals_dense(signed, kernels):
    torch.manual_seed(1)
    B, F, d = 32, 40, 8
    x = torch.randn(B, d, dtype=torch.float64)
    params = [torch.randn(F, d, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    b_enc = torch.randn(F, dtype=torch.float64, requires_grad=True)
    b_dec = torch.randn(d, dtype=torch.float64, requires_grad=True)
    W_enc, W_dec = params
    residual = torch.randn(B, d, dtype=torch.float64)
    mask = torch.rand(F) < 0.4
    results = []
    for sparse in (False, True):
        xc = x - b_dec
        pre = xc @ W_enc.T + b_enc
        enc = (xc, W_enc, b_enc) if sparse else None
        pre_in = pre.detach() if sparse else pre
        loss = auxk_loss(pre_in, residual, W_dec, mask, 6, signed=signed, encoder=enc)
        gs = torch.autograd.grad(loss, [W_enc, W_dec, b_enc, b_dec])
        results.append((loss.detach(), gs))
    (l0, g0), (l1, g1) = results
    assert torch.allclose(l0, l1, rtol=1e-10)
    for a, b in zip(g0, g1):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


def test_gsae_scores_select_the_same_latents_on_both_paths():
    m = _module(lambda: GSAE(TopK(5), beta=5.0), torch.float64)
    x, g = torch.randn(20, 16, dtype=torch.float64), torch.randn(20, 16, dtype=torch.float64)
    _, z, _ = m(x, grad=g)
    _, (vals, rows, cols, _), pre = m.forward_sparse(x, grad=g)
    assert torch.allclose(z, densify_codes(vals, rows, cols, pre.shape))
    _, plain, _ = m(x)  # without gradients: the base TopK
    assert not torch.equal(z, plain)
    torch.testing.assert_close(plain, _module(lambda: TopK(5), torch.float64)(x)[1])


def test_select_sparse_and_decode_helpers():
    pre = torch.tensor([[3.0, -1.0, 2.0], [0.5, 4.0, -2.0]])
    rows, cols, offsets = select_sparse(pre, 1, scope="batch")  # 2 entries in total
    assert rows.tolist() == [0, 1] and sorted(cols.tolist()) == [0, 1]
    assert offsets.tolist() == [0, 1]
    zeros = torch.zeros(2, 3), torch.zeros(3, 3)
    vals = gather_preactivations(*zeros, None, pre, rows, cols, offsets)
    assert vals.tolist() == [3.0, 4.0]
    out = sparse_decode(vals, rows, cols, offsets, torch.eye(3), torch.ones(3))
    assert out.tolist() == [[4.0, 1.0, 1.0], [1.0, 5.0, 1.0]]
    assert sorted(row_topk_indices(pre, 2)[1].tolist()) == [0, 1]


# --------------------------------------------------------------------------- estimator
def _data():
    rng = np.random.RandomState(0)
    return rng.standard_normal((600, 12)).astype(np.float32)


@pytest.mark.parametrize("activation", ["topk", "batchtopk", "abstopk"])
def test_estimator_sparse_path_matches_dense_path(activation):
    X = _data()
    kw = {"n_components": 48, "activation": make_activation(activation).set_params(k=3)}
    kw["batch_size"] = 128
    kw["max_epochs"] = 2
    fits = [
        SparseAutoencoder(**kw, sparse_path=flag, random_state=0).fit(X) for flag in (False, True)
    ]
    a, b = fits
    np.testing.assert_allclose(a.components_, b.components_, atol=2e-4)
    np.testing.assert_allclose(a.history_[-1]["fvu"], b.history_[-1]["fvu"], rtol=1e-3)
    np.testing.assert_array_equal(a.dead_latents_, b.dead_latents_)
    np.testing.assert_allclose(a.feature_density_, b.feature_density_)


def test_sparse_path_auto_choice():
    X = _data()
    auto = SparseAutoencoder(24, activation=TopK(3), max_epochs=1, random_state=0).fit(X)
    assert auto._use_sparse_path()  # topk on the CPU
    for kw in (
        {"activation": "jumprelu"},
        {"activation": TopK(3, multi_topk=True)},
        {"sparse_path": False},
    ):
        est = SparseAutoencoder(24, max_epochs=1, random_state=0, **kw).fit(X)
        assert not est._use_sparse_path()


def test_fit_does_not_import_torch_dynamo():
    code = (
        "import sys, numpy as np\n"
        "from sparsestat.neural import SparseAutoencoder\n"
        "est = SparseAutoencoder(8, max_epochs=2, random_state=0)\n"
        "est.fit(np.random.RandomState(0).rand(64, 4))\n"
        "est.partial_fit(np.random.RandomState(1).rand(64, 4))\n"
        "import pickle; pickle.loads(pickle.dumps(est)).partial_fit(np.ones((8, 4)))\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_sparse_input_trains_per_minibatch_like_dense_input():
    import scipy.sparse as sp

    rng = np.random.RandomState(3)
    X = rng.standard_normal((300, 20)) * (rng.rand(300, 20) < 0.2)
    kw = {"n_components": 40, "activation": TopK(3), "batch_size": 64, "max_epochs": 2}
    kw["random_state"] = 0
    dense = SparseAutoencoder(**kw).fit(X)
    csr = SparseAutoencoder(**kw).fit(sp.csr_matrix(X))
    np.testing.assert_array_equal(dense.components_, csr.components_)
    np.testing.assert_array_equal(dense.transform(X), csr.transform(sp.csr_matrix(X)))
    csr.partial_fit(sp.csr_matrix(X[:50]))  # partial_fit on sparse chunks
    assert csr.n_iter_ == 3


# --------------------------------------------------------------------------- manual step
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("scope", ["row", "batch"])
def test_step_grads_kernel_matches_autograd(relu, scope):
    rng = np.random.default_rng(5)
    B, F, d, k = 14, 23, 6, 4
    xc, target = rng.standard_normal((B, d)), rng.standard_normal((B, d))
    W, D, b = rng.standard_normal((F, d)), rng.standard_normal((F, d)), rng.standard_normal(F)
    pre = xc @ W.T + b
    rows, cols, _ = select_sparse(torch.from_numpy(pre), k, scope=scope, signed=not relu)
    rows, cols = rows.numpy(), cols.numpy()
    # autograd oracle on dense tensors
    t = {n: torch.tensor(a, requires_grad=True) for n, a in zip("xWDb", (xc, W, D, b))}
    v = (t["x"] @ t["W"].T + t["b"])[torch.from_numpy(rows), torch.from_numpy(cols)]
    v = torch.relu(v) if relu else v
    z = torch.zeros(B, F, dtype=torch.float64).index_put(
        (torch.from_numpy(rows), torch.from_numpy(cols)), v
    )
    resid = z @ t["D"] - torch.from_numpy(target)
    loss = 0.7 * resid.square().sum()
    loss.backward()
    want = [loss.item(), resid.detach()] + [t[n].grad for n in "WbDx"]
    for backend in ("numba", "generic"):
        with force_backend(backend):
            got = get_kernel("sae_step_grads", xc)(xc, target, pre, rows, cols, W, D, 0.7, relu)
        for g, w in zip(got, want):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-10, atol=1e-12)
    # the generic kernel on torch tensors
    args = [torch.from_numpy(np.asarray(a)) for a in (xc, target, pre, rows, cols, W, D)]
    got = K.sparse_step_grads(*args, 0.7, relu)
    for g, w in zip(got[1:], want[1:]):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("activation", ["topk", "batchtopk", "abstopk", "mutual_choice"])
@pytest.mark.parametrize("dead", [False, True])
def test_manual_step_equals_autograd_step_float64(activation, dead):
    """The autograd-free training step: same loss, gradients (after projection and
    clipping), threshold and firing counts as the autograd sparse path, to 1e-10."""
    X = _data()
    act = make_activation(activation).set_params(k=3)
    est = SparseAutoencoder(48, activation=act, max_epochs=1, random_state=0)
    est.fit(X)
    est.module_.double().train()
    xb = torch.from_numpy(X[:128].astype(np.float64))
    if dead:  # some latents dead: the AuxK term is active
        est._since_fired[::3] = est._dead_after
    results = []
    for manual in (True, False):
        m = est.module_
        state = {k: v.clone() for k, v in m.state_dict().items()}
        est._use_manual_step = lambda manual=manual: manual
        for p in m.parameters():
            p.grad = None
        loss = est._batch_loss(xb, None, X.shape[0])
        if not manual:
            loss.backward()
        est.on_grad_computed(xb, None)
        grads = [p.grad.clone() for p in m.parameters()]
        results.append((float(loss.detach()), grads, est._last_batch, m.state_dict()))
        m.load_state_dict(state)
    (l0, g0, b0, s0), (l1, g1, b1, s1) = results
    assert l0 == pytest.approx(l1, rel=1e-10)
    for a, b in zip(g0, g1):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b0[0].numpy(), b1[0].numpy(), rtol=1e-10)
    np.testing.assert_array_equal(b0[1].numpy(), b1[1].numpy())
    for key in s0:
        np.testing.assert_allclose(s0[key].numpy(), s1[key].numpy(), rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flat_topk_fast_matches_generic_with_ties(dtype):
    rng = np.random.default_rng(2)
    v = np.maximum(rng.standard_normal(3000), 0).astype(dtype)  # many tied zeros
    for k in (1, 64, 1500, 2000, 3000):  # 2000 and 3000 reach into the zeros
        fast = get_kernel("sae_flat_topk", v)(v, k)
        with force_backend("generic"):
            generic = get_kernel("sae_flat_topk", v)(v, k)
        np.testing.assert_array_equal(fast, generic)
        assert np.all(np.diff(fast) > 0)
        np.testing.assert_array_equal(np.sort(v[fast]), np.sort(v)[-k:])
    np.testing.assert_array_equal(K.flat_topk(torch.from_numpy(v), 64).numpy(), K.flat_topk(v, 64))


# --------------------------------------------------------------------------- device paths
def _to_numpy(x):
    return np.asarray(x.cpu() if hasattr(x, "cpu") else x)


@pytest.mark.parametrize("lib", ["array_api_strict", "torch"])
def test_generic_kernels_on_other_array_libraries_equal_numba(lib):
    """The generic (array-API) kernels, which CuPy / CUDA tensors would run, on
    array_api_strict and torch CPU tensors, against the compiled versions on NumPy."""
    if lib == "array_api_strict":
        xps = pytest.importorskip("array_api_strict")
        conv = xps.asarray
    else:
        conv = torch.from_numpy
    rng = np.random.default_rng(7)
    B, F, d, k = 16, 11, 6, 3
    rank, _, rows, cols = _flat_selection(rng, B, F, k)
    g_out, xc = rng.standard_normal((B, d)), rng.standard_normal((B, d))
    vals, g_vals = rng.standard_normal(B * k), rng.standard_normal(B * k)
    D, W = rng.standard_normal((F, d)), rng.standard_normal((F, d))
    pre = xc @ W.T + rng.standard_normal(F)
    cases = {
        "sae_row_topk": (rank, k),
        "sae_flat_topk": (rank.reshape(-1), 20),
        "sae_sparse_decode_backward": (g_out, vals, rows, cols, D),
        "sae_sparse_encode_backward": (g_vals, rows, cols, xc, W),
        "sae_step_grads": (xc, g_out, pre, rows, cols, W, D, 0.3, True),
        "sae_masked_topk": (pre, np.array([0, 2, 3, 7, 10]), 2, False),
    }
    for name, args in cases.items():
        with force_backend("numba"):
            want = get_kernel(name, args[0])(*args)
        converted = [conv(a) if isinstance(a, np.ndarray) else a for a in args]
        got = get_kernel(name, converted[0])(*converted)
        want = want if isinstance(want, tuple) else (want,)
        got = got if isinstance(got, tuple) else (got,)
        if name == "sae_masked_topk":  # the same (row, column) pairs, in any order in a row
            pairs = [sorted(zip(*(_to_numpy(a).tolist() for a in out))) for out in (got, want)]
            assert pairs[0] == pairs[1], name
            continue
        for g, w in zip(got, want):
            g, w = _to_numpy(g) if not np.isscalar(g) else g, np.asarray(w)
            if name == "sae_row_topk":  # the same set per row
                g, w = np.sort(g, 1), np.sort(w, 1)
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12, err_msg=name)
    from sparsestat._kernels.geomedian import geometric_median

    reps = rng.integers(1, 4, size=B)
    weighted = _to_numpy(geometric_median(conv(xc), weights=conv(reps.astype(float))))
    np.testing.assert_allclose(weighted, geometric_median(np.repeat(xc, reps, axis=0)), atol=1e-9)


@pytest.mark.parametrize("activation", ["topk", "batchtopk", "abstopk"])
def test_estimator_device_path_on_the_cpu_equals_the_compiled_path(activation):
    """Inside ``force_backend("generic")`` the CPU takes the path of CUDA devices (autograd
    through ``embedding_bag`` and ``torch.topk``, no compiled step): same training to float32
    rounding."""
    X = _data()
    kw = {"n_components": 48, "activation": make_activation(activation).set_params(k=3)}
    kw.update(batch_size=128, max_epochs=2, random_state=0)
    compiled = SparseAutoencoder(**kw).fit(X)
    assert compiled._use_manual_step()
    with force_backend("generic"):
        device = SparseAutoencoder(**kw).fit(X)
        assert not device._use_manual_step() and device._use_sparse_path()
        Z_device = device.transform(X)
    np.testing.assert_allclose(device.components_, compiled.components_, atol=2e-4)
    np.testing.assert_allclose(device.history_[-1]["fvu"], compiled.history_[-1]["fvu"], rtol=1e-3)
    np.testing.assert_allclose(Z_device, compiled.transform(X), atol=2e-3)
