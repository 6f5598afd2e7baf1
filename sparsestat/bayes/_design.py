"""``KroneckerDesign``: a matrix-free linear operator over Kronecker factors."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.sparse.linalg import LinearOperator

from sparsestat._kernels._dispatch import get_namespace, to_numpy
from sparsestat._kernels.kron import kron_matvec, kron_rmatvec

__all__ = ["KroneckerDesign"]


def _np_dtype(a: Any) -> np.dtype:
    """NumPy dtype of an array of any supported library (torch dtypes mapped via a probe)."""
    if isinstance(a.dtype, np.dtype):
        return a.dtype
    return to_numpy(a[:0, :0]).dtype


class KroneckerDesign(LinearOperator):
    """Matrix-free design ``A = kron(A_1, ..., A_I)`` as a SciPy ``LinearOperator``.

    Products with ``A`` and ``A^H`` run as mode products on the factors (``matvec``,
    ``rmatvec``, ``matmat``), so the ``M x N`` matrix (``M = prod M_i``, ``N = prod N_i``)
    is never formed, except by the explicit :meth:`todense`. The operator deliberately has no
    ``__array__``: ``np.asarray(design)`` does not densify it silently.

    Parameters
    ----------
    factors : sequence of 2-D arrays
        Factor matrices ``A_i`` of shapes ``(M_i, N_i)``, real or complex, NumPy, CuPy or
        torch (all of one library).

    Attributes
    ----------
    factors : list of arrays
        The factor matrices, cast to one common dtype.
    factor_shapes : list of tuple of int
        ``[(M_1, N_1), ..., (M_I, N_I)]``.
    shape : tuple of int
        ``(prod M_i, prod N_i)``.
    dtype : numpy.dtype
        Result type of the factors.

    Notes
    -----
    Ordering follows MATLAB ``kron`` and ``np.kron``: coefficient ``n`` is the C-order flat
    index of ``(n_1, ..., n_I)`` with factor 1 slowest, i.e. ``x = X.ravel()`` for a
    coefficient tensor ``X`` of shape ``(N_1, ..., N_I)``. A product costs
    ``O(N sum_i M_i)`` operations for ``M_i <= N_i`` and ``O(N + M)`` memory.

    References
    ----------
    .. [1] Y. He and G. Joseph, "Bayesian algorithms for Kronecker-structured sparse vector
       recovery with application to IRS-MIMO channel estimation", IEEE Trans. Signal
       Process., 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.bayes import KroneckerDesign
    >>> rng = np.random.default_rng(0)
    >>> A1, A2 = rng.standard_normal((3, 4)), rng.standard_normal((2, 5))
    >>> design = KroneckerDesign([A1, A2])
    >>> design.shape
    (6, 20)
    >>> x = rng.standard_normal(20)
    >>> bool(np.allclose(design @ x, np.kron(A1, A2) @ x))
    True
    """

    def __init__(self, factors: Sequence[Any]) -> None:
        if isinstance(factors, KroneckerDesign):
            factors = factors.factors
        if not isinstance(factors, list | tuple) or len(factors) == 0:
            raise ValueError("factors must be a non-empty list or tuple of 2-D arrays")
        mats = [f if hasattr(f, "__array_namespace__") else np.asarray(f) for f in factors]
        for i, f in enumerate(mats):
            if f.ndim != 2:
                raise ValueError(f"factor {i} must be 2-D; got shape {tuple(f.shape)}")
        dtype = np.result_type(*[_np_dtype(f) for f in mats])
        if dtype.kind not in "fc":
            dtype = np.result_type(dtype, np.float64)
        xp = get_namespace(*mats)
        if isinstance(mats[0], np.ndarray):
            mats = [np.asarray(f, dtype=dtype) for f in mats]
        else:
            target = mats[0].dtype if _np_dtype(mats[0]) == dtype else None
            for f in mats:
                if _np_dtype(f) == dtype:
                    target = f.dtype
            mats = [xp.astype(f, target) for f in mats]
        self.factors = mats
        self.factor_shapes = [(int(f.shape[0]), int(f.shape[1])) for f in mats]
        shape = (
            math.prod(s[0] for s in self.factor_shapes),
            math.prod(s[1] for s in self.factor_shapes),
        )
        super().__init__(dtype=dtype, shape=shape)

    def _cast(self, x: Any) -> Any:
        if isinstance(x, np.ndarray):
            return np.asarray(x, dtype=np.result_type(self.dtype, x.dtype))
        xp = get_namespace(x, *self.factors)
        return xp.astype(x, self.factors[0].dtype)

    def _matvec(self, x: Any) -> Any:
        return kron_matvec(self.factors, self._cast(x))

    def _rmatvec(self, x: Any) -> Any:
        return kron_rmatvec(self.factors, self._cast(x))

    def _matmat(self, X: Any) -> Any:
        return kron_matvec(self.factors, self._cast(X))

    def _rmatmat(self, X: Any) -> Any:
        return kron_rmatvec(self.factors, self._cast(X))

    def _adjoint(self) -> KroneckerDesign:
        return KroneckerDesign([np.conj(to_numpy(f)).T for f in self.factors])

    def todense(self) -> np.ndarray:
        """The explicit ``M x N`` matrix (NumPy; for tests and small problems only).

        Returns
        -------
        A : ndarray of shape (prod M_i, prod N_i)
            ``np.kron`` of the factors.
        """
        out = np.ones((1, 1), dtype=self.dtype)
        for f in self.factors:
            out = np.kron(out, to_numpy(f))
        return out

    def __repr__(self) -> str:
        shapes = ", ".join(f"{m}x{n}" for m, n in self.factor_shapes)
        return f"<KroneckerDesign {self.shape[0]}x{self.shape[1]} = kron({shapes}), {self.dtype}>"
