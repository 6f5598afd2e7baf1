"""The selection kernels of SparseAutoencoder against torch and NumPy, one thread.

Three tables, each a ratio measured in the same run (median of 7 timed calls after a
warm-up):

1. Per-row top-k (TopK, AbsTopK, AuxK): the compiled heap selection of
   ``sparsestat._kernels.sae`` (``sae_row_topk``, what ``TopK`` runs on CPU tensors) against
   ``torch.topk(sorted=False)`` on the same ReLU'd pre-activations, B = 1024 rows.
2. Batch top-k (BatchTopK, Mutual Choice): the positions of the ``k * B`` largest entries of
   the flattened (B, F) block, sorted, with ``sae_flat_topk`` (introselect threshold on the
   negated values, partitioned in place, plus a compiled ordered scan) against the same
   threshold found with
   ``np.partition`` at ``kth = n - k`` (the form that degrades when most entries are the
   zeros of a ReLU) and against ``torch.topk`` followed by a sort.
3. One training step of the autoencoder (CPU sparse path, autograd-free) for TopK and
   BatchTopK at B1 sizes (d = 64, F = 128, k = 4, batch 512), so that the two selections can
   be compared where they are used.

Run::

    PYTHONPATH=.:benchmarks python benchmarks/bench_sae_kernels.py
"""

from __future__ import annotations

import os

import numpy as np
import torch
from _harness import bench_header, limit_threads, markdown_table, time_call

from sparsestat._kernels import sae as _sae_kernels  # noqa: F401  (registers the kernels)
from sparsestat._kernels._dispatch import get_kernel
from sparsestat.datasets import make_planted_features
from sparsestat.neural import BatchTopK, SparseAutoencoder, TopK
from sparsestat.neural.layers import sparse_train_step

QUICK = os.environ.get("SPARSESTAT_QUICK") == "1"
REPEAT = 3 if QUICK else 7


def _relu_pre(B, F, seed=0):
    rng = np.random.default_rng(seed)
    return np.maximum(rng.standard_normal((B, F)).astype(np.float32), 0)


def row_topk_table():
    rows = []
    for F, k in ((128, 4), (3072, 32), (16384, 32), (16384, 64)):
        a = _relu_pre(256 if QUICK else 1024, F)
        t = torch.from_numpy(a)
        fn = get_kernel("sae_row_topk", a)
        ours, idx = time_call(fn, a, k, repeat=REPEAT)
        peer, ref = time_call(_torch_topk, t, k, repeat=REPEAT)
        same = np.array_equal(
            np.sort(np.take_along_axis(a, idx, 1), 1), np.sort(t.gather(1, ref).numpy(), 1)
        )
        rows.append(
            [
                a.shape[0],
                F,
                k,
                f"{ours * 1e3:.2f}",
                f"{peer * 1e3:.2f}",
                f"{peer / ours:.2f}x",
                same,
            ]
        )
    headers = ["B", "F", "k", "ours ms", "torch.topk ms", "speed-up", "same values"]
    return markdown_table(rows, headers)


def _torch_topk(t, k):
    return t.topk(k, dim=1, sorted=False).indices


def _torch_flat_topk(t, k):
    return t.topk(k, sorted=False).indices.sort().values


def _partition_negated(values, k):
    negated = -values
    negated.partition(k - 1)
    return -negated[k - 1]


def _partition_tail(values, k):
    n = values.shape[0]
    return np.partition(values, n - k)[n - k]


def flat_topk_table():
    rows = []
    for B, F, k in ((512, 128, 4), (1024, 3072, 32)):
        flat = _relu_pre(B, F).reshape(-1)
        n_keep = k * B
        fn = get_kernel("sae_flat_topk", flat)
        ours, pos = time_call(fn, flat, n_keep, repeat=REPEAT)
        tail, _ = time_call(_partition_tail, flat, n_keep, repeat=REPEAT)
        neg, _ = time_call(_partition_negated, flat, n_keep, repeat=REPEAT)
        t = torch.from_numpy(flat)
        peer, _ = time_call(_torch_flat_topk, t, n_keep, repeat=REPEAT)
        frac_zero = float((flat == 0).mean())
        rows.append(
            [
                f"{B} x {F}",
                n_keep,
                f"{frac_zero:.2f}",
                f"{ours * 1e3:.3f}",
                f"{neg * 1e3:.3f}",
                f"{tail * 1e3:.3f}",
                f"{tail / neg:.1f}x",
                f"{peer * 1e3:.3f}",
                f"{peer / ours:.2f}x",
            ]
        )
    headers = [
        "block",
        "k * B",
        "zeros",
        "sae_flat_topk ms",
        "threshold, negated partition ms",
        "threshold, partition at n - k ms",
        "negated vs n - k",
        "torch.topk + sort ms",
        "sae_flat_topk vs torch",
    ]
    return markdown_table(rows, headers)


def step_table():
    X, _, _ = make_planted_features(4096, 64, 128, random_state=0)
    X = torch.from_numpy(X.astype(np.float32))
    rows = []
    times = {}
    for name, act in (("TopK", TopK(4)), ("BatchTopK", BatchTopK(4))):
        sae = SparseAutoencoder(128, activation=act, max_epochs=1, batch_size=512, random_state=0)
        sae.fit(X.numpy()[:1024])
        m = sae.module_.train()
        batches = [X[i : i + 512] * sae.input_scale_ for i in range(0, 4096, 512)]

        def epoch(m=m, batches=batches):
            for xb in batches:
                sparse_train_step(m, xb, weight=1.0)

        t, _ = time_call(epoch, repeat=REPEAT)
        times[name] = t / len(batches)
        rows.append([name, f"{times[name] * 1e3:.3f}"])
    rows.append(["BatchTopK / TopK", f"{times['BatchTopK'] / times['TopK']:.2f}"])
    return markdown_table(rows, ["one step (d = 64, F = 128, k = 4, batch 512)", "ms"])


def main():
    torch.set_num_threads(1)
    print(bench_header("Sparse-autoencoder selection kernels"))
    if hasattr(os, "getloadavg"):
        print("load average at start: " + ", ".join(f"{v:.1f}" for v in os.getloadavg()))
    with limit_threads(1):
        print("\nPer-row top-k (ReLU'd Gaussian pre-activations)\n")
        print(row_topk_table())
        print("\nBatch top-k positions (flattened block)\n")
        print(flat_topk_table())
        print("\nTraining step (CPU sparse path)\n")
        print(step_table())
    if hasattr(os, "getloadavg"):
        print("\nload average at end: " + ", ".join(f"{v:.1f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
