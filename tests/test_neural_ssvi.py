"""SSVI (sparse subspace variational inference) against the oracles of specs/ssvi.md."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from scipy import stats  # noqa: E402
from sklearn.datasets import load_diabetes, load_digits  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from sparsestat.neural import MeanFieldVIClassifier, SSVIClassifier, SSVIRegressor  # noqa: E402
from sparsestat.neural.layers import (  # noqa: E402
    SparseBayesLinear,
    SSVIScheduler,
    folded_normal_moments,
    ssvi_removal_score,
)

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


class _Recording(SSVIClassifier):
    """Checks the cardinality invariant after every optimizer step (test hook)."""

    def on_batch_end(self, X, y, loss):
        super().on_batch_end(X, y, loss)
        for layer in self.module_.bayes_layers:
            numel = layer.mask.numel()
            expected = numel - math.floor(self.sparsity * numel)
            assert int(layer.mask.sum()) == expected
            assert torch.all(layer.mu[~layer.mask] == 0)
            assert torch.all(layer.sigma[~layer.mask] == 0)
        self.n_checked_ = getattr(self, "n_checked_", 0) + 1


def test_oracle1_cardinality_invariant_at_every_step(digits):
    X, y = digits
    clf = _Recording(
        hidden_layer_sizes=(32,), sparsity=0.8, update_interval=3, max_epochs=4,
        batch_size=128, random_state=0, device="cpu",
    ).fit(X[:600], y[:600])  # fmt: skip
    assert clf.n_checked_ == clf.n_steps_ == 4 * 5
    counts = {rec["n_active"] for rec in clf.mask_history_}
    assert len(counts) == 1 and counts == {clf.n_active_}
    assert len(clf.mask_history_) > 3 and sum(r["n_changed"] for r in clf.mask_history_) > 0
    assert clf.density_ == 1 - 0.8
    sizes = [64 * 32, 32 * 10]
    assert clf.n_active_params_ == [n - math.floor(0.8 * n) for n in sizes]
    dense_first = SSVIClassifier(
        hidden_layer_sizes=(8,), sparsity=0.9, exclude_layers=(0,), max_epochs=1,
        random_state=0, device="cpu",
    ).fit(X[:100], y[:100])  # fmt: skip
    assert dense_first.masks_[0].all() and not dense_first.masks_[1].all()


def test_oracle2_sparsity_zero_equals_dense_mean_field_vi(digits):
    X, y = digits
    kw = {"hidden_layer_sizes": (16,), "max_epochs": 3, "random_state": 1, "device": "cpu"}
    a = SSVIClassifier(sparsity=0.0, **kw).fit(X[:300], y[:300]).predict_proba(X[300:400])
    b = MeanFieldVIClassifier(**kw).fit(X[:300], y[:300]).predict_proba(X[300:400])
    np.testing.assert_allclose(a, b, atol=1e-6)


def _layer_with(mu, sigma, mask):
    layer = SparseBayesLinear(mu.shape[1], mu.shape[0], density=1.0)
    with torch.no_grad():
        layer.mu.copy_(torch.as_tensor(mu))
        layer.rho.copy_(torch.log(torch.expm1(torch.as_tensor(sigma))))
        layer.mask.copy_(torch.as_tensor(mask))
        layer.apply_mask_()
    return layer


def test_oracle3_update_mechanics_by_hand():
    rng = np.random.default_rng(0)
    shape = (4, 5)
    mu = rng.normal(size=shape).astype(np.float32)
    sigma = rng.uniform(0.1, 1.0, size=shape).astype(np.float32)
    mask = np.zeros(20, bool)
    mask[rng.choice(20, 8, replace=False)] = True
    mask = mask.reshape(shape)
    layer = _layer_with(mu, sigma, mask)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
    for p in (layer.mu, layer.rho):
        opt.state[p]["momentum_buffer"] = torch.ones_like(p)
    sched = SSVIScheduler([layer], opt, total_steps=1000, update_interval=10, drop_fraction=0.5)
    # schedule: no update off the interval or after T_end = 750
    assert sched.is_update_step(10) and not sched.is_update_step(15)
    assert not sched.is_update_step(750) and not sched.is_update_step(760)
    t = 100
    frac = 0.5 / 2 * (1 + math.cos(math.pi * t / 750))
    n_drop = math.floor(8 * frac)
    assert n_drop == 3
    # independent scores: SNR of the folded normal from scipy
    fn = stats.foldnorm(c=np.abs(mu) / sigma, scale=sigma)
    score = np.where(mask, fn.mean() / fn.std(), -np.inf).ravel()
    keep = set(np.argsort(-score)[: 8 - n_drop])
    grad = rng.normal(size=shape).astype(np.float32)
    g = np.abs(grad).ravel().copy()
    g[list(keep)] = -np.inf
    grow = set(np.argsort(-g)[:n_drop])
    rho_before = layer.rho.detach().numpy().ravel().copy()
    survivors = [i for i in np.flatnonzero(mask.ravel()) if i in keep or i in grow]
    sched.update_layer(layer, torch.as_tensor(grad), sched.drop_fraction_at(t))
    new = layer.mask.numpy().ravel()
    assert set(np.flatnonzero(new)) == keep | grow and new.sum() == 8
    born = [i for i in grow if not mask.ravel()[i]]
    assert born, "the draw should activate at least one new weight"
    np.testing.assert_array_equal(layer.mu.detach().numpy().ravel()[born], 0.0)
    np.testing.assert_allclose(
        layer.rho.detach().numpy().ravel()[born], rho_before[survivors].mean(), rtol=1e-6
    )
    changed = new != mask.ravel()
    for p in (layer.mu, layer.rho):
        buf = opt.state[p]["momentum_buffer"].numpy().ravel()
        assert np.all(buf[changed] == 0) and np.all(buf[~changed] == 1)
    assert np.all(layer.mu.detach().numpy().ravel()[~new] == 0)


def test_oracle4_criteria():
    rng = np.random.default_rng(1)
    m = rng.normal(size=50) * 2
    s = rng.uniform(0.05, 2.0, size=50)
    fn = stats.foldnorm(c=np.abs(m) / s, scale=s)
    mean, var = folded_normal_moments(torch.tensor(m), torch.tensor(s))
    np.testing.assert_allclose(mean.numpy(), fn.mean(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(var.numpy(), fn.var(), rtol=1e-8, atol=1e-10)
    for crit in ("magnitude", "snr", "e_abs", "snr_abs", "e_exp_abs", "snr_exp_abs"):
        a = ssvi_removal_score(torch.tensor(m), torch.tensor(s), crit)
        b = ssvi_removal_score(torch.tensor(-m), torch.tensor(s), crit)
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)
    # exponential criteria against a 1e6-draw Monte Carlo
    mm, ss = np.array([0.3, -1.0, 0.0]), np.array([0.5, 0.2, 1.0])
    draws = np.abs(mm + ss * rng.standard_normal((1_000_000, 3)))
    e1, e2 = np.exp(draws).mean(0), np.exp(2 * draws).mean(0)
    got = ssvi_removal_score(torch.tensor(mm), torch.tensor(ss), "e_exp_abs").numpy()
    np.testing.assert_allclose(got, e1, rtol=0.01)
    got = ssvi_removal_score(torch.tensor(mm), torch.tensor(ss), "snr_exp_abs").numpy()
    np.testing.assert_allclose(got, e1 / np.sqrt(e2 - e1**2), rtol=0.01)


def test_layer_defaults_match_the_estimator_defaults(digits):
    """The layers' prior / initial scale defaults are the estimators' (and are what a fit
    builds): no silent 0.1-vs-1.0 prior mismatch between the two entry points."""
    import inspect

    from sparsestat.neural.layers import SparseBayesConv2d

    def default(obj, name):
        return inspect.signature(obj).parameters[name].default

    for name in ("prior_std", "sigma_init"):
        values = {
            cls.__name__: default(cls, name)
            for cls in (
                SparseBayesLinear,
                SparseBayesConv2d,
                SSVIClassifier,
                SSVIRegressor,
                MeanFieldVIClassifier,
            )
        }
        assert len(set(values.values())) == 1, (name, values)
    X, y = digits
    clf = SSVIClassifier(hidden_layer_sizes=(8,), max_epochs=1, random_state=0).fit(X[:64], y[:64])
    layer = SparseBayesLinear(3, 2)
    assert (
        clf.module_.linears[0].prior_std == layer.prior_std == default(SSVIClassifier, "prior_std")
    )
    sigma = torch.nn.functional.softplus(layer.rho).detach()
    torch.testing.assert_close(sigma, torch.full_like(sigma, default(SSVIClassifier, "sigma_init")))


def test_oracle5_kl_over_active_entries_only():
    layer = SparseBayesLinear(6, 4, density=0.5, prior_std=0.3)
    with torch.no_grad():
        layer.mu.normal_()
        layer.rho.uniform_(-3, 0)
        layer.apply_mask_()
    m = layer.mask
    mu, sig = layer.mu[m].double(), torch.nn.functional.softplus(layer.rho[m]).double()
    closed = (torch.log(0.3 / sig) + (sig**2 + mu**2) / (2 * 0.09) - 0.5).sum()
    np.testing.assert_allclose(float(layer.kl().detach()), float(closed), rtol=1e-5)
    before = float(layer.kl().detach())
    with torch.no_grad():
        layer.mu[~m] = 5.0
        layer.rho[~m] = 2.0
    assert float(layer.kl().detach()) == before


@pytest.fixture(scope="module")
def ood_fit(digits):
    """Digits 0-4 in distribution, 5-9 out of distribution (SSVI at 90% sparsity)."""
    X, y = digits
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))
    X, y = X[idx], y[idx]
    ind, ood = y < 5, y >= 5
    Xi, yi = X[ind], y[ind]
    n = int(0.7 * len(yi))
    clf = SSVIClassifier(
        hidden_layer_sizes=(128, 128), sparsity=0.9, max_epochs=25, n_mc_samples=16,
        random_state=0, device="cpu",
    ).fit(Xi[:n], yi[:n])  # fmt: skip
    return clf, Xi[n:], yi[n:], X[ood]


def test_oracle6_mc_output(ood_fit):
    clf, Xte, _, _ = ood_fit
    p = clf.predict_proba(Xte)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(p, clf.predict_proba(Xte))  # deterministic
    u = clf.predict_uncertainty(Xte[:50])
    assert np.all(u["mutual_info"] >= 0) and u["std_proba"].shape == (50, 5)
    np.testing.assert_allclose(u["entropy"] - u["expected_entropy"], u["mutual_info"], atol=1e-9)

    def spread(n_samples):
        runs = [clf.predict_proba(Xte[:40], n_samples=n_samples, mc_seed=s) for s in range(8)]
        return np.var(np.stack(runs), axis=0).mean()

    assert spread(32) < spread(2)


def test_oracle7_8_ood_uncertainty_and_accuracy(ood_fit):
    clf, Xte, yte, Xood = ood_fit
    assert clf.score(Xte, yte) >= 0.90
    u_in = clf.predict_uncertainty(Xte)
    u_out = clf.predict_uncertainty(Xood)
    noise = np.random.default_rng(0).normal(size=(200, 64))
    u_noise = clf.predict_uncertainty(noise)
    for key in ("entropy", "mutual_info"):
        assert u_out[key].mean() > 1.2 * u_in[key].mean()
        assert u_noise[key].mean() > 1.2 * u_in[key].mean()
    labels = np.r_[np.zeros(len(Xte)), np.ones(len(Xood))]
    assert roc_auc_score(labels, np.r_[u_in["entropy"], u_out["entropy"]]) > 0.75


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_oracle8_digits_accuracy_full(digits, seed):
    """Spec oracle 8 and the issue's 2-point claim, over three seeds (slow)."""
    X, y = digits
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(y))
    tr, te = idx[:1300], idx[1300:]
    kw = {"hidden_layer_sizes": (128, 128), "max_epochs": 20, "random_state": seed}
    kw["device"] = "cpu"
    sparse = SSVIClassifier(sparsity=0.9, **kw).fit(X[tr], y[tr]).score(X[te], y[te])
    dense = MeanFieldVIClassifier(**kw).fit(X[tr], y[tr]).score(X[te], y[te])
    assert sparse >= 0.90 and dense >= 0.92 and sparse >= dense - 0.02


