"""Exact private sums: the server side of the local-privacy family.

A :class:`PrivateSums` holds the running sums of the users' reports of one model, per fold
and per *channel* (one released statistic, e.g. the upper triangle of ``x x^T`` or ``x y``),
together with the ids of the users who reported. Reports are rounded to a fixed-point grid
of spacing ``unit`` (a power of two chosen from public quantities; rounding is
post-processing) and summed as integers in two int64 limbs, so that the sums are the same
bit for bit whatever the order, the batching, the machine or the dask partition of the
users. The object owns the limbs, the fold counts, the runs of user ids (a user reports at
most once) and :meth:`PrivateSums.merge`; estimators keep their statistics' meaning and the
estimate.

Three ways in:

* :meth:`PrivateSums.add_reports`: reports made elsewhere (client devices);
* :meth:`PrivateSums.add_raw`: raw rows privatised here (a *simulation*: the raw data is in
  this process), either with keyed NumPy noise drawn inside a fused kernel, with noise from
  a source object, or with a reporter callable (the exact samplers);
* :meth:`PrivateSums.add_aggregated`: raw rows plus one aggregated noise draw per fold
  (experiments only; no per-user report exists).
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sparsestat._kernels.ldp import (
    exact_accumulate,
    exact_to_float,
    gaussian_report_sums,
    keyed_gaussian_report_sums,
    normalise_limbs,
    prepared_rows,
    stream_block_size,
    triu_indices,
)

__all__ = [
    "Channel",
    "Clipping",
    "PrivateSums",
    "id_runs",
    "stream_key",
    "theory_bounds",
    "union_runs",
]

#: Numbers per chunk of per-user noise (8 MiB of float64) on the chunked paths.
CHUNK_ENTRIES = 1 << 20


def theory_bounds(n: int, d: int) -> tuple[float, float]:
    """Data-independent clipping bounds for standardised sub-Gaussian data.

    Parameters
    ----------
    n : int
        Number of users (public).
    d : int
        Number of features.

    Returns
    -------
    tau1, tau2 : float
        ``sqrt(2 ln(2 n d))`` and ``sqrt(2 ln(2 n))``.
    """
    return math.sqrt(2 * math.log(2 * n * d)), math.sqrt(2 * math.log(2 * n))


def stream_key(random_state: Any) -> int | None:
    """The key of the keyed noise streams of a simulation (at least 128 bits when drawn).

    Parameters
    ----------
    random_state : None, int, numpy Generator or RandomState
        None: no fixed key (each call draws 128 bits of fresh operating-system entropy).
        An int is the key itself (reproducible by whoever knows it). A generator gives a key
        of 128 bits drawn from it.

    Returns
    -------
    key : int or None
        Non-negative key.
    """
    if random_state is None:
        return None
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if int(random_state) < 0:
            raise ValueError(f"random_state must be non-negative; got {random_state}")
        return int(random_state)
    if isinstance(random_state, np.random.RandomState):
        words = random_state.randint(0, 2**32, size=4, dtype=np.uint64)
    elif isinstance(random_state, np.random.Generator):
        words = random_state.integers(0, 2**32, size=4, dtype=np.uint64)
    else:
        raise TypeError(
            "random_state must be None, an int or a numpy Generator / RandomState; got "
            f"{type(random_state).__name__}"
        )
    return sum(int(w) << (32 * i) for i, w in enumerate(words))


def id_runs(ids: np.ndarray) -> list[tuple[int, int]]:
    """Sorted disjoint ``[start, stop)`` runs covering distinct user ids.

    Parameters
    ----------
    ids : ndarray of int
        User ids of one batch.

    Returns
    -------
    runs : list of (int, int)
        The runs.

    Raises
    ------
    ValueError
        When an id appears twice in the batch.
    """
    if ids.size and np.all(np.diff(ids) == 1):  # one contiguous batch
        return [(int(ids[0]), int(ids[-1]) + 1)]
    s = np.sort(ids)
    if s.size and np.any(np.diff(s) == 0):
        raise ValueError("a user id appears twice in one batch; each user reports once")
    breaks = np.flatnonzero(np.diff(s) != 1) + 1
    starts = s[np.concatenate(([0], breaks))] if s.size else s
    stops = s[np.concatenate((breaks - 1, [s.size - 1]))] + 1 if s.size else s
    return [(int(a), int(b)) for a, b in zip(starts, stops)]


def union_runs(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of two disjoint run lists.

    Parameters
    ----------
    a, b : list of (int, int)
        Disjoint sorted runs.

    Returns
    -------
    runs : list of (int, int)
        Their union, adjacent runs joined.

    Raises
    ------
    ValueError
        When a user id is in both (that user would report twice).
    """
    merged: list[tuple[int, int]] = []
    for start, stop in sorted(a + b):
        if merged and start < merged[-1][1]:
            raise ValueError(
                f"user ids [{start}, {min(stop, merged[-1][1])}) already reported to this "
                "model; a user may report only once (give each device its own user id)"
            )
        if merged and start == merged[-1][1]:
            merged[-1] = (merged[-1][0], stop)
        else:
            merged.append((start, stop))
    return merged


