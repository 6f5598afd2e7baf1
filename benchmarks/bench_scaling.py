"""Benchmark: four workloads on a ``dask.distributed`` LocalCluster of 1 and 2 workers.

Workloads, each run on the same data in memory (the NumPy path, in this process) and through
dask (the data read from a zarr store on local disk, written once before timing, no
compression):

* **coding** -- ``LqSparseCoder(D).transform`` of a dask array (256-pixel signals, 256 atoms,
  l1, FISTA with ``max_iter=10``), codes gathered into this process with ``compute()``;
  rows per second. Chunks of 52 MB.
* **SAE from zarr** -- ``SparseAutoencoder(...).fit`` of ``dask.array.from_zarr``: one pass
  of ``partial_fit`` over the row blocks, in order (the in-memory path is ``partial_fit`` on
  the same blocks, so the arithmetic is the same); training rows per second. The training
  itself runs in this process: the workers read the blocks.
* **many KroSBL** -- ``kronecker_sbl_many`` of independent problems sharing one design
  (two 8 x 16 factors, N = 256); problems per second.
* **LDP** -- ``fit_ldp_dask`` on raw rows (simulation mode, d = 20) against the in-memory
  ``LDPSparseLinearRegression.fit``; users per second. Chunks of 52 MB.

For each: the wall time, the throughput, the ratio of the dask path on one worker to the
in-memory path (goal: <= 1.3 at one worker for chunks of >= 50 MB), the CPU time of all the
processes (client, scheduler and workers; on a shared machine the CPU ratio is the one that
stays comparable between runs, the wall ratios need idle cores), the wall speed-up of 2
workers over 1, the peak resident memory of the workers (Linux: ``VmHWM`` of each worker
process, reset before each measurement through ``/proc/self/clear_refs``) and of this process
(the client) above its resident memory before the call, and whether the dask result equals
the in-memory one. The in-memory runs of each workload alternate with its dask runs on the
first cluster (whose idle workers take no CPU), so that both see the same load; each row
gives the best of ``--repeat`` runs (default 2). Workers are processes (``processes=True``)
with one thread each; every process (this one included) runs BLAS, OpenMP, Numba and torch
on one thread. A second table gives the inputs of a scale-out estimate: bytes in and out per
chunk, seconds per chunk on one worker, and the scheduler's round trip for a no-op task.

``distributed`` starts its worker processes with ``MALLOC_TRIM_THRESHOLD_=65536`` (so that
they give freed memory back to the system); glibc then also stops adapting its mmap threshold,
so every large temporary array is mapped and unmapped, and its pages are faulted in again at
each allocation. On array-heavy tasks (coding, LDP) that is CPU time in the kernel that the
in-memory path does not pay. ``--no-malloc-trim`` starts the workers without it.

Run: ``python benchmarks/bench_scaling.py`` (about 3-5 minutes on 2 idle cores;
``--quick`` for a smoke run of a few seconds of work; ``--repeat N`` for the best of N
timings of each row; ``--workers 1 2 4`` to choose the cluster sizes;
``--no-malloc-trim`` as above).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy, Numba and torch start their pools

import argparse  # noqa: E402
import functools  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from _harness import bench_header, limit_threads, markdown_table  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))

MB = 1e6


# ------------------------------------------------------------------ memory (Linux /proc)
def _status_mib(field_name: str) -> float:
    try:
        with open("/proc/self/status") as fh:
            match = re.search(rf"{field_name}:\s+(\d+) kB", fh.read())
    except OSError:
        match = None
    return float(match.group(1)) / 1024 if match else float("nan")


def reset_peak() -> float:
    """Reset this process's peak RSS (VmHWM) to its current RSS; return the RSS in MiB."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass  # not Linux: the peak stays the process's lifetime peak
    return _status_mib("VmRSS")


def peak_rss() -> float:
    """Peak RSS (MiB) since the last :func:`reset_peak`."""
    return _status_mib("VmHWM")


def _noop(i: int) -> int:
    return i