@pytest.mark.slow
def test_digits_calibration_against_dense_vi_and_deterministic_mlp(digits):
    """The issue's digits claim, as far as it holds (3 seeds, the example's protocol).

    SSVI at 90% sparsity: accuracy within 2 points of dense VI; not under-confident (the mean
    confidence matches the accuracy: with the former prior N(0, 0.1^2) it fell 1-3 points
    short); the paired ECE difference to a deterministic MLP of the same architecture
    trained to convergence stays below 0.005. "Better calibrated than the MLP" is not
    asserted: it does not hold (benchmarks/ssvi_calibration_study.py, tuned on validation
    splits, twelve test splits: paired ECE difference SSVI - MLP +0.0014 +- 0.0014 s.e.).
    """
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    from sparsestat.metrics import expected_calibration_error

    X, y = digits
    res = {"ssvi": [], "dense": [], "mlp": []}
    for seed in (0, 1, 2):
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
        kw = {"hidden_layer_sizes": (128, 128), "max_epochs": 40, "random_state": seed}
        models = {
            "ssvi": SSVIClassifier(sparsity=0.9, device="cpu", **kw),
            "dense": MeanFieldVIClassifier(device="cpu", **kw),
            "mlp": MLPClassifier((128, 128), max_iter=1000, random_state=seed),
        }
        for name, model in models.items():
            p = model.fit(Xtr, ytr).predict_proba(Xte)
            acc = np.mean(p.argmax(1) == yte)
            res[name].append((acc, p.max(1).mean(), expected_calibration_error(yte, p)))
    ssvi, dense, mlp = (np.mean(res[k], axis=0) for k in ("ssvi", "dense", "mlp"))
    assert ssvi[0] >= dense[0] - 0.02
    assert abs(ssvi[1] - ssvi[0]) < 0.006  # mean confidence vs accuracy
    assert ssvi[2] <= mlp[2] + 0.005


