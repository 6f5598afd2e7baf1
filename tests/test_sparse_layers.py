"""Oracles for the plain torch sparse-training pieces: masks, layers, methods, schedules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.base import clone

torch = pytest.importorskip("torch")

from sparsestat.neural import SET, RigL, StaticMask  # noqa: E402
from sparsestat.neural.layers import (  # noqa: E402
    AdamS,
    MaskedLinear,
    NMSparseLinear,
    PGFSchedule,
    TopK,
    apply_nm_mask_,
    cosine_drop_fraction,
    erk_densities,
    export_semi_structured,
    is_nm_sparse,
    nm_mask,
    random_mask,
    sdgf_patterns,
    sparse_ift_widths,
    srste_weight,
    topk_mask,
    uniform_densities,
)

pytestmark = pytest.mark.torch


# --------------------------------------------------------------------------- O1
@pytest.mark.parametrize(("n", "m"), [(2, 4), (1, 4), (1, 8), (3, 8)])
def test_nm_mask_equals_torch_ao_weight_norm_sparsifier(n, m):
    from torch.ao.pruning import WeightNormSparsifier

    gen = torch.Generator().manual_seed(n * 10 + m)
    model = torch.nn.Sequential(torch.nn.Linear(4 * m, 8))
    with torch.no_grad():
        model[0].weight.copy_(torch.randn(8, 4 * m, generator=gen))
    w = model[0].weight.detach().clone()
    sp = WeightNormSparsifier(sparsity_level=1.0, sparse_block_shape=(1, m), zeros_per_block=m - n)
    sp.prepare(model, [{"tensor_fqn": "0.weight"}])
    sp.step()
    ao_mask = model[0].parametrizations.weight[0].mask.bool()
    ours = nm_mask(w, n, m)
    assert torch.equal(ours, ao_mask)
    groups = ours.reshape(8, -1, m)
    assert bool((groups.sum(-1) == n).all())
    # brute force: kept entries are the n largest |w| of their group
    a = w.abs().reshape(8, -1, m)
    kept_min = torch.where(groups, a, torch.inf).amin(-1)
    dropped_max = torch.where(groups, -torch.inf, a).amax(-1)
    assert bool((kept_min >= dropped_max).all())


def test_nm_mask_ties_keep_the_first_positions():
    mask = nm_mask(torch.ones(3, 8), 2, 4)
    expected = torch.tensor([True, True, False, False] * 2).expand(3, 8)
    assert torch.equal(mask, expected)


def test_nm_mask_rejects_bad_shapes_and_patterns():
    with pytest.raises(ValueError, match="multiple of m"):
        nm_mask(torch.ones(2, 6), 2, 4)
    with pytest.raises(ValueError, match="1 <= n < m"):
        nm_mask(torch.ones(2, 8), 4, 4)
    with pytest.raises(ValueError, match="multiple of m"):
        NMSparseLinear(6, 2, n=2, m=4)


def test_is_nm_sparse_and_apply_nm_mask():
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(5, 16, generator=gen)
    assert not is_nm_sparse(w, 2, 4)
    apply_nm_mask_(w, 2, 4)
    assert is_nm_sparse(w, 2, 4)
    assert int((w != 0).sum()) == 5 * 16 // 2
    model = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    apply_nm_mask_(model, 1, 4)
    assert is_nm_sparse(model[0].weight, 1, 4)
    assert is_nm_sparse(model[2].weight, 1, 4)


# --------------------------------------------------------------------------- O2
@pytest.mark.parametrize("lam", [0.0, 2e-4, 0.3])
def test_srste_gradient_identity(lam):
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(6, 8, generator=gen, requires_grad=True)
    x = torch.randn(5, 8, generator=gen)
    srste_weight(w, 2, 4, lam).matmul(x.T).sum().backward()
    # independent gradient with respect to the masked weight as a leaf
    mask = nm_mask(w, 2, 4)
    w_tilde = (w.detach() * mask).requires_grad_(True)
    (x @ w_tilde.T).sum().backward()
    expected = w_tilde.grad + lam * (~mask).float() * w.detach()
    torch.testing.assert_close(w.grad, expected, atol=1e-6, rtol=0)
    if lam == 0.0:  # STE: pruned entries receive the full gradient too
        assert bool((w.grad[~mask] != 0).all())


def test_srste_lambda_zero_equals_ste_layer():
    torch.manual_seed(0)
    a = NMSparseLinear(8, 4, method="ste")
    b = NMSparseLinear(8, 4, method="sr-ste", srste_lambda=0.0)
    b.load_state_dict(a.state_dict())
    x = torch.randn(7, 8)
    a(x).pow(2).sum().backward()
    b(x).pow(2).sum().backward()
    assert torch.equal(a.weight.grad, b.weight.grad)
    assert torch.equal(a.bias.grad, b.bias.grad)


def test_nm_layer_keeps_dense_weight_until_finalize():
    torch.manual_seed(0)
    layer = NMSparseLinear(16, 4, n=1, m=4)
    x = torch.randn(3, 16)
    expected = x @ (layer.weight * nm_mask(layer.weight, 1, 4)).T + layer.bias
    torch.testing.assert_close(layer(x), expected)
    assert not is_nm_sparse(layer.weight, 1, 4)
    layer.finalize_()
    assert is_nm_sparse(layer.weight, 1, 4)
    torch.testing.assert_close(layer(x), expected)


# --------------------------------------------------------------------------- O4
def test_erk_worked_example():
    shapes = [(100, 64), (100, 100), (10, 100)]
    expected = {
        0.05: [0.047033, 0.036709, 0.201899],
        0.1: [0.094066, 0.073418, 0.403797],
        0.3: [0.297081, 0.231868, 1.0],
        0.5: [0.542067, 0.423077, 1.0],
    }
    sizes = np.array([6400, 10000, 1000])
    for density, exp in expected.items():
        got = erk_densities(shapes, density)
        np.testing.assert_allclose(got, exp, atol=1e-6)
        assert float(np.dot(got, sizes)) == pytest.approx(density * sizes.sum(), rel=1e-12)
        nnz = sum(int(random_mask(s, d).sum()) for s, d in zip(shapes, got))
        assert abs(nnz - round(density * sizes.sum())) <= len(shapes)
    assert got[0] / got[1] == pytest.approx((164 / 6400) / (200 / 10000))


def test_uniform_densities_and_dense_layers():
    assert uniform_densities([(3, 3)] * 3, 0.2) == [0.2, 0.2, 0.2]
    assert uniform_densities([(3, 3)] * 3, 0.2, dense=(0,)) == [1.0, 0.2, 0.2]
    d = erk_densities([(10, 10), (10, 10)], 0.75, dense=(0,))
    assert d == [1.0, pytest.approx(0.5)]


def test_topk_and_random_masks_are_exact():
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(7, 9, generator=gen)
    mask = topk_mask(w, 0.3)
    assert int(mask.sum()) == round(0.3 * 63)
    assert float(w.abs()[mask].min()) >= float(w.abs()[~mask].max())
    a = random_mask((7, 9), 0.3, torch.Generator().manual_seed(5))
    b = random_mask((7, 9), 0.3, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert int(a.sum()) == 19


# --------------------------------------------------------------------------- O5, O6
def _train_steps(updater, n_steps=30, opt_cls=torch.optim.Adam, **attach):
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        MaskedLinear(12, 16, density=0.3, generator=gen),
        torch.nn.ReLU(),
        MaskedLinear(16, 3, density=0.5, generator=gen),
    )
    opt = opt_cls(model.parameters(), lr=0.05)
    updater.attach(model, opt, **attach)
    X = torch.randn(64, 12, generator=gen)
    y = torch.randn(64, 3, generator=gen)
    n_updates = 0
    for _ in range(n_steps):
        before = [layer.mask.clone() for layer in updater.layers]
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(X), y).backward()
        updater.on_grad_computed()
        opt.step()
        t = updater.step + 1
        updated = updater.on_batch_end()
        n_updates += int(updated)
        for layer, budget, old in zip(updater.layers, updater.budgets, before):
            assert int(layer.mask.sum()) == budget
            assert bool((layer.weight[~layer.mask] == 0).all())
            flips = int((layer.mask ^ old).sum())
            if updated:
                zeta = updater.drop_fraction_at(t)
                assert flips <= 2 * math.floor(zeta * budget) + 2  # signed: two floors
            else:
                assert flips == 0
    return n_updates


@pytest.mark.parametrize(
    ("updater", "attach", "n_expected"),
    [
        (StaticMask(), {}, 0),
        (SET(0.3, update_interval=5), {"generator": torch.Generator().manual_seed(1)}, 6),
        (SET(0.3, update_interval=5, drop="signed"), {"total_steps": 20}, 3),
        # RigL stops at update_end * total_steps = 22: steps 5, 10, 15, 20
        (RigL(0.3, update_interval=5, update_end=0.55), {"total_steps": 40}, 4),
        (RigL(0.3, update_interval=5, update_end=0.55, growth="momentum"), {"total_steps": 40}, 4),
        # update_interval=None: once per epoch
        (RigL(0.3), {"total_steps": 30, "steps_per_epoch": 7}, 3),
    ],
    ids=["static", "set", "set-signed", "rigl", "rigl-momentum", "rigl-per-epoch"],
)
def test_exact_budgets_after_every_step(updater, attach, n_expected):
    assert _train_steps(clone(updater), **attach) == n_expected


def test_update_interval_none_needs_the_epoch_length():
    model = torch.nn.Sequential(MaskedLinear(4, 4, density=0.5))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="update_interval=None means one epoch"):
        SET().attach(model, opt)


def test_methods_are_small_tunable_objects():
    rigl = RigL(drop_fraction=0.5)
    assert clone(rigl).get_params()["drop_fraction"] == 0.5
    assert rigl.set_params(update_end=0.5).update_end == 0.5
    assert repr(SET(drop="signed")) == "SET(drop='signed')"


@pytest.mark.parametrize(
    ("cls", "old", "new"),
    [(SET, "zeta", "drop_fraction"), (RigL, "alpha", "drop_fraction")],
)
def test_old_updater_names_warn_and_still_work(cls, old, new):
    with pytest.warns(FutureWarning, match=f"'{old}' was renamed to '{new}'"):
        upd = cls(**{old: 0.45, "update_interval": 5})
    assert getattr(upd, new) == 0.45
    with pytest.warns(FutureWarning, match="'end_step' moved to attach"):
        upd = cls(update_interval=5, end_step=11)
    assert _train_steps(upd, n_steps=20) == 2  # steps 5 and 10 only
    with pytest.warns(FutureWarning, match="'generator' moved to attach"):
        a = cls(update_interval=5, growth="random", generator=torch.Generator().manual_seed(3))
    b = cls(update_interval=5, growth="random")
    _train_steps(a, n_steps=6)
    _train_steps(b, n_steps=6, generator=torch.Generator().manual_seed(3))
    for la, lb in zip(a.layers, b.layers):
        assert torch.equal(la.mask, lb.mask)


def test_layer_methods_moved_to_sparsestat_neural_warn():
    import sparsestat.neural.layers as layers

    with pytest.warns(FutureWarning, match="moved to sparsestat.neural.RigL"):
        assert layers.RigL is RigL


def test_rigl_grows_top_gradient_and_drops_smallest_weights():
    layer = MaskedLinear(5, 4, bias=False, density=0.5, generator=torch.Generator().manual_seed(2))
    model = torch.nn.Sequential(layer)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        vals = torch.randperm(20, generator=gen).float().add(1.0).reshape(4, 5)
        layer.weight.copy_(vals * layer.mask)
    opt = torch.optim.Adam(model.parameters(), lr=0.0)
    upd = RigL(0.4, update_interval=1, schedule="constant").attach(model, opt, total_steps=20)
    old_mask = layer.mask.clone()
    w_before = layer.weight.detach().clone()
    grad = (torch.randperm(20, generator=gen).float().add(1.0) / 20).reshape(4, 5)
    layer.weight.grad = grad.clone()
    upd.on_grad_computed()
    opt.step()
    assert upd.on_batch_end()
    budget = int(old_mask.sum())
    k = math.floor(0.4 * budget)
    # independent oracle with numpy
    w_np, m_np, g_np = w_before.numpy().ravel(), old_mask.numpy().ravel(), grad.numpy().ravel()
    active = np.flatnonzero(m_np)
    dropped = active[np.argsort(np.abs(w_np[active]), kind="stable")[:k]]
    candidates = np.setdiff1d(np.arange(20), np.setdiff1d(active, dropped))
    grown = candidates[np.argsort(-g_np[candidates], kind="stable")[:k]]
    expected = m_np.copy()
    expected[dropped] = False
    expected[grown] = True
    np.testing.assert_array_equal(layer.mask.numpy().ravel(), expected)
    fresh = torch.from_numpy(expected & ~m_np).reshape(4, 5)
    assert bool(fresh.any())
    assert bool((layer.weight[fresh] == 0).all())
    state = opt.state[layer.weight]
    assert bool((state["exp_avg"][fresh] == 0).all())
    assert bool((state["exp_avg_sq"][fresh] == 0).all())
    kept = torch.from_numpy(expected & m_np).reshape(4, 5)
    assert torch.equal(layer.weight[kept], w_before[kept])


def test_set_growth_is_reproducible_with_the_generator():
    masks = []
    for _ in range(2):
        upd = SET(0.3, update_interval=5)
        _train_steps(upd, n_steps=12, generator=torch.Generator().manual_seed(11))
        masks.append([layer.mask.clone() for layer in upd.layers])
    for a, b in zip(*masks):
        assert torch.equal(a, b)


# --------------------------------------------------------------------------- O7
def test_cosine_drop_schedule_values():
    got = [cosine_drop_fraction(t, 0.3, 300) for t in (0, 75, 150, 225, 300, 400)]
    np.testing.assert_allclose(got, [0.3, 0.2561, 0.15, 0.0439, 0.0, 0.0], atol=1e-4)
    model = torch.nn.Sequential(MaskedLinear(4, 4, density=0.5))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    upd = RigL(0.3, update_end=0.75).attach(model, opt, total_steps=400, steps_per_epoch=1)
    assert upd.end_step == 300
    assert upd.drop_fraction_at(75) == pytest.approx(0.2561, abs=1e-4)
    assert upd.drop_fraction_at(300) == 0.0


def test_pgf_decay_schedules():
    exp = PGFSchedule(200, decay="exp", decay_coef=0.01)
    lin = PGFSchedule(200, decay="linear", decay_coef=0.01)
    step = PGFSchedule(200, decay="step")
    assert exp.alpha(50) == pytest.approx(0.606531, abs=1e-6)
    assert lin.alpha(50) == pytest.approx(0.5)
    assert lin.alpha(100) == 0.0 and lin.alpha(150) == 0.0
    assert step.alpha(0) == 0.0
    auto = PGFSchedule(1000, decay="exp")
    assert auto.alpha(100) == pytest.approx(0.01)
    phased = PGFSchedule(100, dense_fraction=0.2, finetune_fraction=0.1, decay_coef=0.01)
    assert phased.alpha(19) == 1.0 and phased.alpha(20) == 1.0
    assert phased.alpha(21) == pytest.approx(math.exp(-0.01))
    assert phased.alpha(95) == 0.0


def test_sdgf_frames():
    s = PGFSchedule(400, n=1, m=8, structure="stepwise")
    assert [s.pattern(t) for t in (0, 99, 100, 200, 300, 399)] == [
        (7, 8),
        (7, 8),
        (4, 8),
        (2, 8),
        (1, 8),
        (1, 8),
    ]
    assert sdgf_patterns(1, 16) == [(15, 16), (8, 16), (4, 16), (2, 16), (1, 16)]
    assert sdgf_patterns(1, 8, "geometric") == [(8, 64), (4, 32), (2, 16), (1, 8)]
    assert sdgf_patterns(3, 8)[-1] == (3, 8)
    assert sdgf_patterns(3, 8) == [(7, 8), (4, 8), (3, 8)]


# --------------------------------------------------------------------------- O8
def test_pgf_forward_limits_and_backward_modes():
    torch.manual_seed(0)
    x = torch.randn(4, 8)
    sched = PGFSchedule(200, dense_fraction=0.5, decay="exp", decay_coef=0.01)
    layer = NMSparseLinear(8, 3, method="pgf", pgf=sched)
    dense_out = torch.nn.functional.linear(x, layer.weight, layer.bias)
    hard_out = torch.nn.functional.linear(x, layer.weight * nm_mask(layer.weight, 2, 4), layer.bias)
    layer.set_step(10)  # dense phase: alpha = 1
    torch.testing.assert_close(layer(x), dense_out)
    layer.set_step(199 + 100)  # past the sparse phase: alpha = 0
    torch.testing.assert_close(layer(x), hard_out)
    alpha = sched.alpha(150)
    assert 0 < alpha < 1
    mask = nm_mask(layer.weight, 2, 4)
    for mode in ("ste", "scaled"):
        layer.pgf_backward = mode
        layer.weight.grad = None
        layer.set_step(150)
        out = layer(x)
        out.sum().backward()
        g_tilde = x.sum(0).expand(3, 8)  # dL/dW~ of sum(x W~^T)
        expected = g_tilde if mode == "ste" else g_tilde * (mask + (~mask) * alpha)
        torch.testing.assert_close(layer.weight.grad, expected)


# --------------------------------------------------------------------------- O9
def _quadratic_grad(p, target):
    return (p - target) * 2.0


def test_adams_zero_decay_equals_adam():
    gen = torch.Generator().manual_seed(0)
    init = torch.randn(6, 8, generator=gen)
    bias0 = torch.randn(6, generator=gen)
    targets = [torch.randn(6, 8, generator=gen) for _ in range(20)]
    params = {}
    for name, cls, kw in (("adam", torch.optim.Adam, {}), ("adams", AdamS, {"decay": 0.0})):
        w = torch.nn.Parameter(init.clone())
        b = torch.nn.Parameter(bias0.clone())
        opt = cls([w, b], lr=0.01, **kw)
        for tgt in targets:
            opt.zero_grad()
            ((w - tgt) ** 2).sum().add(((b - tgt[:, 0]) ** 2).sum()).backward()
            opt.step()
        params[name] = (w.detach(), b.detach())
    torch.testing.assert_close(params["adams"][0], params["adam"][0], atol=1e-6, rtol=0)
    torch.testing.assert_close(params["adams"][1], params["adam"][1], atol=1e-6, rtol=0)


def test_adams_ast_variant_matches_float64_loop():
    gen = torch.Generator().manual_seed(4)
    init = torch.randn(4, 8, generator=gen)
    grads = [torch.randn(4, 8, generator=gen) for _ in range(20)]
    lr, b1, b2, eps, lam = 0.01, 0.9, 0.999, 1e-8, 0.05
    w = torch.nn.Parameter(init.clone())
    opt = AdamS([w], lr=lr, decay=lam, update_every=10, variant="ast")
    for g in grads:
        w.grad = g.clone()
        opt.step()
    # reference loop in float64 (section 1.3 of the spec)
    p = init.double().numpy().copy()
    mom = np.zeros_like(p)
    v = np.zeros_like(p)
    mask = None
    for t, g in enumerate(grads):
        if t % 10 == 0:
            a4 = np.abs(p).reshape(4, 2, 4)
            order = np.argsort(-a4, axis=-1, kind="stable")
            mk = np.zeros_like(a4, dtype=bool)
            np.put_along_axis(mk, order[..., :2], True, axis=-1)
            mask = mk.reshape(4, 8)
        d = lam * np.sign(p) * (~mask)
        mom = b1 * mom + (1 - b1) * g.double().numpy()
        a = mom + d
        v = b2 * v + (1 - b2) * a * a
        new = p - lr * (a / (1 - b1 ** (t + 1))) / (np.sqrt(v / (1 - b2 ** (t + 1))) + eps)
        new[(~mask) & (np.sign(new) * np.sign(p) < 0)] = 0.0
        p = new
    np.testing.assert_allclose(w.detach().double().numpy(), p, atol=1e-5)


@pytest.mark.parametrize("variant", ["folded", "ast"])
def test_adams_decay_only_shrinks_pruned_weights(variant):
    gen = torch.Generator().manual_seed(2)
    w = torch.nn.Parameter(torch.randn(4, 8, generator=gen) * 0.01)
    before = w.detach().clone()
    mask = nm_mask(before, 2, 4)
    opt = AdamS([w], lr=0.1, decay=1.0, variant=variant)
    w.grad = torch.zeros_like(w)
    opt.step()
    after = w.detach()
    assert torch.equal(after[mask], before[mask])
    assert bool((after[~mask].abs() < before[~mask].abs()).all())
    assert bool((torch.sign(after[~mask]) * torch.sign(before[~mask]) >= 0).all())
    assert bool((after[~mask] == 0).any())  # lr 0.1 > |w|: clamped to zero, not flipped


def test_adams_masks_change_only_every_t1_steps():
    gen = torch.Generator().manual_seed(8)
    w = torch.nn.Parameter(torch.randn(4, 8, generator=gen))
    opt = AdamS([w], lr=0.2, decay=0.0, update_every=5)
    masks = []
    for _ in range(15):
        w.grad = torch.randn(4, 8, generator=gen)
        opt.step()
        masks.append(opt.state[w]["mask"].clone())
    for t in range(1, 15):
        if t % 5 != 0:
            assert torch.equal(masks[t], masks[t - 1])
    assert any(not torch.equal(masks[t], masks[t - 1]) for t in (5, 10))


# --------------------------------------------------------------------------- O11, O12, O16
def test_sparse_ift_widths():
    assert sparse_ift_widths((64,), 0.75) == ((128,), 1)
    assert sparse_ift_widths((64, 32), 0.75, "parallel") == ((64, 32), 4)
    with pytest.raises(ValueError):
        sparse_ift_widths((64,), 1.0)


def test_topk_activation():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(10, 16, generator=gen)
    out = TopK(4)(x)
    assert bool(((out != 0).sum(1) <= 4).all())
    kth = torch.relu(x).topk(4, dim=1).values[:, -1:]
    torch.testing.assert_close(out, torch.where(torch.relu(x) >= kth, torch.relu(x), 0.0))
    assert torch.equal(TopK(16)(x), torch.relu(x))
    assert torch.equal(TopK(40)(x), torch.relu(x))
    assert bool(((TopK(0.25)(x) != 0).sum(1) <= 4).all())


def test_export_semi_structured_needs_cuda():
    if torch.cuda.is_available():
        pytest.skip("CUDA present: covered by gpu/test_gpu_sparse_training.py")
    with pytest.raises(RuntimeError, match="CUDA"):
        export_semi_structured(torch.nn.Linear(64, 64))