# ------------------------------------------------------------------ workloads
@dataclass
class Workload:
    name: str
    unit: str
    n_items: int  # rows, problems or users per run
    chunk_mb: float
    n_chunks: int
    out_mb_per_chunk: float  # what leaves a worker per chunk
    # both get a row slice (None: all rows; a few rows for the warm-up)
    numpy_run: Callable[[slice | None], Any]
    dask_run: Callable[[slice | None], Any]
    warm: slice
    same: Callable[[Any, Any], bool]
    worker_warm: Callable[[], Any] | None = None
    results: dict[str, Any] = field(default_factory=dict)


def _write_zarr(path: str, X: np.ndarray, chunk_rows: int) -> str:
    import zarr

    z = zarr.create_array(
        store=path,
        shape=X.shape,
        chunks=(chunk_rows, *X.shape[1:]),
        dtype=X.dtype,
        compressors=None,
    )
    z[...] = X
    return path


def _from_zarr(path: str, rows: slice | None) -> Any:
    import dask.array as da

    X = da.from_zarr(path)
    return X if rows is None else X[rows]


def coding(tmp: str, quick: bool) -> Workload:
    from sparsestat.decomposition import LqSparseCoder

    n_features, n_atoms = (64, 64) if quick else (256, 256)
    chunk_rows = 1000 if quick else 25_600  # 25,600 x 256 float64 = 52.4 MB
    n_chunks = 2
    rng = np.random.default_rng(0)
    D = rng.standard_normal((n_atoms, n_features))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.standard_normal((chunk_rows * n_chunks, n_features))
    path = _write_zarr(os.path.join(tmp, "coding.zarr"), X, chunk_rows)
    coder = LqSparseCoder(D, alpha=0.5, solver="fista", max_iter=10).fit(X[:2])

    return Workload(
        name="coding (LqSparseCoder.transform)",
        unit="rows",
        n_items=X.shape[0],
        chunk_mb=chunk_rows * n_features * 8 / MB,
        n_chunks=n_chunks,
        out_mb_per_chunk=chunk_rows * n_atoms * 8 / MB,
        numpy_run=lambda rows: coder.transform(X if rows is None else X[rows]),
        dask_run=lambda rows: coder.transform(_from_zarr(path, rows)).compute(),
        warm=slice(0, 200),
        same=lambda a, b: bool(np.allclose(a, b, rtol=0, atol=1e-12)),
        worker_warm=functools.partial(coder.transform, X[:10]),
    )


def sae(tmp: str, quick: bool) -> Workload:
    import torch

    from sparsestat.neural import SparseAutoencoder, TopK

    torch.set_num_threads(1)
    n_features, n_latents = 64, 256
    chunk_rows = 1024 if quick else 32_768  # 32,768 x 64 float32 = 8.4 MB
    n_chunks = 4 if quick else 8
    rng = np.random.default_rng(1)
    atoms = rng.standard_normal((n_latents, n_features))
    codes = rng.exponential(1.0, (chunk_rows * n_chunks, n_latents))
    codes *= rng.random(codes.shape) < 8 / n_latents
    X = (codes @ atoms + 0.05 * rng.standard_normal((codes.shape[0], n_features))).astype(
        np.float32
    )
    path = _write_zarr(os.path.join(tmp, "sae.zarr"), X, chunk_rows)
    params = {
        "n_components": n_latents,
        "activation": TopK(16),
        "batch_size": 1024,
        "max_epochs": 1,
        "device": "cpu",
        "random_state": 0,
    }

    def in_memory(rows):
        data = X if rows is None else X[rows]
        model = SparseAutoencoder(**params)
        for lo in range(0, data.shape[0], chunk_rows):
            model.partial_fit(data[lo : lo + chunk_rows])
        return model.components_

    return Workload(
        name="SAE training from zarr (fit)",
        unit="rows",
        n_items=X.shape[0],
        chunk_mb=chunk_rows * n_features * 4 / MB,
        n_chunks=n_chunks,
        out_mb_per_chunk=chunk_rows * n_features * 4 / MB,  # the block goes to the client
        numpy_run=in_memory,
        dask_run=lambda rows: SparseAutoencoder(**params).fit(_from_zarr(path, rows)).components_,
        warm=slice(0, 2048),
        same=lambda a, b: bool(np.array_equal(a, b)),
    )


