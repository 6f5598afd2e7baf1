"""SSVI calibration study on digits: tune on validation splits, then a paired test evaluation.

Two phases, kept apart so that no test score ever informs a choice:

``tune``
    For each tuning seed (default 100-104): hold out the stratified 30% test split of that
    seed and never look at it; carve a stratified 25% validation split from the remaining
    training part; fit SSVI (90% sparse) on the rest with every configuration of the grid and
    score accuracy, NLL and ECE (15 equal-width bins) on the validation split only. The
    configuration is chosen by a rule fixed in advance: the lowest mean validation ECE among
    the configurations whose mean validation accuracy is within 0.005 of the best one.

``evaluate``
    For each evaluation seed (default 0-11): stratified 70/30 train/test split. SSVI with the
    chosen configuration, dense mean-field VI with the same configuration and the
    deterministic MLP baselines are trained on the training part and scored on the test part.
    Paired per-seed differences SSVI minus MLP (ECE, NLL) with mean and standard error.

Deterministic MLP baselines (fixed before any test result was seen; not tuned against SSVI):

* ``mlp_converged``: scikit-learn's ``MLPClassifier`` with the same hidden layers and its
  defaults (Adam, lr 1e-3, batch 200, L2 1e-4), run to convergence (``max_iter=1000``) on
  the whole training part: the recipe a user would write;
* ``mlp_early_stopped``: the same ``MLPClassifier`` trained epoch by epoch (``partial_fit``)
  on the training part minus the same validation split as SSVI's, the number of epochs
  (1-200) chosen by the lowest validation NLL, then retrained from scratch for that many
  epochs on the whole training part (early stopping on the shared validation split).

Usage: ``python benchmarks/ssvi_calibration_study.py tune --out tune.jsonl`` then
``python benchmarks/ssvi_calibration_study.py evaluate --config '{"kl_coef": 0.1}'``.
Single-threaded (``torch.set_num_threads(1)``); ``--jobs`` runs seeds in parallel processes.
``summary-tune --out <file>`` / ``summary-eval --out <file>`` print the tables of saved records
(``benchmarks/results/`` is git-ignored: keep records there).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import multiprocessing as mp
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split

HIDDEN = (128, 128)
MLP_MAX_EPOCHS_ES = 200


def _data():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def test_split(X, y, seed):
    """The example's split: stratified, 30% test."""
    return train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)


def validation_split(X_train, y_train, seed):
    """Stratified 25% validation split carved from the training part only."""
    return train_test_split(
        X_train, y_train, test_size=0.25, random_state=seed + 1000, stratify=y_train
    )


def scores(y_true, proba):
    """Accuracy, NLL, ECE (15 bins), mean confidence."""
    from sparsestat.metrics import expected_calibration_error

    clipped = np.clip(proba, 1e-12, 1.0)
    clipped /= clipped.sum(1, keepdims=True)
    return {
        "acc": float(np.mean(proba.argmax(1) == y_true)),
        "nll": float(log_loss(y_true, clipped, labels=np.arange(10))),
        "ece": float(expected_calibration_error(y_true, proba, n_bins=15)),
        "conf": float(proba.max(1).mean()),
    }


def _ssvi(config, seed, dense=False):
    from sparsestat.neural import MeanFieldVIClassifier, SSVIClassifier

    kw = {"hidden_layer_sizes": HIDDEN, "device": "cpu", "random_state": seed, **config}
    if dense:  # the same configuration without the mask-update parameters
        sparse_only = ("update_interval", "drop_fraction", "update_end", "criterion")
        return MeanFieldVIClassifier(**{k: v for k, v in kw.items() if k not in sparse_only})
    return SSVIClassifier(sparsity=0.9, **kw)


def _mlp(seed, **kw):
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(HIDDEN, random_state=seed, **kw)


def mlp_early_stopping_epochs(X_fit, y_fit, X_val, y_val, seed):
    """Epoch count (1..200) of lowest validation NLL, trained by ``partial_fit``."""
    mlp = _mlp(seed)
    best, best_epoch = np.inf, 1
    for epoch in range(1, MLP_MAX_EPOCHS_ES + 1):
        mlp.partial_fit(X_fit, y_fit, classes=np.arange(10))
        nll = scores(y_val, mlp.predict_proba(X_val))["nll"]
        if nll < best:
            best, best_epoch = nll, epoch
    return best_epoch


