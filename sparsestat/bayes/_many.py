"""Many independent Kronecker SBL problems with one shared design, on a dask cluster."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from sparsestat.bayes._base import check_factors, working_dtype
from sparsestat.bayes._design import KroneckerDesign
from sparsestat.bayes._kronecker_sbl import KroneckerSBL
from sparsestat.utils._dask import is_dask_array

__all__ = ["kronecker_sbl_many"]


def _checked_design(factors: Any) -> list[np.ndarray]:
    """Validate the factors once (host arrays of the working dtype, as the estimator does)."""
    facs = list(factors.factors) if isinstance(factors, KroneckerDesign) else list(factors)
    names = [f"factors[{i}]" for i in range(len(facs))]
    m_total = math.prod(int(np.shape(f)[0]) for f in facs)
    facs, _ = check_factors(facs, np.zeros(m_total), names)
    return facs


def _fit_rows(
    factors: list[np.ndarray], Y: np.ndarray, params: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fit every row of ``Y`` on its own; return coef, noise variance, n_iter, converged."""
    est = KroneckerSBL(**params)
    coefs, noise, n_iter, conv = [], [], [], []
    for y in np.asarray(Y):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(factors, y)
        coefs.append(est.coef_)
        noise.append(est.noise_variance_)
        n_iter.append(est.n_iter_)
        conv.append(est.converged_)
    n_features = math.prod(int(f.shape[1]) for f in factors)
    dtype = np.result_type(factors[0].dtype, np.asarray(Y).dtype)
    coef = np.stack(coefs) if coefs else np.zeros((0, n_features), dtype=dtype)
    return (
        coef,
        np.asarray(noise, dtype=np.float64),
        np.asarray(n_iter, dtype=np.int64),
        np.asarray(conv, dtype=bool),
    )


def kronecker_sbl_many(factors, Y, *, return_info=False, **params):
    """Independent Kronecker SBL fits of many measurement vectors that share one design.

    Each row of ``Y`` is one problem ``y_t = kron(A_1, ..., A_I) x_t + n_t`` (for example one
    channel estimate per user, subcarrier or time slot, with the same pilots and IRS phases),
    fitted on its own by :class:`KroneckerSBL` with ``params``. With a NumPy ``Y`` the fits
    run here, one after another. With a dask array ``Y`` (chunked along the rows) the result
    is a lazy dask array and each row block is one task; on a ``dask.distributed`` cluster
    the blocks run on the workers in parallel.

    Parameters
    ----------
    factors : list of 2-D arrays or KroneckerDesign
        The shared factor matrices ``A_i`` of shapes ``(M_i, N_i)``.
    Y : ndarray or dask array of shape (n_problems, M)
        One measurement vector per row, ``M = prod M_i``, real or complex.
    return_info : bool, default=False
        Also return the per-problem diagnostics.
    **params : dict
        Parameters of :class:`KroneckerSBL` (``method``, ``block``, ``noise_variance``, ...),
        the same for every problem.

    Returns
    -------
    coef : ndarray or dask array of shape (n_problems, N)
        The estimates, one row per problem (lazy for a dask ``Y``).
    info : dict
        Only with ``return_info=True``: ``noise_variance`` (float), ``n_iter`` (int) and
        ``converged`` (bool), arrays of shape (n_problems,) of the kind of ``coef``.

    See Also
    --------
    KroneckerSBL : one problem.
    kronecker_sbl : the functional form for one problem.

    Notes
    -----
    The factors are validated once and, on a cluster, are one key of the task graph: each
    worker receives them once, whatever the number of blocks it runs, and every problem of a
    block is fitted against the same validated design. What cannot be shared is the E-step's
    eigendecompositions: they depend on each problem's prior variances, which EM updates at
    every iteration. Convergence warnings of single problems are not raised; see
    ``info["converged"]``. Choose row blocks of many problems each (tens to thousands), so
    that the scheduling cost per task stays small next to the fits.

    The problems are independent, so the result equals fitting each row alone, bit for bit,
    whatever the chunking and the number of workers.

    References
    ----------
    .. [1] Y. He and G. Joseph, "Bayesian algorithms for Kronecker-structured sparse vector
       recovery with application to IRS-MIMO channel estimation", IEEE Trans. Signal
       Process., 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.bayes import kronecker_sbl_many
    >>> from sparsestat.datasets import make_kronecker_sparse_signal
    >>> factors, y0, _ = make_kronecker_sparse_signal(
    ...     factor_shapes=((6, 8), (7, 8)), n_nonzero=2, snr_db=30, random_state=0)
    >>> rng = np.random.default_rng(0)
    >>> Y = np.stack([y0, 2 * y0, y0 + 0.01 * rng.standard_normal(y0.shape)])
    >>> coef, info = kronecker_sbl_many(factors, Y, return_info=True)
    >>> coef.shape, info["n_iter"].shape
    ((3, 64), (3,))

    With a dask array the same call returns a lazy array, computed on the workers of the
    active ``dask.distributed`` client (or dask's default scheduler)::

        import dask.array as da
        coef = kronecker_sbl_many(factors, da.from_array(Y_big, chunks=(1000, -1)))
        coef.to_zarr("estimates.zarr")  # or coef.compute()
    """
    KroneckerSBL(**params)._validate_params()
    m_total = math.prod(int(np.shape(f)[0]) for f in _factor_list(factors))
    if getattr(Y, "ndim", None) != 2 and not is_dask_array(Y):
        Y = np.asarray(Y)
    if Y.ndim != 2 or int(Y.shape[1]) != m_total:
        raise ValueError(
            f"Y must have shape (n_problems, {m_total}) (one measurement vector of the design "
            f"per row); got shape {tuple(Y.shape)}"
        )
    if not is_dask_array(Y):
        coef, noise, n_iter, conv = _fit_rows(_checked_design(factors), Y, params)
        info = {"noise_variance": noise, "n_iter": n_iter, "converged": conv}
        return (coef, info) if return_info else coef
    return _many_dask(factors, Y, params, return_info)


def _factor_list(factors: Any) -> list[Any]:
    return list(factors.factors) if isinstance(factors, KroneckerDesign) else list(factors)


def _many_dask(factors: Any, Y: Any, params: dict[str, Any], return_info: bool) -> Any:
    import dask
    import dask.array as da

    if any(math.isnan(c) for c in Y.chunks[0]):
        raise ValueError(
            "Y is a dask array with unknown chunk sizes along its rows; call "
            "Y.compute_chunk_sizes() first"
        )
    Y = Y.rechunk({1: -1})
    design = dask.delayed(_checked_design, pure=True)(factors)
    facs = _checked_design(factors)  # here only for the output shapes and dtype
    n_features = math.prod(int(f.shape[1]) for f in facs)
    dtype = working_dtype(np, facs, np.empty(0, dtype=Y.dtype))
    parts: list[list[Any]] = [[], [], [], []]
    kinds = [(dtype, (n_features,)), (np.float64, ()), (np.int64, ()), (bool, ())]
    for block, n_rows in zip(Y.to_delayed().ravel(), Y.chunks[0]):
        out = dask.delayed(_fit_rows, nout=4, pure=True)(design, block, params)
        for part, value, (kind, tail) in zip(parts, out, kinds):
            part.append(da.from_delayed(value, shape=(n_rows, *tail), dtype=kind))
    coef, noise, n_iter, conv = (da.concatenate(p, axis=0) for p in parts)
    if not return_info:
        return coef
    return coef, {"noise_variance": noise, "n_iter": n_iter, "converged": conv}
