"""SparseMatrixFactorization (DSL-MF) and make_implicit_feedback: budgets, recall, API."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")

from sklearn.base import clone  # noqa: E402

from sparsestat.datasets import make_implicit_feedback  # noqa: E402
from sparsestat.metrics import recall_at_k  # noqa: E402
from sparsestat.neural import RigL, SparseMatrixFactorization  # noqa: E402
from sparsestat.neural.layers import MaskedEmbedding  # noqa: E402

pytestmark = pytest.mark.torch


def _split(X, frac=0.2, seed=0):
    rng = np.random.default_rng(seed)
    X = X.tocoo()
    test = rng.random(X.nnz) < frac
    parts = [sp.csr_matrix((X.data[s], (X.row[s], X.col[s])), shape=X.shape) for s in (~test, test)]
    return parts[0], parts[1]


@pytest.fixture(scope="module")
def feedback():
    X = make_implicit_feedback(300, 200, rank=5, density=0.1, random_state=0)
    return _split(X)


def test_make_implicit_feedback():
    X, P = make_implicit_feedback(
        400, 300, rank=4, density=0.05, return_probabilities=True, random_state=3
    )
    assert sp.issparse(X) and X.shape == (400, 300)
    assert P.mean() == pytest.approx(0.05, rel=1e-6)
    assert abs(X.nnz / (400 * 300) - 0.05) < 0.01
    Y = make_implicit_feedback(400, 300, rank=4, density=0.05, random_state=3)
    assert (X != Y).nnz == 0


@pytest.mark.parametrize("scope", ["table", "global"])
def test_budget_is_constant_over_all_updates(feedback, scope):
    train, _ = feedback
    mf = SparseMatrixFactorization(
        n_components=8,
        sparsity=0.7,
        max_epochs=4,
        batch_size=128,
        update_interval=5,
        scope=scope,
        random_state=0,
    ).fit(train)
    size = (300 + 200) * 8
    assert mf.budget_ == (round(0.3 * size) if scope == "global" else 720 + 480)
    assert len(mf.nnz_history_) > 5
    assert mf.nnz_history_ == [mf.budget_] * len(mf.nnz_history_)
    assert mf.user_mask_.sum() + mf.item_mask_.sum() == mf.budget_
    if scope == "table":
        assert mf.user_mask_.sum() == 720 and mf.item_mask_.sum() == 480
    assert np.all(mf.user_factors_[~mf.user_mask_] == 0)
    assert np.all(mf.item_factors_[~mf.item_mask_] == 0)


def test_global_scope_updater_moves_budget_between_tables():
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.ModuleDict(
        {
            "a": MaskedEmbedding(10, 4, 0.5, generator=gen),
            "b": MaskedEmbedding(6, 4, 0.5, generator=gen),
        }
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    upd = RigL(0.5, update_interval=1, update_end=1.0, scope="global")
    upd.attach(model, opt, total_steps=10)
    total = sum(upd.budgets)
    for _ in range(5):
        opt.zero_grad()
        idx = torch.arange(6)
        (model["a"](idx) * 3.0).sum().add(model["b"](idx).sum()).backward()
        upd.on_grad_computed()
        opt.step()
        upd.on_batch_end()
        assert model["a"].budget + model["b"].budget == total
    assert model["a"].budget != upd.budgets[0]  # the larger gradients pulled budget into "a"


def test_recall_beats_popularity_and_is_close_to_dense(feedback):
    train, test = feedback
    pop = np.asarray(train.sum(axis=0)).ravel().astype(float)
    scores = np.tile(pop, (train.shape[0], 1))
    rows, cols = train.nonzero()
    scores[rows, cols] = -np.inf
    popularity = recall_at_k(test, scores, 10)
    kw = {"n_components": 16, "max_epochs": 30, "batch_size": 256, "update_interval": 20}
    dense = SparseMatrixFactorization(sparsity=0.0, random_state=0, **kw).fit(train).score(test)
    dsl = SparseMatrixFactorization(sparsity=0.5, random_state=0, **kw).fit(train).score(test)
    # calibrated once: popularity 0.11, dense 0.38, DSL 0.35 (30 epochs)
    assert dsl > 2 * popularity
    assert dsl >= 0.8 * dense


def test_predict_pairs_recommend_and_pickle(feedback):
    train, _ = feedback
    mf = SparseMatrixFactorization(n_components=4, max_epochs=1, batch_size=512, random_state=0)
    mf.fit(train)
    u, i = np.array([0, 5, 7]), np.array([3, 2, 1])
    np.testing.assert_allclose(
        mf.predict_pairs(u, i), (mf.user_factors_[u] * mf.item_factors_[i]).sum(1)
    )
    rec = mf.recommend([0, 1, 2], k=5)
    assert rec.shape == (3, 5)
    for user, items in zip([0, 1, 2], rec):
        assert not set(items) & set(train[user].indices)
    again = pickle.loads(pickle.dumps(mf))
    np.testing.assert_array_equal(again.recommend([0, 1], k=5), mf.recommend([0, 1], k=5))
    assert clone(mf).get_params() == mf.get_params()
    with pytest.raises(ValueError, match="user_ids"):
        mf.predict_pairs([300], [0])
    with pytest.raises(ValueError, match="k must"):
        mf.recommend([0], k=0)
    with pytest.raises(ValueError, match="no positive"):
        SparseMatrixFactorization(max_epochs=1).fit(sp.csr_matrix((3, 4)))


def test_predict_scores_each_row_by_fold_in(feedback):
    """predict is row-wise: rows in any order or subset (new users too) give the same
    scores; each is the ridge fold-in against the item factors."""
    train, _ = feedback
    mf = SparseMatrixFactorization(n_components=6, max_epochs=2, random_state=0).fit(train)
    full = mf.decision_function(train)
    assert full.shape == (300, 200)
    rows = [7, 3, 250]
    np.testing.assert_allclose(mf.decision_function(train[rows]), full[rows], rtol=1e-12)
    best = mf.predict(train)
    assert best.shape == (300,) and best.dtype == np.int64
    unseen = np.where(train.toarray() > 0, -np.inf, full)
    np.testing.assert_array_equal(best, unseen.argmax(axis=1))
    np.testing.assert_array_equal(mf.predict(train[rows]), best[rows])
    Q, x = mf.item_factors_, train[7].toarray().ravel()
    p = np.linalg.lstsq(
        np.vstack([Q, np.sqrt(mf.alpha) * np.eye(6)]), np.r_[x, np.zeros(6)], rcond=None
    )[0]
    np.testing.assert_allclose(full[7], Q @ p, rtol=1e-6, atol=1e-9)
    # the fold-in of a training user ranks its own held items high: better than chance
    top = np.argsort(-full, axis=1)[:, :10]
    hits = np.mean([len(set(t) & set(train[r].indices)) / 10 for r, t in enumerate(top)])
    assert hits > 2 * train.nnz / (300 * 200)
    with pytest.raises(ValueError, match="features"):
        mf.decision_function(train[:, :50])


def test_predict_in_a_pipeline_and_on_dask(feedback):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    da = pytest.importorskip("dask.array")
    train, _ = feedback
    dense = train.toarray()
    pipe = make_pipeline(
        FunctionTransformer(), SparseMatrixFactorization(n_components=4, max_epochs=1)
    )
    pipe.fit(dense)
    np.testing.assert_array_equal(pipe.predict(dense[:5]), pipe[-1].predict(dense)[:5])
    lazy = pipe[-1].decision_function(da.from_array(dense, chunks=(70, 200)))
    assert isinstance(lazy, da.Array) and lazy.shape == (300, 200)
    expected = pipe[-1].decision_function(dense)
    np.testing.assert_allclose(lazy.compute(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("old", "value", "new", "expected", "other"),
    [
        ("density", 0.3, "sparsity", 0.7, 0.2),
        ("reg", 1e-3, "alpha", 1e-3, 0.1),
        ("learning_rate", 0.05, "lr", 0.05, 0.1),
        ("max_iter", 2, "max_epochs", 2, 3),
        ("prune_rate", 0.4, "drop_fraction", 0.4, 0.1),
        ("prune_rate_min", 0.01, "drop_fraction_min", 0.01, 0.1),
    ],
)
def test_old_names_warn_and_still_work(feedback, old, value, new, expected, other):
    train, _ = feedback
    mf = SparseMatrixFactorization(n_components=4, batch_size=2048, random_state=0)
    mf.set_params(**{old: value})
    if new != "max_epochs":
        mf.set_params(max_epochs=1)
    with pytest.warns(FutureWarning, match=f"'{old}' was renamed to '{new}'"):
        mf.fit(train)
    assert mf._renamed(new) == pytest.approx(expected)
    if new == "sparsity":
        assert mf.budget_ == round(0.3 * 300 * 4) + round(0.3 * 200 * 4)
    elif new == "lr":
        assert mf.optimizer_.param_groups[0]["lr"] == 0.05
    elif new == "max_epochs":
        assert mf.n_iter_ == 2
    with pytest.raises(ValueError, match=f"deprecated name of '{new}'"):
        SparseMatrixFactorization(**{old: value, new: other}).fit(train)


def test_loss_parameter_is_gone_with_a_warning(feedback):
    train, _ = feedback
    with pytest.warns(FutureWarning, match="'loss' had no effect"):
        SparseMatrixFactorization(n_components=4, max_epochs=1, loss="bpr").fit(train)