def test_regressor_uncertainty_and_fit():
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    reg = SSVIRegressor(
        hidden_layer_sizes=(32,), sparsity=0.5, max_epochs=60, random_state=0, device="cpu"
    ).fit(X[:350], y[:350])
    assert reg.score(X[350:], y[350:]) > 0.3
    mean, std = reg.predict(X[350:], return_std=True)
    np.testing.assert_allclose(mean, reg.predict(X[350:]))
    assert np.all(std >= reg.noise_std_[0] * 0.999)  # predictive std includes the noise
    far = reg.predict(X[350:360] * 20, return_std=True)[1]
    assert far.mean() > std.mean()  # more uncertain far from the data


def test_cnn_option_and_string_labels(digits):
    X, y = digits
    labels = np.array(list("abcdefghij"))[y]
    clf = SSVIClassifier(
        image_shape=(8, 8), conv_channels=(4,), hidden_layer_sizes=(32,), sparsity=0.5,
        max_epochs=8, lr=0.01, random_state=0, device="cpu",
    ).fit(X[:800], labels[:800])  # fmt: skip
    assert isinstance(clf.module_.convs[0], torch.nn.Module)
    assert clf.score(X[800:1200], labels[800:1200]) > 0.8
    assert set(clf.classes_) == set("abcdefghij")
    with pytest.raises(ValueError, match="image_shape"):
        SSVIClassifier(image_shape=(7, 7), max_epochs=1).fit(X[:50], y[:50])


