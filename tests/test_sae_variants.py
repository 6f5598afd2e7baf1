"""Variant objects of SparseAutoencoder: parameters, grid search, deprecations, validation."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from sparsestat._kernels._dispatch import force_backend  # noqa: E402
from sparsestat.datasets import make_planted_features  # noqa: E402
from sparsestat.neural import (  # noqa: E402
    GSAE,
    AbsTopK,
    BatchTopK,
    FeatureChoice,
    JumpReLU,
    MatchingPursuit,
    MutualChoice,
    ReLU,
    SparseAutoencoder,
    TopAFA,
    TopK,
)
from sparsestat.neural.layers import SAEActivation, TopKReLU, make_activation  # noqa: E402
from sparsestat.neural.layers.sae_selection import cpu_kernel  # noqa: E402
from sparsestat.utils._compat import InvalidParameterError  # noqa: E402

pytestmark = pytest.mark.torch

TINY = {"n_components": 16, "max_epochs": 1, "batch_size": 64, "random_state": 0}


@pytest.fixture(scope="module")
def tiny():
    return make_planted_features(256, 8, 16, random_state=0)[0]


@pytest.fixture(scope="module")
def planted():
    return make_planted_features(3000, 16, 32, random_state=0)


# --------------------------------------------------------------------------- parameters
def test_estimator_has_at_most_25_parameters():
    params = SparseAutoencoder().get_params(deep=False)
    assert len(params) <= 25, sorted(params)
    assert "k" not in params and not any(p.startswith(("mp_", "jumprelu_")) for p in params)
    assert SparseAutoencoder().device == "auto"


def test_variant_objects_get_set_clone_repr():
    act = TopK(k=8)
    assert isinstance(act, SAEActivation)
    assert act.get_params() == {"k": 8, "multi_topk": False}
    assert repr(act) == "TopK(k=8)" and repr(BatchTopK()) == "BatchTopK()"
    assert act.set_params(k=4) is act and act.k == 4
    twin = clone(act)
    assert twin is not act and twin.get_params() == act.get_params()
    with pytest.raises(ValueError, match="Invalid parameter 'kk'"):
        act.set_params(kk=3)
    nested = GSAE(BatchTopK(k=5), beta=2.0)
    params = nested.get_params()
    assert params["base__k"] == 5 and params["beta"] == 2.0
    nested.set_params(base__k=3)
    assert nested.base.k == 3
    copy = clone(nested)
    assert copy.base is not nested.base and copy.base.k == 3
    est = SparseAutoencoder(activation=TopK(k=8))
    assert est.get_params()["activation__k"] == 8
    est.set_params(activation__k=4)
    assert est.activation.k == 4


def test_fit_trains_a_clone_and_set_params_reaches_the_variant(planted):
    X = planted[0][:600]
    act = TopK(k=3)
    sae = SparseAutoencoder(32, activation=act, max_epochs=1, batch_size=128, random_state=0)
    sae.fit(X)
    assert sae.k_ == 3 and sae.activation_ is not act and act._k == 3
    assert act.get_params() == {"k": 3, "multi_topk": False}
    sae.set_params(activation__k=5).fit(X)
    assert sae.k_ == 5 and int((sae.transform(X) != 0).sum(1).max()) == 5
    again = pickle.loads(pickle.dumps(sae))
    assert again.activation_.n_active == 5
    np.testing.assert_array_equal(again.transform(X), sae.transform(X))


def test_grid_search_over_activation_k(planted):
    X = planted[0][:1200]
    act = TopK(k=8)
    est = SparseAutoencoder(32, activation=act, max_epochs=2, batch_size=128, random_state=0)
    search = GridSearchCV(est, {"activation__k": [1, 2, 8]}, cv=2).fit(X)
    scores = search.cv_results_["mean_test_score"]
    assert len(set(np.round(scores, 6))) == 3  # the grid reached the variant
    assert search.best_params_ == {"activation__k": 8}  # more latents per row: lower FVU
    assert search.best_estimator_.k_ == 8
    assert act.k == 8  # the user's object is untouched


@pytest.mark.parametrize(
    "make",
    [
        lambda: TopK(3),
        lambda: BatchTopK(3),
        lambda: AbsTopK(3, scope="batch"),
        lambda: MutualChoice(3),
        lambda: FeatureChoice(3),
        lambda: JumpReLU(3),
        lambda: ReLU(alpha=1.0),
        lambda: TopAFA(afa_coef=0.1),
        lambda: MatchingPursuit(3, signed=True),
        lambda: GSAE(AbsTopK(3), beta=1.0),
    ],
)
def test_every_variant_fits_and_transforms(tiny, make):
    act = make()
    sae = SparseAutoencoder(activation=act, **TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # dead latents, missing gradients
        Z = sae.fit(tiny).transform(tiny)
    assert Z.shape == (tiny.shape[0], 16) and np.isfinite(Z).all()
    assert type(sae.activation_) is type(act)
    assert sae.score(tiny) > 0.0


# --------------------------------------------------------------------------- deprecations
def _grad_fn(batch):
    return np.ones_like(batch)


#: old flat name -> (its value, activation given, the equivalent activation object)
OLD_NAMES = {
    "k": (3, "topk", lambda: TopK(3)),
    "multi_topk": (True, "topk", lambda: TopK(multi_topk=True)),
    "l1_coef": (2.0, "relu_l1", lambda: ReLU(alpha=2.0)),
    "jumprelu_bandwidth": (0.1, "jumprelu", lambda: JumpReLU(bandwidth=0.1)),
    "jumprelu_init_threshold": (0.5, "jumprelu", lambda: JumpReLU(init_threshold=0.5)),
    "jumprelu_sparsity": ("step", "jumprelu", lambda: JumpReLU(l0_loss="step")),
    "l0_coef": (2.0, "jumprelu", lambda: JumpReLU(l0_coef=2.0)),
    "fc_capacity": ("zipf", "feature_choice", lambda: FeatureChoice(capacity="zipf")),
    "zipf_exponent": (1.5, "mutual_choice", lambda: MutualChoice(zipf_exponent=1.5)),
    "aux_zipf_ratio": (0.5, "feature_choice", lambda: FeatureChoice(aux_zipf_ratio=0.5)),
    "afa_coef": (0.1, "top_afa", lambda: TopAFA(afa_coef=0.1)),
    "abstopk_scope": ("batch", "abstopk", lambda: AbsTopK(scope="batch")),
    "mp_signed": (True, "mp", lambda: MatchingPursuit(signed=True)),
    "mp_tol": (0.5, "mp", lambda: MatchingPursuit(tol=0.5)),
    "mp_max_iter": (1, "mp", lambda: MatchingPursuit(max_iter=1)),
    "threshold_rate": (0.2, "batchtopk", lambda: BatchTopK(threshold_rate=0.2)),
    "inference_mode": ("batch", "batchtopk", lambda: BatchTopK(inference_mode="batch")),
    "grad_beta": (2.0, "topk", lambda: GSAE(TopK(), beta=2.0)),
    "gradient_fn": (_grad_fn, GSAE(TopK()), lambda: GSAE(TopK(), gradient_fn=_grad_fn)),
    "grad_normalize": (False, GSAE(TopK()), lambda: GSAE(TopK(), normalize=False)),
}


@pytest.mark.parametrize("old", sorted(OLD_NAMES))
def test_old_flat_parameter_warns_and_sets_the_variant(tiny, old):
    value, activation, make = OLD_NAMES[old]
    sae = SparseAutoencoder(activation=activation, **{old: value}, **TINY)
    assert sae.get_params()[old] is value  # kept, so clone and grid searches carry it
    G = np.ones_like(tiny)
    with pytest.warns(FutureWarning, match=rf"\['{old}'\].*activation="):
        sae.fit(tiny, sample_gradients=G)
    new = SparseAutoencoder(activation=make(), **TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # the new spelling does not warn
        new.fit(tiny, sample_gradients=G)
    assert repr(sae.activation_) == repr(new.activation_)
    np.testing.assert_array_equal(sae.components_, new.components_)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        np.testing.assert_array_equal(sae.transform(tiny), new.transform(tiny))
    assert clone(sae).get_params()[old] is value


def test_old_names_in_set_params_and_unknown_names_rejected(tiny):
    sae = SparseAutoencoder(**TINY).set_params(k=2)
    with pytest.warns(FutureWarning, match="'k'"):
        sae.fit(tiny)
    assert sae.k_ == 2
    with pytest.raises(ValueError, match="nonsense"):
        SparseAutoencoder(nonsense=1, **TINY).fit(tiny)


# --------------------------------------------------------------------------- validation
def test_k_larger_than_n_components_names_the_parameter(tiny):
    with pytest.raises(ValueError, match=r"k=100 is larger than n_components=32"):
        SparseAutoencoder(n_components=32, activation=TopK(k=100)).fit(tiny)
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match=r"k=100.*n_components=32"):
        SparseAutoencoder(k=100, n_components=32).fit(tiny)
    for act in (BatchTopK(k=40), MatchingPursuit(k=40), JumpReLU(k=40)):
        with pytest.raises(ValueError, match=r"k=40 is larger than n_components=32"):
            SparseAutoencoder(n_components=32, activation=act).fit(tiny)


@pytest.mark.parametrize(
    "act, name",
    [
        (TopK(k=0), "k"),
        (BatchTopK(k=2.5), "k"),
        (BatchTopK(threshold_rate=2.0), "threshold_rate"),
        (AbsTopK(scope="column"), "scope"),
        (JumpReLU(bandwidth=0.0), "bandwidth"),
        (JumpReLU(l0_loss="l1"), "l0_loss"),
        (ReLU(alpha=-1.0), "alpha"),
        (MatchingPursuit(tol=1.5), "tol"),
        (MatchingPursuit(max_iter=0), "max_iter"),
        (FeatureChoice(capacity="pareto"), "capacity"),
        (GSAE(FeatureChoice()), "base"),
        (GSAE(beta=-1.0), "beta"),
    ],
)
def test_bad_variant_parameters_raise_naming_them(tiny, act, name):
    with pytest.raises(InvalidParameterError, match=rf"'{name}' parameter of {type(act).__name__}"):
        SparseAutoencoder(activation=act, **TINY).fit(tiny)


def test_feature_choice_budget_names_both_parameters(tiny):
    with pytest.raises(ValueError, match=r"k \* batch_size >= n_components; got 1 \* 8 < 16"):
        SparseAutoencoder(activation=FeatureChoice(1), **{**TINY, "batch_size": 8}).fit(tiny)


def test_unknown_activation_name_lists_names():
    with pytest.raises(ValueError, match="batchtopk"):
        make_activation("nope")


# --------------------------------------------------------------------------- dead latents
def test_dead_latents_reported_and_warned_when_most_never_fire():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 4)) @ rng.standard_normal((4, 12))  # rank 4
    sae = SparseAutoencoder(
        96, activation=TopK(1), aux_coef=0.0, max_epochs=1, batch_size=64, random_state=0
    )
    with pytest.warns(UserWarning, match=r"of 96 latents did not fire"):
        sae.fit(X)
    assert sae.n_dead_latents_ == int(sae.dead_latents_.sum()) > 48
    assert sae.dead_latents_.shape == (96,)
    fine = SparseAutoencoder(16, activation=TopK(4), max_epochs=3, batch_size=64, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        fine.fit(X)
    assert fine.n_dead_latents_ <= 8


# --------------------------------------------------------------------------- one TopK
def test_topk_is_the_one_topk_activation():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(10, 16, generator=gen)
    out = TopK(4)(x)
    kth = torch.relu(x).topk(4, dim=1).values[:, -1:]
    torch.testing.assert_close(out, torch.where(torch.relu(x) >= kth, torch.relu(x), 0.0))
    assert torch.equal(TopK(16)(x), torch.relu(x)) and torch.equal(TopK(40)(x), torch.relu(x))
    assert bool(((TopK(0.25)(x) != 0).sum(1) == 4).all())  # a fraction of the width
    x3 = torch.randn(2, 3, 16, generator=gen)  # any leading shape
    torch.testing.assert_close(TopK(4)(x3), TopK(4)(x3.reshape(6, 16)).reshape(2, 3, 16))
    with pytest.raises(ValueError, match="fractional k"):
        TopK(1.5)(x)
    with pytest.warns(FutureWarning, match="renamed TopK"):
        old = TopKReLU(4)
    torch.testing.assert_close(old(x), out)


@pytest.mark.parametrize("backend", ["numba", "generic"])
def test_topk_ties_keep_the_earlier_unit(backend):
    x = torch.tensor([[1.0, 2.0, 2.0, 0.5, 2.0, 3.0], [5.0, 5.0, 5.0, 5.0, 5.0, 5.0]])
    with force_backend(backend):
        z = TopK(3)(x)
        from_kernel = cpu_kernel("sae_row_topk", x, 3)
    assert (from_kernel is None) == (backend == "generic")
    if backend == "numba":  # the compiled heap keeps the earlier columns among ties
        assert z.tolist() == [[0, 2, 2, 0, 0, 3], [5, 5, 5, 0, 0, 0]]
    assert ((z != 0).sum(1) == 3).all()


# --------------------------------------------------------------------------- sample weights
def test_integer_sample_weight_equals_repeated_rows_full_batch(planted):
    X = planted[0][:80]
    sw = np.random.default_rng(0).integers(0, 4, size=80)
    kw = {"n_components": 24, "activation": TopK(3), "max_epochs": 6, "batch_size": 1000}
    kw["random_state"] = 0
    weighted = SparseAutoencoder(**kw).fit(X, sample_weight=sw)
    repeated = SparseAutoencoder(**kw).fit(np.repeat(X, sw, axis=0))
    plain = SparseAutoencoder(**kw).fit(X)
    assert weighted.input_scale_ == pytest.approx(repeated.input_scale_, rel=1e-10)
    assert weighted._dead_after == repeated._dead_after == int(sw.sum())
    for attr in ("components_", "decoder_bias_", "encoder_bias_", "feature_density_"):
        np.testing.assert_allclose(
            getattr(weighted, attr), getattr(repeated, attr), atol=1e-4, err_msg=attr
        )
    np.testing.assert_allclose(weighted.transform(X), repeated.transform(X), atol=1e-4)
    assert np.abs(plain.components_ - repeated.components_).max() > 1e-2  # weights matter


def test_zero_sample_weight_removes_rows_and_weights_reach_every_variant(planted):
    X = planted[0][:400]
    sw = np.ones(400)
    sw[::4] = 0.0
    kw = {"n_components": 24, "activation": BatchTopK(3), "max_epochs": 2, "batch_size": 64}
    kw["random_state"] = 0
    a = SparseAutoencoder(**kw).fit(X, sample_weight=sw)
    b = SparseAutoencoder(**kw).fit(X[sw > 0])
    np.testing.assert_array_equal(a.components_, b.components_)
    sw = np.random.default_rng(1).uniform(0.5, 2.0, 400)
    for act in (JumpReLU(3), ReLU(alpha=1.0), TopAFA(afa_coef=0.1), TopK(3, multi_topk=True)):
        est = SparseAutoencoder(24, activation=act, max_epochs=1, batch_size=64, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            est.fit(X, sample_weight=sw)
        assert np.isfinite(est.components_).all() and est.history_[-1]["fvu"] < 1.5