def _fit_mlp_epochs(X, y, seed, epochs):
    mlp = _mlp(seed)
    for _ in range(epochs):
        mlp.partial_fit(X, y, classes=np.arange(10))
    return mlp


def _tune_job(args):
    config, seed = args
    import torch

    torch.set_num_threads(1)
    X, y = _data()
    X_tr, _X_te, y_tr, _y_te = test_split(X, y, seed)  # the test part is never used here
    X_fit, X_val, y_fit, y_val = validation_split(X_tr, y_tr, seed)
    if config == "mlp":  # validation scores of the fixed baselines, for reference only
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            conv = _mlp(seed, max_iter=1000).fit(X_fit, y_fit)
            epochs = mlp_early_stopping_epochs(X_fit, y_fit, X_val, y_val, seed)
            es = _fit_mlp_epochs(X_fit, y_fit, seed, epochs)
        return [
            {
                "config": "mlp_converged",
                "seed": seed,
                "val": scores(y_val, conv.predict_proba(X_val)),
            },
            {
                "config": "mlp_early_stopped",
                "seed": seed,
                "val": scores(y_val, es.predict_proba(X_val)),
            },
        ]
    config = dict(config)
    mc_list = config.pop("mc_list", [None])
    t0 = time.process_time()
    model = _ssvi(config, seed).fit(X_fit, y_fit)
    cpu = time.process_time() - t0
    out = []
    for n_mc in mc_list:  # several Monte-Carlo sample counts from one fit
        cfg = config if n_mc is None else {**config, "n_mc_samples": n_mc}
        proba = model.predict_proba(X_val, n_samples=n_mc)
        out.append({"config": cfg, "seed": seed, "cpu_s": cpu, "val": scores(y_val, proba)})
    return out