def test_pipeline_grid_search_and_pickle(digits):
    X, y = digits
    X, y = X[:300], y[:300]
    base = SSVIClassifier(hidden_layer_sizes=(16,), max_epochs=5, n_mc_samples=2, device="cpu")
    grid = GridSearchCV(
        make_pipeline(StandardScaler(), base.set_params(random_state=0)),
        {"ssviclassifier__lr": [1e-3, 1e-2], "ssviclassifier__optimizer__weight_decay": [0, 1e-4]},
        cv=2,
    ).fit(X, y)
    best = grid.best_estimator_[-1]
    assert best.optimizer_.param_groups[0]["weight_decay"] in (0, 1e-4)
    assert best.optimizer_.param_groups[1]["weight_decay"] == 0.0  # rho: never decayed
    again = pickle.loads(pickle.dumps(grid.best_estimator_))
    np.testing.assert_array_equal(again.predict_proba(X), grid.best_estimator_.predict_proba(X))


def test_kl_term_enters_the_loss(digits):
    X, y = digits
    kw = {"hidden_layer_sizes": (16,), "max_epochs": 2, "random_state": 0, "device": "cpu"}
    clf = SSVIClassifier(kl_coef=0.5, kl_warmup_fraction=0.0, **kw).fit(X[:200], y[:200])
    clf.module_.eval()
    xb, yb = torch.tensor(X[:50], dtype=torch.float32), torch.tensor(y[:50])
    with torch.no_grad():
        got = float(clf._batch_loss(xb, yb, 200))
        ce = float(torch.nn.functional.cross_entropy(clf.module_(xb), yb))
        kl = float(clf.module_.kl())
    np.testing.assert_allclose(got, ce + 0.5 * kl / 200, rtol=1e-5)
    no_kl = SSVIClassifier(kl_coef=0.0, **kw).fit(X[:200], y[:200])
    assert clf.history_[-1]["kl"] < no_kl.history_[-1]["kl"]


