"""Group envelope (WGSEF) regulariser and MLPs against specs/group_envelope.md oracles 5-7."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn.datasets import load_digits, make_classification  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from sparsestat._kernels.envelope import wgsef_prox  # noqa: E402
from sparsestat.neural import (  # noqa: E402
    GroupEnvelopeMLPClassifier,
    GroupEnvelopeMLPRegressor,
    GroupEnvelopeRegularizer,
)
from sparsestat.neural.layers import MLP, prune_mlp  # noqa: E402

pytestmark = pytest.mark.torch


def test_regularizer_prox_matches_numpy_kernel_on_blocks():
    rng = np.random.default_rng(0)
    W1, b1 = rng.normal(size=(5, 3)), rng.normal(size=5)
    W2, b2 = rng.normal(size=(4, 5)), rng.normal(size=4)
    # flatten groups: rows of [W1|b1] then rows of [W2|b2]
    x = np.concatenate([np.c_[W1, b1].ravel(), np.c_[W2, b2].ravel()])
    groups = np.concatenate([np.repeat(np.arange(5), 4), 5 + np.repeat(np.arange(4), 6)])
    sizes = np.r_[np.full(5, 4.0), np.full(4, 6.0)]
    expected = wgsef_prox(x, groups, np.sqrt(sizes), 3, 0.3 * 0.5)
    tensors = [torch.tensor(a) for a in (W1, b1, W2, b2)]
    reg = GroupEnvelopeRegularizer(n_nonzero_groups=3, alpha=0.3, weights="sqrt_size")
    value_before = reg.value([tensors[:2], tensors[2:]])
    reg.prox_([tensors[:2], tensors[2:]], step=0.5)
    got = np.concatenate(
        [np.c_[tensors[0], tensors[1]].ravel(), np.c_[tensors[2], tensors[3]].ravel()]
    )
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert reg.value([tensors[:2], tensors[2:]]) < value_before
    assert (
        reg.n_groups_kept(9) == 3
        and GroupEnvelopeRegularizer(n_nonzero_groups=0.25).n_groups_kept(8) == 2
    )
    with pytest.raises(ValueError, match="weights must be"):
        GroupEnvelopeRegularizer(weights=np.ones(2)).value(torch.ones(3, 2))


def test_prune_mlp_identical_function_with_non_zero_activation_at_zero():
    torch.manual_seed(0)
    for act in ("relu", "sigmoid", "tanh"):
        net = MLP(6, (8, 5), 3, activation=act).double()
        with torch.no_grad():
            net.linears[0].weight[[1, 4, 6]] = 0
            net.linears[0].bias[[1, 4, 6]] = 0
            net.linears[0].weight[:, [0, 3]] = 0  # two unused inputs
            net.linears[1].weight[[2]] = 0
            net.linears[1].bias[[2]] = 0
        small = prune_mlp(net, act)
        x = torch.randn(20, 6, dtype=torch.float64)
        np.testing.assert_allclose(small(x).detach(), net(x).detach(), atol=1e-12)
        assert [lin.out_features for lin in small.linears] == [5, 4, 3]
        assert small.input_index.tolist() == [1, 2, 4, 5]


@pytest.fixture(scope="module")
def digits_split():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.3, random_state=0, stratify=y)


def test_oracle7_projection_exact_k_prune_identical_and_accuracy(digits_split):
    Xtr, Xte, ytr, yte = digits_split
    clf = GroupEnvelopeMLPClassifier(
        hidden_layer_sizes=(64, 32),
        n_nonzero_groups=0.25,
        alpha=0.05,
        max_epochs=25,
        finetune_epochs=5,
        random_state=0,
        device="cpu",
    ).fit(Xtr, ytr)
    assert clf.n_nonzero_groups_ == {"hidden_0": 16, "hidden_1": 8}
    assert clf.history_[-1]["phase"] == "finetune" and clf.n_iter_ == 30
    small = clf.prune()
    assert small.hidden_widths_ == [16, 8]
    np.testing.assert_allclose(small.predict_proba(Xte), clf.predict_proba(Xte), atol=1e-6)
    assert clf.compression_ratio_ > 3
    assert clf.score(Xte, yte) >= 0.90


class _CountingClassifier(GroupEnvelopeMLPClassifier):
    def on_batch_end(self, X, y, loss):
        super().on_batch_end(X, y, loss)
        for _name, blocks in self._scopes():
            nnz = int((self._regularizer().group_norms(blocks) > 0).sum())
            self.min_nnz_ = min(getattr(self, "min_nnz_", 10**9), nnz)


def test_without_projection_at_least_k_groups_at_every_step(digits_split):
    Xtr, _, ytr, _ = digits_split
    clf = _CountingClassifier(
        hidden_layer_sizes=(32,),
        n_nonzero_groups=6,
        alpha=2.0,
        final_projection=False,
        max_epochs=4,
        random_state=0,
        device="cpu",
    ).fit(Xtr, ytr)
    assert clf.min_nnz_ >= 6
    assert clf.n_nonzero_groups_["hidden_0"] < 32  # lam = 2 removes neurons on its own


def test_input_groups_recover_informative_features():
    X, y = make_classification(
        n_samples=400,
        n_features=20,
        n_informative=4,
        n_redundant=0,
        shuffle=False,
        random_state=1,
    )
    clf = GroupEnvelopeMLPClassifier(
        hidden_layer_sizes=(16,),
        group_type="input",
        n_nonzero_groups=4,
        alpha=0.05,
        max_epochs=40,
        finetune_epochs=5,
        random_state=0,
        device="cpu",
    ).fit(X, y)
    chosen = np.flatnonzero(clf.selected_groups_["input"])
    assert set(chosen) == {0, 1, 2, 3}
    small = clf.prune()
    assert small.module_.input_index.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(small.predict_proba(X), clf.predict_proba(X), atol=1e-6)


def test_global_scope_both_groups_and_regressor():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8))
    y = np.sin(X[:, 0]) + X[:, 1] ** 2
    reg = GroupEnvelopeMLPRegressor(
        hidden_layer_sizes=(16, 16),
        group_type="both",
        scope="global",
        n_nonzero_groups=0.5,
        max_epochs=20,
        finetune_epochs=5,
        lr=0.02,
        random_state=0,
        device="cpu",
    ).fit(X, y)
    assert reg.n_nonzero_groups_ == {"input": 4, "hidden": 16}
    assert reg.score(X, y) > 0.5
    small = reg.prune()
    np.testing.assert_allclose(small.predict(X), reg.predict(X), atol=1e-5)


def test_hspg_half_space_rule_and_floor_of_k():
    X, y = load_digits(return_X_y=True)
    clf = GroupEnvelopeMLPClassifier(
        hidden_layer_sizes=(6,),
        n_nonzero_groups=2,
        max_epochs=1,
        hspg=True,
        hspg_eps=0.3,
        random_state=0,
        device="cpu",
    ).fit(X[:100] / 16, y[:100])
    old_w = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [2.0, 0.0], [1.0, 0.0], [3.0, 3.0]])
    old_b = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    new_w = torch.tensor([[-1.0, 0.0], [0.9, 0.9], [5.0, 5.0], [0.4, 0.0], [1.0, 0.0], [3.0, 3.0]])
    new_b = torch.tensor([0.0, 0.0, 1.0, 0.0, -1.0, 0.0])
    # ratios <new, old> / ||old||^2: -1, 0.9, (old zero), 0.2, 0, 1
    blocks = [[new_w.clone(), new_b.clone()]]
    clf._half_space_(blocks, [old_w, old_b])
    kept = (blocks[0][0].abs().sum(1) + blocks[0][1].abs()) > 0
    # eps = 0.3 removes groups 0, 3, 4; the zero group 2 stays zero; 1 and 5 survive
    assert kept.tolist() == [False, True, False, False, False, True]
    assert torch.equal(blocks[0][0][1], new_w[1]) and torch.equal(blocks[0][0][5], new_w[5])
    # floor: with k = 4 of 5 nonzero groups only the lowest ratio (group 0) may go
    clf.set_params(n_nonzero_groups=4)
    blocks = [[new_w.clone(), new_b.clone()]]
    clf._half_space_(blocks, [old_w, old_b])
    kept = (blocks[0][0].abs().sum(1) + blocks[0][1].abs()) > 0
    assert kept.tolist() == [False, True, False, True, True, True]


class _CountingHSPG(GroupEnvelopeMLPClassifier):
    def on_batch_end(self, X, y, loss):
        super().on_batch_end(X, y, loss)
        nnz = int((self._regularizer().group_norms(self._scopes()[0][1]) > 0).sum())
        self.nnz_steps_ = [*getattr(self, "nnz_steps_", []), nnz]


def test_hspg_phase_removes_groups_keeps_zeros_and_k(digits_split):
    Xtr, _, ytr, _ = digits_split
    kw = {
        "hidden_layer_sizes": (32,),
        "n_nonzero_groups": 6,
        "alpha": 0.05,
        "final_projection": False,
        "max_epochs": 6,
        "random_state": 0,
        "device": "cpu",
    }
    plain = _CountingHSPG(**kw).fit(Xtr, ytr)
    hs = _CountingHSPG(hspg=True, hspg_start=0.5, hspg_eps=0.99, **kw).fit(Xtr, ytr)
    phases = [h["phase"] for h in hs.history_]
    assert phases[:2] == ["prox", "prox"] and phases[-1] == "hspg"
    n_prox = 3 * hs.steps_per_epoch_
    after = np.array(hs.nnz_steps_[n_prox:])
    assert after.min() >= 6 and np.all(np.diff(after) <= 0)  # zero groups stay zero
    assert hs.n_nonzero_groups_["hidden_0"] < plain.n_nonzero_groups_["hidden_0"]
    # with the final projection: exactly k per scope
    clf = GroupEnvelopeMLPClassifier(
        **{**kw, "final_projection": True, "finetune_epochs": 2}, hspg=True, hspg_eps=0.99
    ).fit(Xtr, ytr)
    assert clf.n_nonzero_groups_ == {"hidden_0": 6}


def test_flops_weights(digits_split):
    Xtr, _, ytr, _ = digits_split
    clf = GroupEnvelopeMLPClassifier(
        hidden_layer_sizes=(16, 8),
        group_type="both",
        n_nonzero_groups=0.5,
        weights="flops",
        max_epochs=3,
        finetune_epochs=1,
        random_state=0,
        device="cpu",
    ).fit(Xtr, ytr)
    expected = {
        "input": np.full(64, np.sqrt(2.0 * 16)),
        "hidden_0": np.full(16, np.sqrt(2.0 * (64 + 1 + 8))),
        "hidden_1": np.full(8, np.sqrt(2.0 * (16 + 1 + 10))),
    }
    for name, blocks in clf._scopes():
        w = clf._regularizer(blocks).group_weights(blocks)
        np.testing.assert_allclose(w, expected[name])
    assert clf.n_nonzero_groups_ == {"input": 32, "hidden_0": 8, "hidden_1": 4}
    glob = GroupEnvelopeMLPClassifier(
        hidden_layer_sizes=(16, 8),
        scope="global",
        n_nonzero_groups=6,
        weights="flops",
        max_epochs=2,
        finetune_epochs=1,
        random_state=0,
        device="cpu",
    ).fit(Xtr, ytr)
    ((_, blocks),) = glob._scopes()
    w = glob._regularizer(blocks).group_weights(blocks)
    np.testing.assert_allclose(w, np.r_[np.full(16, np.sqrt(146.0)), np.full(8, np.sqrt(54.0))])


def test_too_many_groups_raise_naming_the_parameter():
    X, y = load_digits(return_X_y=True)
    X = X[:200] / 16
    with pytest.raises(ValueError, match=r"n_nonzero_groups=1000 exceeds the 32 groups"):
        GroupEnvelopeMLPClassifier(hidden_layer_sizes=(32,), n_nonzero_groups=1000).fit(X, y[:200])
    with pytest.raises(ValueError, match=r"exceeds the 64 groups of the input scope"):
        GroupEnvelopeMLPClassifier(
            hidden_layer_sizes=(128,), group_type="input", n_nonzero_groups=100
        ).fit(X, y[:200])
    # at most the number of groups is fine (that scope is then not sparsified)
    clf = GroupEnvelopeMLPClassifier(
        hidden_layer_sizes=(8,), n_nonzero_groups=8, max_epochs=1, finetune_epochs=0
    ).fit(X, y[:200])
    assert clf.n_nonzero_groups_["hidden_0"] <= 8


@pytest.mark.parametrize(
    ("old", "new", "value"), [("k", "n_nonzero_groups", 3), ("lam", "alpha", 0.5)]
)
def test_old_names_warn_and_still_work(old, new, value):
    X, y = load_digits(return_X_y=True)
    X, y = X[:200] / 16, y[:200]
    kw = {"hidden_layer_sizes": (8,), "max_epochs": 2, "finetune_epochs": 1, "random_state": 0}
    with pytest.warns(FutureWarning, match=f"'{old}' was renamed to '{new}'"):
        a = GroupEnvelopeMLPClassifier(**kw, **{old: value}).fit(X, y)
    b = GroupEnvelopeMLPClassifier(**kw, **{new: value}).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    # the torch regulariser keeps its old names too
    W = [torch.arange(12.0).reshape(4, 3)]
    with pytest.warns(FutureWarning, match=f"'{old}' was renamed to '{new}'"):
        got = GroupEnvelopeRegularizer(**{old: value}).value(W)
    assert got == GroupEnvelopeRegularizer(**{new: value}).value(W)
    assert got != GroupEnvelopeRegularizer().value(W)
