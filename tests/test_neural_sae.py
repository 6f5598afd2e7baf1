"""Oracles of the sparse-autoencoder spec (O1-O18) and scikit-learn integration."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import scipy.sparse as sp  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

from sparsestat.datasets import make_planted_features  # noqa: E402
from sparsestat.metrics import fvu, mmcs  # noqa: E402
from sparsestat.neural import (  # noqa: E402
    GSAE,
    AbsTopK,
    FeatureChoice,
    JumpReLU,
    MatchingPursuit,
    ReLU,
    SparseAutoencoder,
    TopK,
)
from sparsestat.neural.layers import (  # noqa: E402
    MutualChoice,
    SparseAutoencoderModule,
    abs_topk,
    auxk_loss,
    batch_topk,
    feature_choice,
    feature_choice_capacities,
    jumprelu,
    make_activation,
    matching_pursuit,
    project_decoder_grad_,
    top_afa,
    topk_relu,
)

pytestmark = pytest.mark.torch

FAST = {"max_epochs": 2, "batch_size": 128, "random_state": 0}


@pytest.fixture(scope="module")
def planted():
    return make_planted_features(3000, 16, 32, random_state=0)


@pytest.fixture(scope="module")
def planted_signed():
    return make_planted_features(3000, 16, 32, kind="signed", random_state=0)


def _pre_numpy(sae, X):
    """Pre-activations from the fitted attributes (independent NumPy reference)."""
    return (X * sae.input_scale_ - sae.decoder_bias_) @ sae.encoder_weight_.T + sae.encoder_bias_


# ------------------------------------------------------------------ O1 TopK
def test_topk_rows_exact_k_at_largest_relu(planted):
    X = planted[0]
    sae = SparseAutoencoder(64, activation=TopK(3), **FAST).fit(X)
    Z = sae.transform(X[:300])
    pre = _pre_numpy(sae, X[:300])
    ref = np.zeros_like(pre)
    top = np.argsort(-pre, axis=1)[:, :3]
    np.put_along_axis(ref, top, np.maximum(np.take_along_axis(pre, top, 1), 0), axis=1)
    np.testing.assert_allclose(Z, ref, atol=1e-6)
    positive_rows = (pre > 0).sum(1) >= 3
    assert positive_rows.mean() > 0.9
    assert np.all((Z[positive_rows] != 0).sum(1) == 3)
    assert Z.min() >= 0


def test_topk_relu_exact_k_and_scores():
    pre = torch.randn(20, 12) + 5.0
    z = topk_relu(pre, 4)
    assert torch.all((z != 0).sum(1) == 4)
    ref = torch.zeros_like(pre).scatter(1, pre.topk(4, dim=1).indices, pre.topk(4, dim=1).values)
    torch.testing.assert_close(z, ref)


# ------------------------------------------------------------------ O2-O4 BatchTopK / MC
def _skewed_block():
    gen = torch.Generator().manual_seed(0)
    pre = torch.rand(8, 10, generator=gen) + 0.1
    pre[0] += 10.0  # one row with huge pre-activations
    return pre


def test_batch_topk_total_budget_rows_vary():
    pre = _skewed_block()
    z = batch_topk(pre, 3)
    counts = (z != 0).sum(1)
    assert int(counts.sum()) == 3 * 8
    assert int(counts[0]) == 10 and int(counts.min()) < 3
    kept = z[z != 0]
    assert float(kept.min()) >= float(pre[z == 0].max())


def test_mutual_choice_budget_and_differs_from_topk():
    pre = _skewed_block()
    z = MutualChoice(3)(pre)
    assert int((z != 0).sum()) == 24
    assert not torch.equal(z, topk_relu(pre, 3))


@pytest.mark.parametrize("activation", ["batchtopk", "mutual_choice", "feature_choice"])
def test_threshold_inference_batch_independent(planted, activation):
    X = planted[0]
    sae = SparseAutoencoder(32, activation=make_activation(activation).set_params(k=3), **FAST).fit(
        X
    )
    Xs = X[:40]
    Z = sae.transform(Xs)
    rows = np.vstack([sae.transform(Xs[i : i + 1]) for i in range(len(Xs))])
    np.testing.assert_array_equal(Z != 0, rows != 0)
    np.testing.assert_allclose(Z, rows, rtol=1e-12)
    pre = _pre_numpy(sae, Xs)
    np.testing.assert_allclose(Z, pre * (pre > sae.threshold_), atol=1e-6)


# ------------------------------------------------------------------ O5 Feature Choice
def test_feature_choice_column_caps():
    gen = torch.Generator().manual_seed(1)
    pre = torch.randn(12, 6, generator=gen)
    pre[:, 0] = -1.0  # a column with no positives
    caps = feature_choice_capacities(6, 2 * 12)
    assert caps.tolist() == [4] * 6
    z = feature_choice(pre, caps)
    nnz = (z != 0).sum(0)
    pos = (pre > 0).sum(0)
    assert torch.all(nnz <= caps)
    assert torch.all(nnz[pos >= 4] == 4)
    assert int(nnz[0]) == 0 and int(nnz.sum()) <= 24
    zipf = feature_choice_capacities(6, 24, "zipf", density=torch.arange(6.0))
    assert int(zipf.sum()) == 24 and int(zipf.min()) >= 1 and int(zipf[5]) == int(zipf.max())


def test_feature_choice_budget_error_and_no_dead(planted):
    X = planted[0]
    with pytest.raises(ValueError, match="k \\* batch_size"):
        SparseAutoencoder(64, activation=FeatureChoice(1), batch_size=16).fit(X[:200])
    sae = SparseAutoencoder(32, activation=FeatureChoice(4), max_epochs=1, batch_size=128)
    sae.set_params(random_state=0).fit(X)
    assert sae.dead_latents_.sum() == 0


# ------------------------------------------------------------------ O6 AbsTopK
def test_abs_topk_keeps_signs():
    gen = torch.Generator().manual_seed(2)
    pre = torch.randn(30, 10, generator=gen)
    z = abs_topk(pre, 3)
    nz = z != 0
    assert torch.all(nz.sum(1) == 3)
    torch.testing.assert_close(z[nz], pre[nz])
    kept_min = torch.where(nz, pre.abs(), torch.inf).min(1).values
    dropped_max = torch.where(nz, -torch.inf, pre.abs()).max(1).values
    assert torch.all(kept_min >= dropped_max)
    assert bool((z < 0).any())


def test_abstopk_negative_codes_on_signed_data(planted_signed):
    X = planted_signed[0]
    Z = SparseAutoencoder(32, activation=AbsTopK(4), **FAST).fit(X).transform(X)
    assert np.all((Z != 0).sum(1) == 4)
    assert (Z < 0).sum() / (Z != 0).sum() > 0.3


# ------------------------------------------------------------------ O8 matching pursuit
def test_matching_pursuit_residuals():
    gen = torch.Generator().manual_seed(3)
    D = torch.randn(40, 12, generator=gen, dtype=torch.float64)
    D /= D.norm(dim=1, keepdim=True)
    x = torch.randn(25, 12, generator=gen, dtype=torch.float64)
    z, r, norms = matching_pursuit(x, D, 6, return_norms=True)
    assert torch.all(norms[1:] <= norms[:-1] + 1e-6 * norms[0])
    assert torch.all((z != 0).sum(1) <= 6) and torch.all(z >= 0)
    torch.testing.assert_close(r, x - z @ D)
    zs, rs, ns = matching_pursuit(x, D, 6, signed=True, return_norms=True)
    # energy decreases by alpha_t^2 at every step, residual orthogonal to the last atom
    one, r1, n1 = matching_pursuit(x, D, 1, signed=True, return_norms=True)
    alpha = one.abs().sum(1)
    torch.testing.assert_close(n1[1] ** 2, n1[0] ** 2 - alpha**2, rtol=1e-5, atol=1e-10)
    j = one.abs().argmax(1)
    assert float((r1 * D[j]).sum(1).abs().max()) < 1e-5
    assert torch.all(ns[1:] <= ns[:-1] + 1e-9)


def test_mp_estimator_more_steps_and_tolerance(planted):
    X = planted[0]
    sae = SparseAutoencoder(32, activation=MatchingPursuit(3), **FAST).fit(X)
    Z = sae.transform(X)
    assert np.all((Z != 0).sum(1) <= 3)
    fvu_k = fvu(X, sae.inverse_transform(Z))
    fvu_2k = fvu(X, sae.inverse_transform(sae.transform(X, k=6)))
    assert fvu_2k <= fvu_k
    np.testing.assert_allclose(sae.encoder_weight_, sae.components_)
    Zt = sae.set_params(activation__tol=0.5, activation__max_iter=10).transform(X)
    assert len(np.unique((Zt != 0).sum(1))) > 1


# ------------------------------------------------------------------ O9 top-AFA
def _afa_k_numpy(a, xnorm):
    s = np.sort(a**2, axis=1)[:, ::-1]
    c = np.sqrt(np.cumsum(s, axis=1))
    c[:, -1] = np.finfo(np.float64).max
    return np.abs(c - xnorm[:, None]).argmin(1) + 1


def test_top_afa_k_formula_and_scale_invariance():
    gen = torch.Generator().manual_seed(4)
    W = torch.randn(24, 8, generator=gen, dtype=torch.float64)
    W /= W.norm(dim=1, keepdim=True)
    x = torch.randn(30, 8, generator=gen, dtype=torch.float64)
    a = torch.relu(x @ W.T)
    z, k = top_afa(a, x.norm(dim=1))
    np.testing.assert_array_equal(k.numpy(), _afa_k_numpy(a.numpy(), x.norm(dim=1).numpy()))
    assert len(torch.unique(k)) > 1
    assert torch.all((z != 0).sum(1) <= k)
    for c in (0.5, 2.0, 10.0):
        _, kc = top_afa(torch.relu(c * x @ W.T), (c * x).norm(dim=1))
        torch.testing.assert_close(kc, k)


# ------------------------------------------------------------------ O10 JumpReLU
def test_jumprelu_values_and_threshold_gradient():
    pre = torch.tensor([[0.50, 1.00, 1.02, 2.0], [0.1, 0.2, 0.3, 0.4]], requires_grad=True)
    theta = torch.tensor([1.0, 1.0, 1.0, 1.0], requires_grad=True)
    z = jumprelu(pre, theta, bandwidth=0.05)
    assert torch.all((z == 0) | (z == pre))
    z.sum().backward()
    near = ((pre - theta).abs() < 0.025).any(0)
    assert torch.all((theta.grad != 0) == near)
    assert bool(near.any())


@pytest.mark.slow
def test_jumprelu_target_l0_reaches_k():
    X, _, atoms = make_planted_features(20000, 64, 128, random_state=0)
    sae = SparseAutoencoder(
        128, activation=JumpReLU(4), max_epochs=6, batch_size=256, random_state=0
    ).fit(X)
    assert 2.0 <= sae.history_[-1]["l0"] <= 6.0
    Z = sae.transform(X[:500])
    pre = _pre_numpy(sae, X[:500])
    np.testing.assert_allclose(Z, np.where(pre > sae.threshold_, pre, 0.0), atol=1e-6)
    small = clone(sae).set_params(activation=JumpReLU(4, init_threshold=0.01)).fit(X)
    assert small.history_[-1]["l0"] > 8.0  # SAELens' initial threshold barely sparsifies


# ------------------------------------------------------------------ O11 relu_l1
def test_relu_l1_sparsity_decreases_with_coef(planted):
    X = planted[0]
    l0 = []
    for coef in (1.0, 5.0, 25.0):
        sae = SparseAutoencoder(
            32, activation=ReLU(alpha=coef), max_epochs=3, batch_size=64, random_state=0
        )
        Z = sae.fit(X).transform(X)
        assert Z.min() >= 0
        l0.append((Z != 0).sum(1).mean())
    assert l0[0] > l0[1] > l0[2]


# ------------------------------------------------------------------ O12 decoder constraint
def test_decoder_unit_norm_projection_and_init(planted):
    m = SparseAutoencoderModule(16, 32, TopK(3))
    torch.testing.assert_close(m.W_enc, m.W_dec)
    m.W_dec.grad = torch.randn(32, 16)
    project_decoder_grad_(m.W_dec)
    assert float((m.W_dec.grad * m.W_dec.detach()).sum(1).abs().max()) < 1e-5
    sae = SparseAutoencoder(32, activation=TopK(3), **FAST).fit(planted[0])
    np.testing.assert_allclose(np.linalg.norm(sae.components_, axis=1), 1.0, atol=1e-5)
    relu = SparseAutoencoderModule(16, 32, "relu_l1")
    np.testing.assert_allclose(relu.W_dec.norm(dim=1).detach().numpy(), 0.1, rtol=1e-5)


# ------------------------------------------------------------------ O13 AuxK
def test_auxk_loss_properties():
    gen = torch.Generator().manual_seed(5)
    pre = torch.randn(16, 10, generator=gen).requires_grad_(True)
    D = torch.randn(10, 6, generator=gen).requires_grad_(True)
    resid = torch.randn(16, 6, generator=gen).requires_grad_(True)
    none = torch.zeros(10, dtype=torch.bool)
    assert float(auxk_loss(pre, resid, D, none, 3)) == 0.0
    dead = torch.ones(10, dtype=torch.bool)
    loss = auxk_loss(pre, resid, D, dead, 3)
    loss.backward()
    assert resid.grad is None  # the residual target is detached
    assert D.grad is not None and float(D.grad.abs().sum()) > 0
    # an independent computation with and without a (wrong) decoder bias in e_hat
    a = torch.relu(pre.detach())
    idx = a.topk(3, dim=1).indices
    z = torch.zeros_like(a).scatter(1, idx, a.gather(1, idx))
    e = resid.detach()
    denom = (e - e.mean(0)).square().sum()
    ref = ((z @ D.detach() - e).square().sum() / denom) * min(10 / 3, 1.0)
    torch.testing.assert_close(loss.detach(), ref)
    b = torch.full((6,), 0.5)
    wrong = (z @ D.detach() + b - e).square().sum() / denom
    assert abs(float(wrong) - float(ref)) > 1e-3


def test_auxk_revives_forced_dead_latents():
    X = make_planted_features(8000, 16, 48, random_state=1)[0]
    dead_after = {}
    for aux in (0.0, 0.25):
        sae = SparseAutoencoder(
            48,
            activation=TopK(4),
            max_epochs=1,
            batch_size=128,
            aux_coef=aux,
            dead_after=500,
            warm_start=True,
            random_state=0,
        ).fit(X)
        with torch.no_grad():
            sae.module_.b_enc[:24] -= 3.0  # make half of the latents dead
        sae.fit(X)
        before = sae.dead_latents_.sum()
        sae.set_params(max_epochs=3).fit(X)
        dead_after[aux] = sae.dead_latents_.sum()
        assert before == 24
    assert dead_after[0.0] == 24
    assert dead_after[0.25] <= 22


# ------------------------------------------------------------------ O15 contract
def test_transform_inverse_score_sparse_pickle(planted):
    X = planted[0][:1000]
    sae = SparseAutoencoder(32, activation=TopK(3), **FAST).fit(X)
    Z = sae.transform(X)
    X_hat = sae.inverse_transform(Z)
    assert sae.score(X) == pytest.approx(1 - fvu(X, X_hat), rel=1e-10)
    Zs = clone(sae).set_params(sparse_output=True).fit(X).transform(X)
    assert sp.isspmatrix_csr(Zs) or sp.issparse(Zs)
    np.testing.assert_array_equal(Zs.toarray(), Z)
    assert Zs.nnz == (Z != 0).sum()
    np.testing.assert_allclose(sae.inverse_transform(Zs), X_hat, atol=1e-12)
    again = pickle.loads(pickle.dumps(sae))
    np.testing.assert_array_equal(again.transform(X), Z)
    twin = clone(sae).fit(X)
    np.testing.assert_array_equal(twin.components_, sae.components_)
    np.testing.assert_allclose(sae.transform(sp.csr_matrix(X)), Z, atol=1e-12)
    with pytest.raises(ValueError):
        sae.transform(X[:, :5])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        sae.transform(bad)


def test_float32_in_float32_out(planted):
    X = planted[0][:500].astype(np.float32)
    Z = SparseAutoencoder(16, activation=TopK(2), **FAST).fit(X).transform(X)
    assert Z.dtype == np.float32


# ------------------------------------------------------------------ O16 partial_fit
def test_partial_fit_equals_one_epoch_and_improves(planted):
    X = planted[0]
    one = SparseAutoencoder(32, activation=TopK(3), max_epochs=1, batch_size=128, random_state=0)
    one.fit(X)
    part = SparseAutoencoder(32, activation=TopK(3), batch_size=128, random_state=0)
    part.partial_fit(X)
    np.testing.assert_array_equal(part.components_, one.components_)
    inc = SparseAutoencoder(32, activation=TopK(3), batch_size=128, random_state=0)
    inc.partial_fit(X[:1500])
    first = inc.score(X)
    inc.partial_fit(X[1500:])
    inc.partial_fit(X[:1500])
    assert inc.score(X) > first


# ------------------------------------------------------------------ O17 planted recovery
def test_planted_recovery_topk():
    X, _, atoms = make_planted_features(12000, 64, 128, random_state=0)
    sae = SparseAutoencoder(128, activation=TopK(4), max_epochs=8, batch_size=256, random_state=0)
    sae.fit(X)
    assert mmcs(atoms, sae.components_) > 0.9
    assert sae.history_[-1]["fvu"] < sae.history_[0]["fvu"]


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["topk", "batchtopk", "mutual_choice", "feature_choice"])
def test_planted_recovery_b1_full(activation):
    X, _, atoms = make_planted_features(50000, 64, 128, random_state=0)
    sae = SparseAutoencoder(
        128,
        activation=make_activation(activation).set_params(k=4),
        max_epochs=10,
        batch_size=512,
        random_state=0,
    ).fit(X)
    assert mmcs(atoms, sae.components_) >= 0.9


@pytest.mark.slow
def test_abstopk_beats_topk_on_signed_features():
    X, _, atoms = make_planted_features(22000, 64, 128, kind="signed", random_state=0)
    Xtr, Xte = X[:20000], X[20000:]
    res = {}
    for act in ("topk", "abstopk"):
        sae = SparseAutoencoder(
            128,
            activation=make_activation(act).set_params(k=4),
            max_epochs=6,
            batch_size=256,
            random_state=0,
        ).fit(Xtr)
        res[act] = (fvu(Xte, sae.inverse_transform(sae.transform(Xte))), sae.components_)
    assert res["abstopk"][0] <= 0.7 * res["topk"][0]
    assert mmcs(atoms, res["abstopk"][1]) >= 0.9


# ------------------------------------------------------------------ O18 g-SAE
def test_gsae_beta_zero_is_topk_and_gradient_steers(planted):
    X = planted[0][:1000]
    G = np.random.default_rng(0).standard_normal(X.shape)
    base = SparseAutoencoder(32, activation=TopK(3), **FAST).fit(X)
    zero = SparseAutoencoder(32, activation=GSAE(TopK(3), beta=0.0), **FAST)
    zero.fit(X, sample_gradients=G)
    np.testing.assert_array_equal(base.components_, zero.components_)
    # F < d: a gradient g with g @ components_.T = e_t exists, concentrated on latent t
    gsae = SparseAutoencoder(8, activation=GSAE(TopK(2), beta=1000.0), **FAST)
    gsae.fit(X, sample_gradients=G)
    D = gsae.components_
    pre = _pre_numpy(gsae, X)
    target = int(np.argmax((pre > 0).mean(0)))
    g = np.linalg.solve(D @ D.T, np.eye(8)[target]) @ D
    np.testing.assert_allclose(g @ D.T, np.eye(8)[target], atol=1e-8)
    Z = gsae.transform(X, sample_gradients=np.tile(g, (X.shape[0], 1)))
    rows = pre[:, target] > 1e-2 * pre.max(1)
    assert rows.mean() > 0.3
    assert np.all(Z[rows, target] != 0)
    nz = Z != 0
    np.testing.assert_allclose(Z[nz], np.maximum(pre, 0)[nz], atol=1e-6)
    plain = gsae.transform(X, sample_gradients=np.zeros_like(X))
    assert not np.all(plain[rows, target] != 0)  # without the gradient it is not always kept
    calls = []

    def grad_fn(batch):
        calls.append(batch.shape)
        return np.ones_like(batch)

    act = GSAE(TopK(3), beta=1.0, gradient_fn=grad_fn)
    SparseAutoencoder(32, activation=act, **FAST).fit(X)
    assert calls and calls[0][1] == X.shape[1]
    with pytest.warns(UserWarning, match="sample_gradients"):
        gsae.transform(X[:5])


# ------------------------------------------------------------------ integration
def test_pipeline_classifier_and_set_output():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    pipe = make_pipeline(
        SparseAutoencoder(128, activation=TopK(8), max_epochs=3, batch_size=128, random_state=0),
        LogisticRegression(max_iter=300),
    ).fit(X[:1200], y[:1200])
    assert pipe.score(X[1200:], y[1200:]) > 0.8
    pd = pytest.importorskip("pandas")
    sae = SparseAutoencoder(8, activation=TopK(2), **FAST).set_output(transform="pandas")
    out = sae.fit(X[:300]).transform(X[:300])
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns[:2]) == ["sparseautoencoder0", "sparseautoencoder1"]


def test_history_and_attributes(planted):
    sae = SparseAutoencoder(32, activation=TopK(3), **FAST).fit(planted[0])
    assert len(sae.history_) == 2 and sae.n_iter_ == 2
    for key in ("fvu", "l0", "dead_fraction", "seconds", "samples_per_s"):
        assert key in sae.history_[-1]
    assert sae.history_[-1]["l0"] == pytest.approx(3.0)
    assert sae.feature_density_.shape == (32,)
    assert sae.encode_topk(planted[0][:5])[1].shape == (5, 3)
    X, _, atoms = planted
    ev = sae.evaluate(X[:500], true_components=atoms)
    X_hat = sae.inverse_transform(sae.transform(X[:500]))
    assert ev["fvu"] == pytest.approx(1 - sae.score(X[:500]))
    nmse_ref = np.mean(((X[:500] - X_hat) ** 2).sum(1) / (X[:500] ** 2).sum(1))
    assert ev["nmse_uncentered"] == pytest.approx(nmse_ref)
    assert ev["l0_max"] == 3 and ev["mmcs"] == pytest.approx(mmcs(atoms, sae.components_))


def test_invalid_activation_lists_names(planted):
    with pytest.raises(ValueError, match="topk"):
        SparseAutoencoder(activation="nope").fit(planted[0][:50])