def many_sbl(tmp: str, quick: bool) -> Workload:
    import dask.array as da

    from sparsestat.bayes import kronecker_sbl_many
    from sparsestat.datasets import make_kronecker_sparse_signal

    shapes = ((6, 8), (7, 8)) if quick else ((8, 16), (8, 16))
    n_problems, chunk = (8, 4) if quick else (128, 16)
    factors, y0, _ = make_kronecker_sparse_signal(
        factor_shapes=shapes, n_nonzero=3, snr_db=20, random_state=0
    )
    rng = np.random.default_rng(2)
    Y = y0 * rng.uniform(0.5, 2.0, (n_problems, 1)) + 0.05 * rng.standard_normal(
        (n_problems, y0.size)
    )
    n_features = int(np.prod([s[1] for s in shapes]))

    return Workload(
        name="many KroneckerSBL fits (kronecker_sbl_many)",
        unit="problems",
        n_items=n_problems,
        chunk_mb=chunk * y0.size * 8 / MB,
        n_chunks=n_problems // chunk,
        out_mb_per_chunk=chunk * n_features * 8 / MB,
        numpy_run=lambda rows: kronecker_sbl_many(factors, Y if rows is None else Y[rows]),
        dask_run=lambda rows: kronecker_sbl_many(
            factors, da.from_array(Y if rows is None else Y[rows], chunks=(chunk, -1))
        ).compute(),
        warm=slice(0, 2),
        same=lambda a, b: bool(np.array_equal(a, b)),
        worker_warm=functools.partial(kronecker_sbl_many, factors, Y[:1]),
    )


def _ldp_warm(make: Callable[[], Any], X: np.ndarray, y: np.ndarray) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the estimate is noise" at 5000 users
        make().partial_fit(X, y, user_ids=np.arange(X.shape[0]))


def ldp(tmp: str, quick: bool) -> Workload:
    from sparsestat.privacy import LDPSparseLinearRegression, fit_ldp_dask

    d = 20
    chunk_rows = 20_000 if quick else 327_680  # 327,680 x 20 float64 = 52.4 MB
    n_chunks = 2 if quick else 4
    rng = np.random.default_rng(3)
    X = rng.uniform(-1.0, 1.0, (chunk_rows * n_chunks, d))
    y = X[:, 0] - X[:, 1] + 0.1 * rng.standard_normal(X.shape[0])
    xp = _write_zarr(os.path.join(tmp, "ldp_X.zarr"), X, chunk_rows)
    yp = _write_zarr(os.path.join(tmp, "ldp_y.zarr"), y, chunk_rows)

    def est():
        return LDPSparseLinearRegression(
            epsilon=1.0, delta=1e-6, bounds_X=1.0, bounds_y=3.0, random_state=0
        )

    return Workload(
        name="LDP aggregation (fit_ldp_dask)",
        unit="users",
        n_items=X.shape[0],
        chunk_mb=chunk_rows * (d + 1) * 8 / MB,
        n_chunks=n_chunks,
        out_mb_per_chunk=(d * (d + 1) / 2 + d) * 8 / MB,  # the partial sums
        numpy_run=lambda rows: est().fit(*((X, y) if rows is None else (X[rows], y[rows]))).coef_,
        dask_run=lambda rows: fit_ldp_dask(est(), _from_zarr(xp, rows), _from_zarr(yp, rows)).coef_,
        warm=slice(0, 5000),  # > 2**18 draws: the compiled kernel, as in the timed runs
        same=lambda a, b: bool(np.array_equal(a, b)),
        worker_warm=functools.partial(_ldp_warm, est, X[:5000], y[:5000]),
    )