def test_weighted_loss_is_the_weighted_elbo(digits):
    """Weighted rows: the likelihood is the weighted mean, the KL is divided by sum(w)."""
    X, y = digits
    kw = {"hidden_layer_sizes": (16,), "max_epochs": 1, "random_state": 0, "device": "cpu"}
    clf = SSVIClassifier(kl_coef=0.5, kl_warmup_fraction=0.0, **kw).fit(X[:200], y[:200])
    clf.module_.eval()
    xb, yb = torch.tensor(X[:50], dtype=torch.float32), torch.tensor(y[:50])
    w = np.arange(50) % 3 + 1.0
    with torch.no_grad():
        got = float(clf._batch_loss(xb, yb, w.sum(), sample_weight=torch.tensor(w / w.mean())))
        ce = torch.nn.functional.cross_entropy(clf.module_(xb), yb, reduction="none").numpy()
        kl = float(clf.module_.kl())
    np.testing.assert_allclose(got, (w * ce).sum() / w.sum() + 0.5 * kl / w.sum(), rtol=1e-5)
    # and fit takes the weights: weight 0 leaves a row out
    sw = np.r_[np.ones(150), np.zeros(50)]
    a = SSVIClassifier(**kw).fit(X[:150], y[:150])
    b = SSVIClassifier(**kw).fit(X[:200], y[:200], sample_weight=sw)
    np.testing.assert_array_equal(a.predict_proba(X[:20]), b.predict_proba(X[:20]))


@pytest.mark.parametrize(
    ("old", "value", "new", "new_value"),
    [
        ("kl_weight", 0.2, "kl_coef", 0.2),
        ("drop_alpha", 0.5, "drop_fraction", 0.5),
        ("t_end_fraction", 0.5, "update_end", 0.5),
        ("dense_first_layer", True, "exclude_layers", (0,)),
    ],
)
def test_old_names_warn_and_still_work(digits, old, value, new, new_value):
    X, y = digits
    kw = {
        "hidden_layer_sizes": (8,),
        "sparsity": 0.5,
        "update_interval": 2,
        "max_epochs": 2,
        "random_state": 0,
        "device": "cpu",
    }
    with pytest.warns(FutureWarning, match=f"'{old}' was renamed to '{new}'"):
        a = SSVIClassifier(**kw, **{old: value}).fit(X[:150], y[:150])
    b = SSVIClassifier(**kw, **{new: new_value}).fit(X[:150], y[:150])
    np.testing.assert_array_equal(a.predict_proba(X[:20]), b.predict_proba(X[:20]))
    with pytest.warns(FutureWarning, match=f"'{old}' was renamed"):
        assert a._renamed(new) == new_value
    if old in ("drop_alpha", "t_end_fraction"):
        layer_kw = {"drop_alpha": "drop_fraction", "t_end_fraction": "update_end"}
        with pytest.warns(FutureWarning, match=f"'{old}' was renamed to '{layer_kw[old]}'"):
            SSVIScheduler(b.module_.bayes_layers, b.optimizer_, 100, **{old: value})


def test_expected_calibration_error_by_hand():
    from sparsestat.metrics import expected_calibration_error

    proba = np.array([[0.95, 0.05], [0.6, 0.4], [0.35, 0.65], [0.1, 0.9]])
    y = np.array([0, 1, 1, 1])
    # two bins: (0, .5] empty; (.5, 1]: mean confidence .775, accuracy .75
    assert np.isclose(expected_calibration_error(y, proba, n_bins=2), abs(0.75 - 0.775))
    labels = np.array(["a", "b"])[y]
    assert np.isclose(
        expected_calibration_error(labels, proba, n_bins=2, classes=["a", "b"]), 0.025
    )


def test_partial_fit_keeps_the_subspace(digits):
    X, y = digits
    clf = SSVIClassifier(hidden_layer_sizes=(16,), sparsity=0.8, random_state=0, device="cpu")
    for _ in range(2):
        clf.partial_fit(X[:300], y[:300], classes=np.arange(10))
    masks = [m.copy() for m in clf.masks_]
    clf.partial_fit(X[300:600], y[300:600])
    assert all(np.array_equal(a, b) for a, b in zip(masks, clf.masks_))
    assert clf.n_iter_ == 3 and len(clf.mask_history_) == 1