def _contiguous_start(ids: Any) -> int | None:
    """First id of a batch of consecutive ids (a ``range`` or an array), else None."""
    if isinstance(ids, range):
        return ids.start if len(ids) else None
    if ids.size and bool(np.all(np.diff(ids) == 1)):
        return int(ids[0])
    return None


def _chunk_ids(ids: Any, start: int, stop: int) -> np.ndarray:
    if isinstance(ids, range):
        return np.arange(ids.start + start, ids.start + min(stop, len(ids)), dtype=np.int64)
    return np.asarray(ids[start:stop], dtype=np.int64)


@dataclass(frozen=True)
class Channel:
    """One released statistic of a user.

    Parameters
    ----------
    name : str
        Name of the statistic (a key of the sums).
    width : int
        Numbers per report.
    unit : float
        Spacing of the fixed-point grid (a power of two).
    stream : int, default=0
        Tag of the keyed noise stream (simulations).
    outer : bool, default=False
        Whether the statistic is the upper triangle of ``x x^T`` (else the row itself).
    times_y : bool, default=False
        Whether the row is multiplied by the user's clipped ``y`` first.
    l2_bound : float, default=inf
        l2 clipping radius of the statistic (Gaussian mechanism).
    scale : float, default=0.0
        Gaussian noise standard deviation.
    """

    name: str
    width: int
    unit: float
    stream: int = 0
    outer: bool = False
    times_y: bool = False
    l2_bound: float = math.inf
    scale: float = 0.0


@dataclass(frozen=True)
class Clipping:
    """Coordinatewise clipping of the raw rows, and the intercept column.

    Parameters
    ----------
    clip_X : float
        Bound of every coordinate of x.
    clip_y : float
        Bound of y.
    intercept : float or None, default=None
        Value of an appended constant column, if any.
    """

    clip_X: float
    clip_y: float
    intercept: float | None = None


