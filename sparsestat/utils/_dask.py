"""Dask arrays in and out: lazy row-wise inference and streaming fits, chunk by chunk.

Two pieces, used by every estimator whose methods act row by row or that learns from
mini-batches; dask is the engine past one machine, and nothing here schedules work itself:

- :func:`rowwise` decorates a fitted estimator's ``predict`` / ``transform`` /
  ``predict_proba`` / ``decision_function``. Given a :class:`dask.array.Array`, the method
  returns a lazy dask array with the right shape, chunks and dtype, computed block by block
  by the undecorated method; the input is never computed up front. Any other input goes
  straight to the method. This is what dask-ml's ``ParallelPostFit`` does, built in, with the
  output width declared by the estimator (``ParallelPostFit`` assumes the input's width).
- :func:`partial_fit_chunks` streams a dask array (for example a zarr store opened with
  :func:`dask.array.from_zarr`) through ``estimator.partial_fit``, one row block at a time, in
  order; ``fit`` of a streaming estimator calls it when given a dask array. The result equals
  calling ``partial_fit`` on the same blocks in the same order.

Dask is imported only when a dask array is actually passed.

Examples
--------
>>> import dask.array as da
>>> import numpy as np
>>> from sklearn.base import BaseEstimator, TransformerMixin
>>> class Double(TransformerMixin, BaseEstimator):
...     def fit(self, X, y=None):
...         self.n_features_in_ = X.shape[1]
...         return self
...     @rowwise(n_outputs=lambda est: 2 * est.n_features_in_)
...     def transform(self, X):
...         return np.hstack([X, X])
>>> X = da.ones((10, 3), chunks=(4, 3))
>>> Z = Double().fit(np.ones((2, 3))).transform(X)
>>> Z.shape, Z.chunks[0]
((10, 6), (4, 4, 2))
>>> float(Z.sum().compute())
60.0
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

__all__ = [
    "StreamingFitError",
    "is_dask_array",
    "iter_row_blocks",
    "map_rows",
    "partial_fit_chunks",
    "rowwise",
]


def is_dask_array(X: Any) -> bool:
    """Whether ``X`` is a :class:`dask.array.Array` (without importing dask)."""
    cls = type(X)
    return cls.__module__.split(".")[0] == "dask" and hasattr(X, "chunks") and hasattr(X, "blocks")


def _check_row_chunks(X: Any, name: str = "X") -> None:
    if X.ndim not in (1, 2):
        raise ValueError(f"{name} must be a 1-D or 2-D dask array; got {X.ndim} dimensions.")
    if any(math.isnan(c) for c in X.chunks[0]):
        raise ValueError(
            f"{name} is a dask array with unknown chunk sizes along its rows (for example "
            "after boolean indexing); call X.compute_chunk_sizes() first, or build it with "
            "known chunks (dask.array.from_zarr, dask.array.from_array)."
        )


def _one_column_chunk(X: Any) -> Any:
    """Rechunk so that every row block holds whole rows (all columns in one chunk)."""
    if X.ndim == 2 and len(X.chunks[1]) > 1:
        return X.rechunk({1: -1})
    return X


def _default_dtype(X_dtype: np.dtype) -> np.dtype:
    """float32 in, float32 out; float64 otherwise (complex stays complex)."""
    return np.result_type(X_dtype, np.float32)


def map_rows(
    func: Callable[[np.ndarray], np.ndarray],
    X: Any,
    *,
    n_outputs: int | None,
    dtype: Any,
) -> Any:
    """Apply ``func`` to each row block of the dask array ``X``, lazily.

    Parameters
    ----------
    func : callable
        Maps a NumPy block of shape (n_rows, n_features) to an array of shape
        (n_rows, n_outputs), or (n_rows,) when ``n_outputs`` is None.
    X : dask.array.Array of shape (n_samples, n_features)
        Input with known row-chunk sizes; its column chunks are merged first.
    n_outputs : int or None
        Width of the result; None for a 1-D result.
    dtype : dtype
        dtype of the result (declared, so that dask never calls ``func`` to guess it).

    Returns
    -------
    result : dask.array.Array
        Lazy result with the row chunks of ``X``.
    """
    _check_row_chunks(X)
    X = _one_column_chunk(X)
    dtype = np.dtype(dtype)
    if n_outputs is None:
        kwargs: dict[str, Any] = {
            "chunks": (X.chunks[0],),
            "meta": np.empty((0,), dtype=dtype),
        }
        if X.ndim == 2:
            kwargs["drop_axis"] = 1
    else:
        n_outputs = int(n_outputs)
        kwargs = {
            "chunks": (X.chunks[0], (n_outputs,)),
            "meta": np.empty((0, n_outputs), dtype=dtype),
        }
        if X.ndim == 1:
            kwargs["new_axis"] = 1
    return X.map_blocks(_apply_block, func, dtype=dtype, **kwargs)


def _apply_block(block: np.ndarray, func: Callable[[np.ndarray], Any]) -> np.ndarray:
    out = func(block)
    if hasattr(out, "toarray"):  # a sparse result becomes a dense block
        out = out.toarray()
    return np.asarray(out)


def rowwise(
    n_outputs: Callable[[Any], int | None] | None = None,
    dtype: Callable[[Any, np.dtype], Any] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: a row-by-row method that also accepts dask arrays, and stays lazy.

    Parameters
    ----------
    n_outputs : callable(estimator) -> int or None, default=None
        Width of the method's result (for example ``lambda est: est.n_components_``); None
        (or a callable returning None) for a 1-D result such as ``predict`` of a regressor.
    dtype : callable(estimator, X_dtype) -> dtype, default=None
        dtype of the result; by default float32 for float32 input and float64 otherwise.
        Classifiers' ``predict`` passes ``lambda est, _: est.classes_.dtype``.

    Returns
    -------
    decorator : callable
        Wraps the method; NumPy, SciPy sparse, pandas and other inputs are passed through
        unchanged.
    """

    def decorator(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(self: Any, X: Any, *args: Any, **kwargs: Any) -> Any:
            if not is_dask_array(X):
                return method(self, X, *args, **kwargs)
            width = None if n_outputs is None else n_outputs(self)
            out_dtype = _default_dtype(X.dtype) if dtype is None else dtype(self, X.dtype)
            func = functools.partial(_call_method, method, self, args, kwargs)
            return map_rows(func, X, n_outputs=width, dtype=out_dtype)

        wrapper.__sparsestat_rowwise__ = True  # type: ignore[attr-defined]
        return wrapper

    return decorator


def _call_method(
    method: Callable[..., Any], est: Any, args: tuple[Any, ...], kwargs: dict[str, Any], X: Any
) -> Any:
    return method(est, X, *args, **kwargs)


class StreamingFitError(RuntimeError):
    """A streaming fit stopped part way; ``chunks_done`` blocks went into the estimator.

    Resume with ``partial_fit_chunks(estimator, X, y, start=err.chunks_done)`` once the cause
    (a lost worker, an unreadable block) is mended, or refit from scratch.
    """

    def __init__(self, message: str, chunks_done: int) -> None:
        super().__init__(message)
        self.chunks_done = chunks_done


def _aligned_rows(arr: Any, X: Any, name: str) -> Any:
    """Check that ``arr`` (dask or NumPy, indexed by rows) lines up with X's row blocks."""
    if arr is None:
        return None
    if is_dask_array(arr):
        _check_row_chunks(arr, name)
        if tuple(arr.chunks[0]) != tuple(X.chunks[0]):
            raise ValueError(
                f"X and {name} are dask arrays with different row chunks "
                f"({X.chunks[0][:4]}... vs {arr.chunks[0][:4]}...); rechunk one to the "
                f"other, e.g. {name}.rechunk({{0: X.chunks[0]}})."
            )
        return arr
    n = np.shape(arr)[0] if np.ndim(arr) else None
    if n is not None and n != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but {name} has {n}.")
    return arr


class _RowBlocks:
    """The row blocks of ``X`` and of arrays aligned with its rows, loaded one at a time."""

    def __init__(self, X: Any, others: tuple[Any, ...], names: tuple[str, ...]) -> None:
        if not is_dask_array(X):
            raise TypeError(f"X must be a dask array; got {type(X).__name__}.")
        _check_row_chunks(X)
        self.X = _one_column_chunk(X)
        self.others = tuple(_aligned_rows(o, self.X, n) for o, n in zip(others, names))
        self.offsets = np.concatenate([[0], np.cumsum(self.X.chunks[0])]).astype(int)
        self.n_blocks = int(self.X.numblocks[0])

    def load(self, i: int) -> tuple[Any, ...]:
        lo, hi = self.offsets[i], self.offsets[i + 1]
        rest = []
        for o in self.others:
            if o is None or np.ndim(o) == 0:
                rest.append(o)
            elif is_dask_array(o):
                rest.append(o.blocks[i].compute())
            else:
                rest.append(np.asarray(o)[lo:hi])
        return (self.X.blocks[i].compute(), *rest)


def iter_row_blocks(
    X: Any, *others: Any, names: tuple[str, ...] = (), start: int = 0
) -> Iterator[tuple[Any, ...]]:
    """Yield (X block, other blocks...) as NumPy arrays, computing one row block at a time.

    ``others`` are arrays indexed by row (``y``, ``sample_weight``): dask arrays with the
    same row chunks as ``X``, NumPy arrays of the same length, or None. A block is computed
    only when the consumer asks for it; drop the previous block before asking for the next
    to hold one block at a time.
    """
    blocks = _RowBlocks(X, others, names or tuple(f"arg{i}" for i in range(len(others))))
    for i in range(start, blocks.n_blocks):
        yield blocks.load(i)


def partial_fit_chunks(
    estimator: Any,
    X: Any,
    y: Any = None,
    *,
    sample_weight: Any = None,
    start: int = 0,
    **fit_params: Any,
) -> Any:
    """Fit ``estimator`` by ``partial_fit`` on the row blocks of the dask array ``X``, in order.

    Parameters
    ----------
    estimator : estimator with ``partial_fit``
        Fitted in place and returned.
    X : dask.array.Array of shape (n_samples, n_features)
        Input with known row-chunk sizes (a zarr store through :func:`dask.array.from_zarr`
        is read one block at a time).
    y : dask.array.Array, ndarray or None
        Targets, with the same row chunks as ``X`` when a dask array.
    sample_weight : dask.array.Array, ndarray or None
        Row weights, passed to ``partial_fit`` block by block when given.
    start : int, default=0
        First block to use (to resume after a :class:`StreamingFitError`).
    **fit_params
        Passed unchanged to every ``partial_fit`` call (for example ``classes``).

    Returns
    -------
    estimator : the fitted estimator

    Raises
    ------
    StreamingFitError
        When reading or fitting a block fails (a lost worker, for example): the message says
        how many blocks went in, and how to resume; the estimator is never left silently
        partial.
    """
    blocks = _RowBlocks(X, (y, sample_weight), ("y", "sample_weight"))
    done = start
    for i in range(start, blocks.n_blocks):
        try:
            block, yb, wb = blocks.load(i)
            kwargs = dict(fit_params)
            if wb is not None:
                kwargs["sample_weight"] = wb
            if y is None:
                estimator.partial_fit(block, **kwargs)
            else:
                estimator.partial_fit(block, yb, **kwargs)
        except Exception as exc:
            if done == start and isinstance(exc, ValueError | TypeError):
                raise  # bad input before any block went in: the plain error is clearest
            raise StreamingFitError(_stream_message(done, blocks.n_blocks, exc), done) from exc
        del block, yb, wb  # hold one block at a time
        done += 1
    return estimator


def _stream_message(done: int, n_blocks: int, exc: BaseException) -> str:
    return (
        f"streaming fit stopped at row block {done} of {n_blocks} "
        f"({type(exc).__name__}: {exc}); the estimator has seen blocks 0..{done - 1} only. "
        f"Resume with partial_fit_chunks(estimator, X, y, start={done}) or refit."
    )