def _eval_job(args):
    config, seed = args
    import torch

    torch.set_num_threads(1)
    X, y = _data()
    X_tr, X_te, y_tr, y_te = test_split(X, y, seed)
    X_fit, X_val, y_fit, y_val = validation_split(X_tr, y_tr, seed)
    rec = {"config": config, "seed": seed}
    rec["ssvi"] = scores(y_te, _ssvi(config, seed).fit(X_tr, y_tr).predict_proba(X_te))
    rec["dense_vi"] = scores(
        y_te, _ssvi(config, seed, dense=True).fit(X_tr, y_tr).predict_proba(X_te)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conv = _mlp(seed, max_iter=1000).fit(X_tr, y_tr)
        rec["mlp_converged"] = scores(y_te, conv.predict_proba(X_te))
        rec["mlp_converged"]["epochs"] = int(conv.n_iter_)
        epochs = mlp_early_stopping_epochs(X_fit, y_fit, X_val, y_val, seed)
        es = _fit_mlp_epochs(X_tr, y_tr, seed, epochs)
        rec["mlp_early_stopped"] = scores(y_te, es.predict_proba(X_te))
        rec["mlp_early_stopped"]["epochs"] = epochs
    return rec


def _run(fn, jobs, n_jobs, out):
    ctx = mp.get_context("spawn")
    with ctx.Pool(n_jobs) as pool, open(out, "a") as fh:
        for out in pool.imap_unordered(fn, jobs):
            for rec in out if isinstance(out, list) else [out]:
                fh.write(json.dumps(rec) + "\n")
                fh.flush()
                print(json.dumps(rec), flush=True)


def summarize_tuning(path):
    """Mean validation scores per configuration and the pre-stated selection rule."""
    by_cfg = {}
    with open(path) as fh:
        lines = fh.readlines()
    for line in lines:
        rec = json.loads(line)
        by_cfg.setdefault(json.dumps(rec["config"], sort_keys=True), []).append(rec["val"])
    rows = []
    for cfg, vals in by_cfg.items():
        mean = {k: float(np.mean([v[k] for v in vals])) for k in vals[0]}
        se = float(np.std([v["ece"] for v in vals], ddof=1) / math.sqrt(len(vals)))
        rows.append((cfg, len(vals), mean, se))
    ssvi_rows = [r for r in rows if not r[0].startswith('"mlp')]
    best_acc = max(r[2]["acc"] for r in ssvi_rows)
    eligible = [r for r in ssvi_rows if r[2]["acc"] >= best_acc - 0.005]
    chosen = min(eligible, key=lambda r: r[2]["ece"])
    print("| config | splits | val acc | val NLL | val ECE (se) | val conf |")
    print("|---|---|---|---|---|---|")
    for cfg, n, m, se in sorted(rows, key=lambda r: r[2]["ece"]):
        mark = " **chosen**" if cfg == chosen[0] else ""
        print(
            f"| {cfg}{mark} | {n} | {m['acc']:.4f} | {m['nll']:.4f} | {m['ece']:.4f} "
            f"({se:.4f}) | {m['conf']:.4f} |"
        )
    return json.loads(chosen[0])


def summarize_evaluation(path):
    """Per-model means and paired SSVI-minus-baseline differences with standard errors."""
    with open(path) as fh:
        recs = [json.loads(line) for line in fh]
    recs.sort(key=lambda r: r["seed"])
    n = len(recs)
    models = ["ssvi", "dense_vi", "mlp_converged", "mlp_early_stopped"]
    print(f"{n} seeds: {[r['seed'] for r in recs]}; config {recs[0]['config']}")
    print("| model | accuracy | NLL | ECE | mean confidence |")
    print("|---|---|---|---|---|")
    for m in models:
        cols = []
        for k in ("acc", "nll", "ece", "conf"):
            v = np.array([r[m][k] for r in recs])
            cols.append(f"{v.mean():.4f} ± {v.std(ddof=1) / math.sqrt(n):.4f}")
        print(f"| {m} | " + " | ".join(cols) + " |")
    print("\nPaired differences (mean ± standard error over seeds; negative favours SSVI):")
    print("| difference | ECE | NLL | accuracy | seeds SSVI better (ECE) |")
    print("|---|---|---|---|---|")
    for base in ("mlp_converged", "mlp_early_stopped", "dense_vi"):
        cols = []
        for k in ("ece", "nll", "acc"):
            d = np.array([r["ssvi"][k] - r[base][k] for r in recs])
            cols.append(f"{d.mean():+.4f} ± {d.std(ddof=1) / math.sqrt(n):.4f}")
        wins = sum(r["ssvi"]["ece"] < r[base]["ece"] for r in recs)
        print(f"| SSVI - {base} | " + " | ".join(cols) + f" | {wins}/{n} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("phase", choices=["tune", "evaluate", "summary-tune", "summary-eval"])
    p.add_argument("--out", default="ssvi_calibration.jsonl")
    p.add_argument("--seeds", default=None, help="comma-separated seeds")
    p.add_argument("--grid", default=None, help="JSON dict of lists (tune)")
    p.add_argument("--config", default="{}", help="JSON dict (evaluate)")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--mlp-reference", action="store_true", help="also score the MLPs (tune)")
    a = p.parse_args(argv)
    if a.phase == "summary-tune":
        summarize_tuning(a.out)
        return
    if a.phase == "summary-eval":
        summarize_evaluation(a.out)
        return
    if a.phase == "tune":
        seeds = [int(s) for s in (a.seeds or "100,101,102,103,104").split(",")]
        grid = json.loads(a.grid or '{"kl_coef": [0.01, 0.1, 1.0]}')
        mc_list = grid.pop("n_mc_samples", None)
        keys = sorted(grid)
        configs = [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]
        if mc_list:
            configs = [{**c, "mc_list": mc_list} for c in configs]
        jobs = [(c, s) for c in configs for s in seeds]
        if a.mlp_reference:
            jobs = [("mlp", s) for s in seeds] + jobs
        _run(_tune_job, jobs, a.jobs, a.out)
        summarize_tuning(a.out)
    else:
        seeds = [int(s) for s in (a.seeds or ",".join(map(str, range(12)))).split(",")]
        config = json.loads(a.config)
        _run(_eval_job, [(config, s) for s in seeds], a.jobs, a.out)
        summarize_evaluation(a.out)


if __name__ == "__main__":
    sys.exit(main())
