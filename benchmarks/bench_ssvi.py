"""SSVI vs dense mean-field VI on digits: training time per epoch, accuracy, NLL, ECE.

Peers at equal architecture (64-H-H-10, ReLU), equal optimizer (Adam, cosine learning rate),
equal tempered ELBO (KL weight 0.01 / N, prior N(0, 1), initial sigma 1e-3) and equal
epochs (60 by default: trained to convergence):

* ``SSVIClassifier`` at 90% sparsity (ours),
* ``MeanFieldVIClassifier`` (ours, the same code with every weight active),
* a deterministic MLP of the same architecture (scikit-learn's ``MLPClassifier`` with its
  defaults, trained to convergence on the cross-entropy; the calibration reference),
* bayesian-torch 0.5's ``LinearReparameterization`` layers (dense mean-field VI; its
  ``prior_variance`` argument is used as a standard deviation, so it gets 1.0), if installed
  (``pip install --no-deps bayesian-torch==0.5.0`` keeps the installed torch); otherwise its
  row says "not installed".

Prediction averages the softmax over 32 weight draws for the three VI models. Time: median
over seeds; accuracy, NLL and ECE: mean ± standard deviation over seeds. Run
``python benchmarks/bench_ssvi.py [--quick] [--seeds N] [--epochs E]``.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from _harness import bench_header, limit_threads, markdown_table
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from sparsestat.metrics import expected_calibration_error
from sparsestat.neural import MeanFieldVIClassifier, SSVIClassifier

try:
    from bayesian_torch.layers import LinearReparameterization
except ImportError:  # benchmark-only peer
    LinearReparameterization = None


def _bayesian_torch_fit_predict(X_tr, y_tr, X_te, hidden, epochs, seed, lr=1e-2, batch=64):
    torch.manual_seed(seed)
    sizes = [X_tr.shape[1], *hidden, 10]
    rho0 = math.log(math.expm1(1e-3))
    layers = torch.nn.ModuleList(
        LinearReparameterization(a, b, prior_variance=1.0, posterior_rho_init=rho0)
        for a, b in zip(sizes[:-1], sizes[1:])
    )

    def forward(x):
        kl = 0.0
        for i, layer in enumerate(layers):
            x, k = layer(x)
            kl = kl + k
            if i < len(layers) - 1:
                x = torch.relu(x)
        return x, kl

    opt = torch.optim.Adam(layers.parameters(), lr=lr)
    Xt = torch.tensor(X_tr, dtype=torch.float32)
    yt = torch.tensor(y_tr)
    n = len(yt)
    steps = epochs * math.ceil(n / batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    step = 0
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for s in range(0, n, batch):
            idx = perm[s : s + batch]
            out, kl = forward(Xt[idx])
            warm = min(step / (0.5 * steps), 1.0)
            loss = torch.nn.functional.cross_entropy(out, yt[idx]) + 0.01 * warm * kl / n
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
    fit_time = time.perf_counter() - t0
    with torch.no_grad():
        Xe = torch.tensor(X_te, dtype=torch.float32)
        proba = torch.stack([torch.softmax(forward(Xe)[0], 1) for _ in range(32)]).mean(0)
    return fit_time, proba.double().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny run (smoke test)")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args()
    hidden = (32,) if args.quick else (128, 128)
    epochs = 3 if args.quick else args.epochs

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    print(bench_header("SSVI vs dense mean-field VI (digits)"))
    print(
        f"Architecture 64-{'-'.join(map(str, hidden))}-10, {epochs} epochs, batch 64, Adam 1e-2 "
        f"cosine, KL weight 0.01, prior N(0, 1), {args.seeds} seed(s); time = fit time / epochs "
        "(MLP: / its iterations to convergence).\n"
    )
    results: dict[str, list[tuple[float, float, float, float, int]]] = {}
    torch.set_num_threads(1)
    with limit_threads(1):
        for seed in range(args.seeds):
            X_tr, X_te, y_tr, y_te = train_test_split(
                X, y, test_size=0.3, random_state=seed, stratify=y
            )
            common = {"hidden_layer_sizes": hidden, "max_epochs": epochs, "device": "cpu"}
            common["random_state"] = seed
            ours = {
                "SSVI 90% sparse (ours)": SSVIClassifier(sparsity=0.9, **common),
                "dense MFVI (ours, MeanFieldVIClassifier)": MeanFieldVIClassifier(**common),
            }
            for name, model in ours.items():
                # warm-up (first-call costs: lazy imports, allocator) on a tiny problem
                clone(model).set_params(max_epochs=1).fit(X_tr[:64], y_tr[:64])
                t0 = time.perf_counter()
                model.fit(X_tr, y_tr)
                fit_time = time.perf_counter() - t0
                proba = model.predict_proba(X_te)
                results.setdefault(name, []).append(
                    (fit_time / epochs, *_scores(y_te, proba), model.n_active_)
                )
            mlp = MLPClassifier(hidden, max_iter=1000, random_state=seed)
            t0 = time.perf_counter()
            mlp.fit(X_tr, y_tr)
            fit_time = time.perf_counter() - t0
            n_weights = sum(a * b for a, b in zip([64, *hidden], [*hidden, 10]))
            results.setdefault("deterministic MLP (scikit-learn)", []).append(
                (fit_time / mlp.n_iter_, *_scores(y_te, mlp.predict_proba(X_te)), n_weights)
            )
            name = "dense MFVI (bayesian-torch 0.5)"
            if LinearReparameterization is None:
                results[name] = []
                continue
            _bayesian_torch_fit_predict(X_tr[:64], y_tr[:64], X_te[:4], hidden, 1, seed)
            fit_time, proba = _bayesian_torch_fit_predict(X_tr, y_tr, X_te, hidden, epochs, seed)
            n_weights = sum(a * b for a, b in zip([64, *hidden], [*hidden, 10]))
            results.setdefault(name, []).append(
                (fit_time / epochs, *_scores(y_te, proba), n_weights)
            )

    rows = []
    ref = np.median([r[0] for r in results.get("dense MFVI (bayesian-torch 0.5)", [])] or [np.nan])
    for name, runs in results.items():
        if not runs:
            rows.append((name, "not installed", "", "", "", "", ""))
            continue
        arr = np.array(runs)
        med, mean, std = np.median(arr, axis=0), arr.mean(0), arr.std(0)
        speed = f"{ref / med[0]:.2f}x" if ref == ref else "n/a"
        quality = [f"{mean[j]:.4f} ± {std[j]:.4f}" for j in (1, 2, 3)]
        rows.append((name, float(med[0]), speed, *quality, int(med[4])))
    print(
        markdown_table(
            rows,
            [
                "model",
                "s / epoch",
                "speed vs bayesian-torch",
                "accuracy",
                "NLL",
                "ECE",
                "active weights",
            ],
        )  # fmt: skip
    )


def _scores(y_true, proba):
    acc = float(np.mean(proba.argmax(1) == y_true))
    clipped = np.clip(proba, 1e-12, 1)
    nll = float(log_loss(y_true, clipped / clipped.sum(1, keepdims=True), labels=np.arange(10)))
    return acc, nll, expected_calibration_error(y_true, proba)


if __name__ == "__main__":
    main()