# ------------------------------------------------------------------ measurement
def _timed(fn: Callable[[], Any], cpu: Callable[[], float]) -> tuple[float, float, Any]:
    """Wall time and CPU time (``cpu()``: seconds, summed over the processes) of ``fn()``."""
    c0, t0 = cpu(), time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, cpu() - c0, out


def _numpy_once(w: Workload) -> dict[str, Any]:
    before = reset_peak()
    wall, cpu, out = _timed(lambda: w.numpy_run(None), time.process_time)
    return {"time": wall, "cpu": cpu, "out": out, "client": peak_rss() - before}


def _dask_once(w: Workload, client: Any) -> dict[str, Any]:
    def cpu() -> float:  # this process (client and scheduler) and every worker
        return time.process_time() + sum(client.run(time.process_time).values())

    idle = client.run(reset_peak)
    before = reset_peak()
    wall, used, out = _timed(lambda: w.dask_run(None), cpu)
    client_peak = peak_rss() - before
    peaks = client.run(peak_rss)
    return {
        "time": wall,
        "cpu": used,
        "client": client_peak,
        "worker_peak": max(peaks.values()),
        "worker_extra": max(peaks[a] - idle[a] for a in peaks),
        "same": w.same(out, w.results["numpy"]["out"]),
    }


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Fastest wall and CPU times of the repeats, largest memory, results of the last."""
    best = dict(runs[-1])
    for key in ("time", "cpu"):
        best[key] = min(r[key] for r in runs)
    for key in ("client", "worker_peak", "worker_extra"):
        if key in best:
            best[key] = max(r[key] for r in runs)
    best["same"] = all(r.get("same", True) for r in runs)
    return best


def measure(w: Workload, client: Any, n_workers: int, repeat: int, with_numpy: bool) -> None:
    """Time ``repeat`` dask runs (alternating with in-memory runs when ``with_numpy``)."""
    with limit_threads(1):
        if with_numpy:
            w.numpy_run(w.warm)  # warm-up on a few rows (compilation, first calls), untimed
        if w.worker_warm is not None:  # on every worker: imports, Numba compilation
            client.run(w.worker_warm)
        w.dask_run(w.warm)  # and the dask path itself, on a few rows
        numpy_runs, dask_runs = [], []
        for _ in range(repeat):
            if with_numpy:
                numpy_runs.append(_numpy_once(w))
                w.results["numpy"] = numpy_runs[-1]
            dask_runs.append(_dask_once(w, client))
    if with_numpy:
        w.results["numpy"] = _best(numpy_runs)
    w.results[n_workers] = _best(dask_runs)


def task_round_trip(client: Any, n: int) -> float:
    client.gather(client.map(_noop, range(10), pure=False))
    t0 = time.perf_counter()
    client.gather(client.map(_noop, range(n), pure=False))
    return (time.perf_counter() - t0) / n


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "n/a"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            match = re.search(r"model name\s*:\s*(.+)", fh.read())
        return match.group(1).strip() if match else "unknown"
    except OSError:
        return "unknown"


# ------------------------------------------------------------------ report
def _fmt_rate(n: int, t: float) -> str:
    return f"{n / t:,.0f}" if n / t >= 100 else f"{n / t:.3g}"


HEADERS = [
    "workload",
    "path",
    "workers",
    "chunk MB x chunks",
    "wall (s)",
    "throughput (per wall s)",
    "wall / in-memory",
    "CPU (s, all processes)",
    "CPU / in-memory",
    "wall speed-up vs first",
    "worker peak RSS (MiB)",
    "worker peak above idle (MiB)",
    "client peak above start (MiB)",
    "equals in-memory",
]


def table(workloads: list[Workload], worker_counts: list[int]) -> str:
    """One row per workload and path; ratios against the in-memory run of the same workload."""
    rows = []
    for w in workloads:
        ref, first = w.results["numpy"], w.results[worker_counts[0]]
        chunks = f"{w.chunk_mb:.3g} x {w.n_chunks}"
        rate = f"{_fmt_rate(w.n_items, ref['time'])} {w.unit}/s"
        rows.append(
            [
                w.name,
                "in-memory (NumPy)",
                "-",
                chunks,
                ref["time"],
                rate,
                "1 (ref.)",
                ref["cpu"],
                "1 (ref.)",
                "-",
                "-",
                "-",
                ref["client"],
                "-",
            ]
        )
        for n in worker_counts:
            m = w.results[n]
            rows.append(
                [
                    w.name,
                    "dask",
                    n,
                    chunks,
                    m["time"],
                    f"{_fmt_rate(w.n_items, m['time'])} {w.unit}/s",
                    f"{m['time'] / ref['time']:.2f}x",
                    m["cpu"],
                    f"{m['cpu'] / ref['cpu']:.2f}x",
                    f"{first['time'] / m['time']:.2f}x",
                    m["worker_peak"],
                    m["worker_extra"],
                    m["client"],
                    "yes" if m["same"] else "NO",
                ]
            )
    return markdown_table(rows, HEADERS)


def estimate_inputs(workloads: list[Workload], first: int, round_trip: float) -> str:
    rows = []
    for w in workloads:
        per_chunk = w.results[first]["time"] / w.n_chunks
        rows.append([w.name, w.chunk_mb, w.out_mb_per_chunk, per_chunk, w.n_chunks])
    return (
        markdown_table(
            rows,
            [
                "workload",
                "in per chunk (MB)",
                "out per chunk (MB)",
                f"s per chunk ({first} worker)",
                "chunks",
            ],
        )
        + f"\n\nScheduler round trip of a no-op task: {1e3 * round_trip:.2f} ms (mean)."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke sizes")
    parser.add_argument("--repeat", type=int, default=2, help="timings per row (the best)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--no-malloc-trim",
        action="store_true",
        help="unset MALLOC_TRIM_THRESHOLD_, which distributed sets in its worker processes",
    )
    args = parser.parse_args(argv)

    import dask
    import distributed

    warnings.simplefilter("ignore")
    if args.no_malloc_trim:  # None unsets the variable (distributed.nanny._get_env_variables)
        dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None})
    print(bench_header("Scaling with dask.distributed (LocalCluster, processes, 1 thread each)"))
    print(f"CPU: {cpu_model()}; load average at start: {loadavg()}")
    trim = dask.config.get("distributed.nanny.pre-spawn-environ").get("MALLOC_TRIM_THRESHOLD_")
    print(f"workers' MALLOC_TRIM_THRESHOLD_: {trim if trim is not None else 'unset'}")
    print(f"command: python benchmarks/bench_scaling.py {' '.join(sys.argv[1:])}\n".rstrip())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_scaling_") as tmp:
        workloads = [make(tmp, args.quick) for make in (coding, sae, many_sbl, ldp)]
        loads, round_trip = [], float("nan")
        for n in args.workers:
            with (
                distributed.LocalCluster(
                    n_workers=n, processes=True, threads_per_worker=1, dashboard_address=None
                ) as cluster,
                distributed.Client(cluster) as client,
            ):
                client.wait_for_workers(n)
                if n == args.workers[0]:
                    round_trip = task_round_trip(client, 200 if args.quick else 1000)
                for w in workloads:  # in-memory runs alternate with the first cluster's
                    measure(w, client, n, args.repeat, with_numpy=n == args.workers[0])
                loads.append(f"{n} worker(s): {loadavg()}")
    print(table(workloads, args.workers))
    print()
    print(estimate_inputs(workloads, args.workers[0], round_trip))
    print(f"\nLoad average after each cluster: {'; '.join(loads)}.")
    print(f"Total wall time: {time.perf_counter() - started:.0f} s.")
    failed = [w.name for w in workloads for n in args.workers if not w.results[n]["same"]]
    if failed:
        print(f"dask results differ from the in-memory ones: {failed}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