class PrivateSums:
    """Exact per-fold sums of the users' reports, with the ids of the users who reported.

    Parameters
    ----------
    channels : sequence of Channel
        The statistics each user releases.
    n_folds : int, default=1
        Number of folds; user ``i`` belongs to fold ``i % n_folds``.

    Attributes
    ----------
    fold_n : ndarray of shape (n_folds,)
        Users per fold.
    runs : list of (int, int)
        Runs ``[start, stop)`` of the ids that reported.
    next_id : int
        One past the largest id seen (the default id of the next new user).
    formal : bool
        Whether every report summed came from an exact sampler with fresh entropy (see the
        callers' ``formal`` arguments); False as soon as one simulated report is added.

    Notes
    -----
    Memory O(n_folds m) for m numbers per user, independent of the number of users. The
    sums are integers, so any partition of the users gives the same sums bit for bit.
    """

    def __init__(self, channels: Sequence[Channel], n_folds: int = 1) -> None:
        self.channels = tuple(channels)
        self.n_folds = int(n_folds)
        self.hi = {c.name: np.zeros((self.n_folds, c.width), np.int64) for c in self.channels}
        self.lo = {c.name: np.zeros((self.n_folds, c.width), np.int64) for c in self.channels}
        self.fold_n = np.zeros(self.n_folds, np.int64)
        self.runs: list[tuple[int, int]] = []
        self.next_id = 0
        self.formal = True

    # ------------------------------------------------------------------ bookkeeping
    @property
    def n_users(self) -> int:
        """Number of users summed."""
        return int(self.fold_n.sum())

    def user_ids(self, user_ids: Any, n: int) -> np.ndarray:
        """Validated ids of a batch of ``n`` users (default: the next unused ids).

        Parameters
        ----------
        user_ids : array-like of int or None
            The ids given by the caller.
        n : int
            Batch size.

        Returns
        -------
        ids : ndarray of int64 of shape (n,)
            The ids.
        """
        if user_ids is None:
            return np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        ids = np.asarray(user_ids)
        if ids.shape != (n,) or (n and ids.dtype.kind not in "iu") or (n and ids.min() < 0):
            raise ValueError(f"user_ids must be {n} non-negative integers, one per row")
        return ids.astype(np.int64)

    def check_new(self, ids: Any) -> list[tuple[int, int]]:
        """The runs after adding ``ids``; refuses ids that already reported (before any noise).

        Parameters
        ----------
        ids : range or ndarray of int
            The new users.

        Returns
        -------
        runs : list of (int, int)
            The id runs once they are added (nothing is changed here).
        """
        runs = [(ids.start, ids.stop)] if isinstance(ids, range) else id_runs(ids)
        if isinstance(ids, range) and not len(ids):
            runs = []
        return union_runs(self.runs, runs)

    def _commit(
        self, ids: Any, runs: list[tuple[int, int]], counts: np.ndarray, formal: bool
    ) -> None:
        self.fold_n += counts
        self.runs = runs
        if len(ids):
            last = ids.stop - 1 if isinstance(ids, range) else int(np.max(ids))
            self.next_id = max(self.next_id, last + 1)
        self.formal = self.formal and bool(formal)

    def _counts(self, ids: Any) -> np.ndarray:
        k = self.n_folds
        first = _contiguous_start(ids)
        if first is not None:
            f = np.arange(k)
            n = len(ids)
            return (first + n - 1 - f) // k - (first - 1 - f) // k
        return np.bincount(np.asarray(ids) % k, minlength=k).astype(np.int64)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """All-or-nothing update of the sums: on any error the limbs are restored."""
        saved = (
            {n: a.copy() for n, a in self.hi.items()},
            {n: a.copy() for n, a in self.lo.items()},
        )
        try:
            yield
        except BaseException:
            self.hi, self.lo = saved
            raise

    def _add_limbs(self, name: str, hi: np.ndarray, lo: np.ndarray, fold: Any = None) -> None:
        if fold is None:
            self.hi[name], self.lo[name] = normalise_limbs(self.hi[name] + hi, self.lo[name] + lo)
        else:
            self.hi[name][fold], self.lo[name][fold] = normalise_limbs(
                self.hi[name][fold] + hi, self.lo[name][fold] + lo
            )

    def _add_values(self, values: dict[str, Any], ids: np.ndarray) -> None:
        """Round float reports to the grid and add them, fold by fold."""
        k = self.n_folds
        folds = ids % k
        rows_of = [_fold_rows(ids, folds, f, k) for f in range(k)]
        for c in self.channels:
            v = values.get(c.name)
            if v is None:
                continue
            for f in range(k):
                rows = v[rows_of[f]]
                if rows.shape[0]:
                    self._add_limbs(c.name, *exact_accumulate(rows, c.unit), fold=f)

    # ------------------------------------------------------------------ ways in
    def add_reports(self, values: dict[str, Any], user_ids: Any, *, formal: bool) -> None:
        """Add per-user reports made elsewhere (already privatised).

        Parameters
        ----------
        values : dict of str to ndarray of shape (n_users, width)
            One array per channel, finite float64 (validated by the caller).
        user_ids : ndarray of int of shape (n_users,)
            Ids of the reporting users (never seen before by this object).
        formal : bool
            Whether the reports came from an exact sampler with fresh entropy.
        """
        ids = np.asarray(user_ids, dtype=np.int64)
        runs = self.check_new(ids)
        with self._transaction():
            self._add_values(values, ids)
        self._commit(ids, runs, self._counts(ids), formal)

    def add_raw(
        self,
        X: np.ndarray,
        y: np.ndarray,
        ids: Any,
        clipping: Clipping,
        *,
        key: Any = None,
        source: Any = None,
        reporter: Callable[[np.ndarray, np.ndarray, np.ndarray], dict[str, Any]] | None = None,
        formal: bool = False,
    ) -> None:
        """Privatise raw rows here and add their reports (a simulation of the clients).

        Exactly one of ``key`` (keyed NumPy noise drawn in the fused kernel; needs
        consecutive ids), ``source`` (an object with ``draw(ids, m, stream, kind)``
        returning standard normals) or ``reporter`` (a callable returning the users'
        reports, e.g. the exact samplers) says where the noise comes from. Channels with
        ``scale == 0`` add no noise. The integers do not depend on the path: for the same
        noise, the fused kernel and the chunked paths give the same sums.

        Parameters
        ----------
        X : ndarray of shape (n_users, n_features)
            Raw rows (float64; never modified).
        y : ndarray of shape (n_users,)
            Raw responses.
        ids : range or ndarray of int
            The users' ids (a ``range`` costs O(1) memory).
        clipping : Clipping
            Coordinatewise clipping and intercept.
        key : int or None, default=None
            Key of the keyed streams (fused path).
        source : object or None, default=None
            Noise source of the chunked NumPy path.
        reporter : callable or None, default=None
            ``reporter(xt, xy, ids) -> {name: reports}`` from the prepared rows.
        formal : bool, default=False
            Whether the reports carry a formal guarantee (exact sampler, fresh entropy).
        """
        runs = self.check_new(ids)
        with self._transaction():
            first = _contiguous_start(ids)
            if key is not None and reporter is None and first is not None:
                self._add_keyed(X, y, first, key, clipping)
            else:
                self._add_chunked(X, y, ids, clipping, source, reporter)
        self._commit(ids, runs, self._counts(ids), formal)

    def _add_keyed(
        self, X: np.ndarray, y: np.ndarray, first: int, key: int, clip: Clipping
    ) -> None:
        """Consecutive users, NumPy noise drawn inside the fused kernel, chunk by chunk.

        A C-contiguous float64 ``X`` goes in whole (no copy); other inputs in chunks of
        4 MiB aligned on the noise-stream blocks (memory independent of n).
        """
        n, d = X.shape
        de = d + int(clip.intercept is not None)
        whole = X.dtype == np.float64 and X.flags.c_contiguous
        y = np.ascontiguousarray(y, dtype=np.float64)
        for c in self.channels:
            block = stream_block_size(c.width)
            chunk = max(block, (CHUNK_ENTRIES // 2 // de) // block * block)
            pos = 0
            while pos < n:
                stop = n if whole else min(n, ((first + pos) // chunk + 1) * chunk - first)
                hi, lo = keyed_gaussian_report_sums(
                    X[pos:stop],
                    first + pos,
                    key,
                    c.stream,
                    block,
                    self.n_folds,
                    c.l2_bound,
                    c.scale,
                    c.unit,
                    c.outer,
                    y=y[pos:stop] if c.times_y else None,
                    clip_X=clip.clip_X,
                    clip_y=clip.clip_y,
                    intercept=clip.intercept,
                )
                self._add_limbs(c.name, hi, lo)
                pos = stop

    def _add_chunked(
        self, X: np.ndarray, y: np.ndarray, ids: Any, clip: Clipping, source: Any, reporter: Any
    ) -> None:
        """Whole noise-stream blocks per chunk: memory O(chunk m), independent of n."""
        de = X.shape[1] + int(clip.intercept is not None)
        width = sum(c.width for c in self.channels) or 1
        block = max(stream_block_size(c.width) for c in self.channels)
        chunk = max(block, (CHUNK_ENTRIES // max(width, de)) // block * block)
        k = self.n_folds
        for start in range(0, X.shape[0], chunk):
            sl = slice(start, start + chunk)
            ids_c = _chunk_ids(ids, start, start + chunk)
            xt = prepared_rows(X[sl], None, clip.clip_X, clip.clip_y, clip.intercept)
            xy = prepared_rows(X[sl], y[sl], clip.clip_X, clip.clip_y, clip.intercept)
            if reporter is not None:
                self._add_values(reporter(xt, xy, ids_c), ids_c)
                continue
            folds = ids_c % k
            for c in self.channels:
                rows = xy if c.times_y else xt
                z = None if c.scale == 0.0 else source.draw(ids_c, c.width, c.stream, "normal")
                hi, lo = gaussian_report_sums(
                    rows, z, folds, k, c.l2_bound, c.scale, c.unit, c.outer
                )
                self._add_limbs(c.name, hi, lo)

    def add_aggregated(
        self, X: np.ndarray, y: np.ndarray, ids: Any, clipping: Clipping, *, key: Any = None
    ) -> None:
        """Clean per-fold sums (chunked GEMMs) plus one aggregated noise draw per fold.

        The noise of a fold of ``m`` users is one Gaussian draw with standard deviation
        ``scale * sqrt(m)`` per entry: the distribution of the sum of ``m`` per-user draws,
        without drawing them (experiments only: no per-user report exists).

        Parameters
        ----------
        X, y, ids, clipping
            As :meth:`add_raw`.
        key : int or None, default=None
            Key of the noise (None: fresh operating-system entropy).
        """
        runs = self.check_new(ids)
        k = self.n_folds
        de = X.shape[1] + int(clipping.intercept is not None)
        iu, ju = triu_indices(de)
        gram = np.zeros((k, de, de))
        cross = np.zeros((k, de))
        chunk = max(k, (CHUNK_ENTRIES // de) // k * k)
        first = ids.start if isinstance(ids, range) else int(np.min(ids))
        counts = np.zeros(k, np.int64)
        for start in range(0, X.shape[0], chunk):
            sl = slice(start, start + chunk)
            ids_c = _chunk_ids(ids, start, start + chunk)
            folds_c = ids_c % k
            counts += np.bincount(folds_c, minlength=k)
            xt = prepared_rows(X[sl], None, clipping.clip_X, clipping.clip_y, clipping.intercept)
            yt = np.clip(y[sl], -clipping.clip_y, clipping.clip_y)
            for f in range(k):
                rows = _fold_rows(ids_c, folds_c, f, k)
                xf = np.ascontiguousarray(xt[rows])
                gram[f] += xf.T @ xf
                cross[f] += xf.T @ yt[rows]
        gen = (
            np.random.default_rng()
            if key is None
            else np.random.Generator(
                np.random.SFC64(np.random.SeedSequence(key, spawn_key=(7, first)))
            )
        )
        with self._transaction():
            for f in range(k):
                m = int(counts[f])
                if m == 0:
                    continue
                for c in self.channels:
                    clean = gram[f][iu, ju] if c.outer else cross[f]
                    noisy = clean + gen.standard_normal(c.width) * (c.scale * math.sqrt(m))
                    self._add_limbs(c.name, *exact_accumulate(noisy[None, :], c.unit), fold=f)
        self._commit(ids, runs, counts, formal=False)

    # ------------------------------------------------------------------ combine and read
    def merge(self, other: PrivateSums) -> None:
        """Add the sums of ``other`` (disjoint users, same channels and folds).

        Parameters
        ----------
        other : PrivateSums
            Sums of other users (unchanged).

        Raises
        ------
        ValueError
            When the channels or folds differ, or a user id reported to both.
        """
        if self.channels != other.channels or self.n_folds != other.n_folds:
            raise ValueError("the sums differ in their public parameters and cannot be merged")
        runs = union_runs(self.runs, other.runs)
        for c in self.channels:
            self._add_limbs(c.name, other.hi[c.name], other.lo[c.name])
        self.fold_n = self.fold_n + other.fold_n
        self.runs = runs
        self.next_id = max(self.next_id, other.next_id)
        self.formal = self.formal and other.formal

    def fold_totals(self, name: str) -> np.ndarray:
        """Per-fold sums of channel ``name`` as float64, shape (n_folds, width).

        A deterministic function of the integer limbs, so equal sums give equal floats.
        """
        unit = next(c.unit for c in self.channels if c.name == name)
        return exact_to_float(self.hi[name], self.lo[name], unit)


def _fold_rows(ids: np.ndarray, folds: np.ndarray, f: int, k: int) -> Any:
    """Rows of fold ``f``: a strided slice for contiguous ids, a mask otherwise."""
    if ids.size and bool(np.all(np.diff(ids) == 1)):
        return slice((f - int(ids[0])) % k, None, k)
    return folds == f
