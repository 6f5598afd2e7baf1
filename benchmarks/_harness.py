"""Shared benchmark helpers: thread limits, warm-up, median of repeats, markdown tables.

Usage in a ``bench_*.py`` script::

    from _harness import bench_header, markdown_table, time_call
    print(bench_header("prox kernels"))
    t, out = time_call(fn, *args, repeat=5)
    print(markdown_table(rows, ["problem", "ours (s)", "peer (s)", "ratio"]))
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from threadpoolctl import threadpool_info, threadpool_limits

__all__ = [
    "bench_header",
    "limit_threads",
    "markdown_table",
    "peak_memory",
    "ratio",
    "time_call",
]

#: Benchmarks run single-threaded unless a script says otherwise (DESIGN section 2).
DEFAULT_THREADS = int(os.environ.get("SPARSESTAT_BENCH_THREADS", "1"))


@contextlib.contextmanager
def limit_threads(n: int = DEFAULT_THREADS) -> Iterator[None]:
    """Context manager limiting BLAS/OpenMP threads and Numba's thread pool to ``n``.

    Numba reads ``NUMBA_NUM_THREADS`` only when it is first imported, so the pool is resized
    with ``numba.set_num_threads`` (capped at the pool size) and restored on exit.
    """
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        numba.set_num_threads(before)


def bench_header(title: str, threads: int = DEFAULT_THREADS) -> str:
    """Markdown header naming the machine, the date and the thread settings."""
    libs = ", ".join(
        sorted({f"{i['internal_api']} {i.get('version') or ''}".strip() for i in threadpool_info()})
    )
    return (
        f"### {title}\n\n"
        f"Machine: {platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"Python {platform.python_version()}; date {_dt.date.today().isoformat()}; "
        f"threads: {threads} (BLAS/OpenMP: {libs or 'none'})\n"
    )


def time_call(
    fn: Callable[..., Any], *args: Any, repeat: int = 5, warmup: int = 1, **kwargs: Any
) -> tuple[float, Any]:
    """Median wall time of ``fn(*args, **kwargs)`` over ``repeat`` runs after ``warmup`` runs.

    Returns the median in seconds and the output of the last run.
    """
    out = None
    for _ in range(warmup):
        out = fn(*args, **kwargs)
    times = []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def first_call_time(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    """Wall time of one call (use on a fresh process to measure compile time)."""
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


def peak_memory(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """Peak traced Python/NumPy memory (MiB) of one call, and its output."""
    import tracemalloc

    tracemalloc.start()
    try:
        out = fn(*args, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20, out


def ratio(peer: float, ours: float) -> str:
    """Speed-up of ours over the peer (peer time / our time), formatted."""
    if ours <= 0 or peer != peer:
        return "n/a"
    return f"{peer / ours:.2f}x"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v != v:
            return "n/a"
        if v == 0 or 1e-3 <= abs(v) < 1e5:
            return f"{v:.4g}"
        return f"{v:.3e}"
    return str(v)


def markdown_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """Format ``rows`` as a GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
