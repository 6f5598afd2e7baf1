"""Sparse coding of many signals against one dictionary: validation and solver dispatch.

Used by :class:`~sparsestat.decomposition.LqSparseCoder`, :func:`lq_sparse_encode` and the
dictionary learners. Each row ``x`` of ``X`` gets a code ``c`` that (locally) minimises
``1/2 ||x - c D||^2 + alpha P(c)``; :func:`encode` picks the kernel:

- ``'fista'`` / ``'ista'``: the batched proximal-gradient kernel
  :func:`sparsestat._kernels.pgd.pgd_sparse_code` on blocks of ``batch_size`` rows (any array
  library: NumPy, CuPy, torch, ``array_api_strict``; complex data; SciPy sparse ``X``);
- ``'cd'``, ``'lars'``, ``'omp'``: the per-signal Gram coders of
  :func:`sparsestat._kernels.gram_code.gram_code` (real NumPy or SciPy sparse data, Numba).

A SciPy sparse ``X`` (CSR or CSC) is never densified as a whole: the Gram coders and the
Gram form of the proximal-gradient kernel only need ``X D^T`` and the row norms; the
residual form (``n_components > 2 n_features``) densifies one block of rows at a time.

The dictionary learners' update steps (block coordinate descent on the sufficient
statistics, the paper's Hebbian step, the projection of the atoms) are here too.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
from array_api_compat import device as array_device
from joblib import Parallel, delayed
from sklearn import get_config
from sklearn.utils import check_array

from sparsestat._kernels._dispatch import (
    backend_name,
    get_namespace,
    is_device_array,
    to_host,
)
from sparsestat._kernels.cd import penalty_spec
from sparsestat._kernels.gram_code import gram_code
from sparsestat._kernels.pgd import lipschitz_constant, penalty_row_values, pgd_sparse_code
from sparsestat._kernels.prox import prox_cel0
from sparsestat.penalties import CEL0, L0, L1, Penalty, make_penalty
from sparsestat.utils import check_complex_array, progress_bar
from sparsestat.utils._dask import is_dask_array

__all__ = [
    "GRAM_SOLVERS",
    "PENALTIES",
    "SOLVERS",
    "atom_norms",
    "bcd_update",
    "build_penalty",
    "check_coding_inputs",
    "check_same_library",
    "dictionary_like",
    "encode",
    "forgetting_factor",
    "in_namespace",
    "lipschitz_constant",
    "project_atoms",
    "row_objective",
    "sgd_update",
]

#: Penalty names accepted by the coders.
PENALTIES = ("l1", "l0", "l1/2", "lq", "cel0")
#: Solver names accepted by the coders.
SOLVERS = ("auto", "fista", "ista", "cd", "lars", "omp")
#: The per-signal coders that work from the Gram matrix (real NumPy / SciPy data only).
GRAM_SOLVERS = ("cd", "lars", "omp")


def in_namespace(a: Any) -> bool:
    """Whether ``a`` is an array of another library than NumPy (CuPy, torch, ...).

    Such arrays are coded where they live, through the array-API kernels; everything else
    (NumPy arrays, lists, pandas, SciPy sparse, dask arrays) is validated on the host or
    block by block.
    """
    return is_device_array(a) and not is_dask_array(a)


def _check_namespace_array(a: Any, name: str) -> None:
    xp = get_namespace(a)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D; got {a.ndim}-D")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"{name} is empty (shape {tuple(a.shape)})")
    if not bool(xp.all(xp.isfinite(a))):
        raise ValueError(f"Input {name} contains NaN or infinity.")


def _check_host_dense(a: Any, name: str) -> np.ndarray:
    if not isinstance(a, np.ndarray) and hasattr(a, "__array__"):
        a = np.asarray(a)  # pandas and other array-likes
    if isinstance(a, np.ndarray) and a.dtype == object:
        a = np.asarray(a, dtype=np.float64)  # numpy's own error for non-numbers
    if np.ndim(a) == 1:
        raise ValueError(
            f"Expected 2D array for {name}, got 1D array instead. Reshape your data either "
            "using array.reshape(-1, 1) if your data has a single feature or "
            "array.reshape(1, -1) if it contains a single sample."
        )
    return check_complex_array(a, input_name=name)


def check_coding_inputs(
    X: Any,
    D: Any,
    *,
    n_features_in: int | None = None,
    owner: str = "LqSparseCoder",
    accept_sparse: bool = True,
) -> tuple[Any, Any]:
    """Validate the signals ``X`` and the dictionary ``D`` for coding.

    NumPy-like input is checked like scikit-learn's ``check_array`` (complex allowed); a
    SciPy sparse ``X`` is kept sparse (CSR, real float); arrays of other libraries are kept
    where they are (only shape and finiteness are checked). The dictionary follows ``X``:
    it is moved to ``X``'s library and device (or to NumPy for NumPy signals). A real ``D``
    takes the dtype of a real ``X`` (float32 signals are coded in float32).

    Parameters
    ----------
    X : array-like or sparse matrix of shape (n_samples, n_features)
        Signals.
    D : array-like of shape (n_components, n_features)
        Dictionary, atoms as rows (not modified).
    n_features_in : int or None, default=None
        Number of features seen by ``fit``, checked when given.
    owner : str, default="LqSparseCoder"
        Name used in the error messages.
    accept_sparse : bool, default=True
        Whether a SciPy sparse ``X`` is accepted.

    Returns
    -------
    X, D : arrays
        Validated signals and dictionary.
    """
    if sp.issparse(D):
        raise TypeError(
            f"{owner}: the dictionary must be dense (an array of shape (n_components, "
            "n_features)); got a sparse matrix. Use dictionary.toarray()."
        )
    if sp.issparse(X):
        if not accept_sparse:
            raise TypeError(
                f"Sparse data was passed for X, but {owner} needs dense data here. Use "
                "X.toarray() to convert to a dense numpy array."
            )
        if in_namespace(D):
            raise TypeError(f"{owner}: a sparse X needs a NumPy dictionary; got {type(D)}")
        X = check_array(X, accept_sparse="csr", dtype=(np.float64, np.float32), input_name="X")
        D = _check_host_dense(D, "dictionary")
        if np.iscomplexobj(D):
            raise ValueError(f"{owner}: a sparse X is supported with a real dictionary only")
    elif in_namespace(X):
        # everything follows X: a NumPy (or list) dictionary moves to X's library and device
        _check_namespace_array(X, "X")
        if not in_namespace(D):
            D = dictionary_like(_check_host_dense(D, "dictionary"), X)
        _check_namespace_array(D, "dictionary")
    else:
        X = _check_host_dense(X, "X")
        D = _check_host_dense(dictionary_like(D, X), "dictionary")
    if n_features_in is not None and X.shape[1] != n_features_in:
        raise ValueError(
            f"X has {X.shape[1]} features, but {owner} is expecting {n_features_in} "
            "features as input."
        )
    if X.shape[1] != D.shape[1]:
        raise ValueError(
            f"X has {X.shape[1]} features, but the dictionary has atoms of length {D.shape[1]}"
        )
    if sp.issparse(X):
        return X, D.astype(X.dtype, copy=False)
    xp = get_namespace(X, D)
    if xp.isdtype(X.dtype, "real floating") and xp.isdtype(D.dtype, "real floating"):
        D = xp.astype(D, X.dtype)
    return X, D


def dictionary_like(D: Any, ref: Any) -> Any:
    """The dictionary ``D`` in the library and on the device of the array ``ref``."""
    if not in_namespace(ref):
        return to_host(D) if in_namespace(D) else np.asarray(D)
    return get_namespace(ref).asarray(to_host(D), device=array_device(ref))


def check_same_library(X: Any, fitted: Any, owner: str, method: str) -> None:
    """Under ``sklearn.config_context(array_api_dispatch=True)``, require ``X`` to live in the
    array library and on the device of the fitted array ``fitted`` (scikit-learn's rule for
    estimators with array-API support); outside it, the codes simply follow ``X``.
    """
    if not get_config()["array_api_dispatch"] or sp.issparse(X) or is_dask_array(X):
        return
    host_x, host_f = not in_namespace(X), not in_namespace(fitted)
    if host_x and host_f:
        return
    same = not (host_x or host_f)
    if same:
        same = get_namespace(X) == get_namespace(fitted) and array_device(X) == array_device(fitted)
    if not same:
        where = "NumPy" if host_f else f"{get_namespace(fitted).__name__} on {array_device(fitted)}"
        raise ValueError(
            f"Inputs passed to {owner}.{method}() must use the same namespace and the same "
            f"device as those passed to fit() (fitted with {where} arrays); fit again on "
            "arrays like X, or call transform outside array_api_dispatch."
        )


def atom_norms(D: Any) -> Any:
    """Euclidean norm of every atom (row) of ``D``, in ``D``'s library."""
    xp = get_namespace(D)
    return xp.sqrt(xp.sum(xp.abs(D) ** 2, axis=1))


def build_penalty(penalty: Any, alpha: float, q: float, D: Any) -> Penalty:
    """Penalty object for coding with ``D`` (CEL0 gets the atom norms of ``D``).

    Warns when CEL0 is used with atoms that are not of unit norm (allowed: the norms enter
    the penalty).
    """
    pen = make_penalty(penalty, alpha=alpha, q=q)
    if isinstance(pen, CEL0):
        norms = np.asarray(to_host(atom_norms(D)), dtype=np.float64)
        if not np.allclose(norms, 1.0, rtol=1e-6, atol=0):
            warnings.warn(
                "CEL0 with atoms that are not unit norm: the atom norms enter the penalty "
                "(Soubies et al. 2015); normalise the dictionary for the usual CEL0.",
                UserWarning,
                stacklevel=4,
            )
        if pen.atom_norms is None:
            pen = CEL0(alpha=pen.alpha, atom_norms=norms)
    return pen


def _prox_of(pen: Penalty, xp: Any, D: Any, positive: bool) -> Any:
    """``prox(Z, step)`` of the penalty, on the library and device of ``D``."""
    base = pen.prox
    if isinstance(pen, CEL0) and backend_name(xp) != "numpy":
        # the atom norms must live on the codes' device
        norms = np.ones(D.shape[0]) if pen.atom_norms is None else pen.atom_norms
        a = xp.asarray(np.asarray(norms, dtype=np.float64), device=array_device(D))
        alpha = float(pen.alpha)

        def base(Z: Any, step: float) -> Any:
            return prox_cel0(Z, alpha, step, xp.astype(a, Z.dtype))

    if not positive:
        return base

    def prox(Z: Any, step: float) -> Any:
        return base(xp.maximum(Z, xp.zeros_like(Z)), step)

    return prox


def encode(
    X: Any,
    D: Any,
    pen: Penalty,
    *,
    solver: str,
    max_iter: int,
    tol: float,
    init: Any,
    step_size: float = 1.0,
    positive_code: bool = False,
    batch_size: int = 4096,
    n_jobs: int | None = None,
    verbose: int = 0,
    lipschitz: float | None = None,
) -> tuple[Any, int]:
    """Codes of the rows of validated ``X`` against ``D``; see :func:`lq_sparse_encode`.

    Parameters
    ----------
    X : array or sparse matrix of shape (n_samples, n_features)
        Signals, validated by :func:`check_coding_inputs`.
    D : array of shape (n_components, n_features)
        Dictionary, same library as ``X`` (NumPy for a sparse ``X``).
    pen : Penalty
        Penalty object (from :func:`build_penalty`).
    solver : {'auto', 'fista', 'ista', 'cd', 'lars', 'omp'}
        'auto' is 'lars' for 'l1' on real NumPy or SciPy data, 'fista' otherwise.
    max_iter : int
        Iterations (or coordinate-descent epochs) per signal.
    tol : float
        Per-signal stopping tolerance.
    init : {'zeros', 'l1'} or array of shape (n_samples, n_components)
        Starting codes.
    step_size : float, default=1.0
        Proximal-gradient step as a fraction of ``1 / L``.
    positive_code : bool, default=False
        Non-negative codes.
    batch_size : int, default=4096
        Rows per proximal-gradient block.
    n_jobs : int or None, default=None
        Threads over blocks (proximal gradient) or Numba threads (Gram coders).
    verbose : int, default=0
        Progress bar over blocks.
    lipschitz : float or None, default=None
        ``||D||_2^2`` (inflated), computed when None.

    Returns
    -------
    C : array of shape (n_samples, n_components)
        Codes, same library, device and dtype as ``X`` (dense NumPy for a sparse ``X``).
    n_iter : int
        Largest number of iterations over the signals.
    """
    sparse = sp.issparse(X)
    xp = get_namespace(D) if sparse else get_namespace(X, D)
    complex_ = bool(xp.isdtype(D.dtype, "complex floating")) or (
        not sparse and bool(xp.isdtype(X.dtype, "complex floating"))
    )
    if complex_ and not isinstance(pen, L1 | L0):
        raise ValueError(
            f"complex signals or dictionaries are supported for penalty 'l1' and 'l0' only; "
            f"got {type(pen).__name__}"
        )
    if complex_ and positive_code:
        raise ValueError("positive_code=True is not defined for complex data")
    if lipschitz is None:
        lipschitz = lipschitz_constant(D)
    n = X.shape[0]
    common = {
        "max_iter": max_iter,
        "tol": tol,
        "step_size": step_size,
        "positive_code": positive_code,
        "batch_size": batch_size,
        "n_jobs": n_jobs,
        "lipschitz": lipschitz,
    }
    if isinstance(init, str) and init == "l1" and not isinstance(pen, L1):
        C0, _ = encode(X, D, L1(alpha=pen.alpha), solver="auto", init="zeros", **common)
    elif isinstance(init, str):
        C0 = None
    else:
        C0 = init if in_namespace(init) else check_complex_array(init, input_name="init")
        if tuple(C0.shape) != (n, D.shape[0]):
            raise ValueError(
                f"init must have shape (n_samples, n_components) = {(n, D.shape[0])}; "
                f"got {tuple(C0.shape)}"
            )

    host_real = not complex_ and backend_name(xp) == "numpy"
    if solver == "auto":
        solver = "lars" if host_real and isinstance(pen, L1) else "fista"
    if solver in GRAM_SOLVERS:
        return _encode_gram(X, D, pen, solver, C0, host_real, **common)

    prox = _prox_of(pen, xp, D, positive_code)

    def row_penalty(C: Any) -> Any:
        return penalty_row_values(pen, C)

    starts = list(range(0, n, batch_size))

    def run(s: int) -> tuple[Any, Any]:
        rows = slice(s, min(s + batch_size, n))
        return pgd_sparse_code(
            X[rows, :],
            D,
            prox,
            row_penalty,
            lipschitz=lipschitz,
            step_size=step_size,
            accelerated=solver == "fista",
            max_iter=max_iter,
            tol=tol,
            init=None if C0 is None else C0[rows, :],
        )

    if n_jobs not in (None, 1) and len(starts) > 1 and backend_name(xp) == "numpy":
        parts = Parallel(n_jobs=n_jobs, prefer="threads")(delayed(run)(s) for s in starts)
    else:
        parts = [run(s) for s in progress_bar(starts, verbose=verbose, desc="coding", unit="chunk")]
    if not parts:  # no rows
        dtype = xp.result_type(X.dtype, D.dtype)
        return xp.zeros((0, D.shape[0]), dtype=dtype, device=array_device(D)), 0
    if len(parts) == 1:
        C, it = parts[0]
    else:
        C = xp.concat([p[0] for p in parts], axis=0)
        it = xp.concat([p[1] for p in parts], axis=0)
    return C, int(xp.max(it))


def _encode_gram(
    X: Any,
    D: Any,
    pen: Penalty,
    solver: str,
    C0: Any,
    host_real: bool,
    *,
    max_iter: int,
    tol: float,
    positive_code: bool,
    n_jobs: int | None,
    **_: Any,
) -> tuple[Any, int]:
    if not host_real:
        raise ValueError(f"solver={solver!r} codes real NumPy arrays only; use 'fista' otherwise")
    name, a, q_, norms = penalty_spec(pen)
    if solver == "lars" and name != "l1":
        raise ValueError(f"solver='lars' solves penalty 'l1' only; got {name!r}")
    if solver == "omp" and (name != "l0" or positive_code):
        raise ValueError(
            f"solver='omp' solves penalty 'l0' without positive_code only; got {name!r}"
        )
    C, it = gram_code(
        X,
        D,
        name,
        a,
        method=solver,
        q=q_,
        atom_norms=norms,
        init=C0,
        tol=tol,
        max_iter=max_iter,
        positive=positive_code,
        n_jobs=n_jobs,
    )
    return C.astype(X.dtype, copy=False), int(it.max()) if X.shape[0] else 0


def row_objective(X: Any, C: Any, D: Any, pen: Penalty, *, batch_size: int = 4096) -> Any:
    """Per-signal objective ``1/2 ||x - c D||^2 + alpha P(c)``.

    A sparse ``X`` is densified one block of ``batch_size`` rows at a time.
    """
    if sp.issparse(X):
        parts = [
            row_objective(X[s : s + batch_size].toarray(), C[s : s + batch_size], D, pen)
            for s in range(0, X.shape[0], batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros(0)
    xp = get_namespace(X, D)
    R = X - C @ D
    return 0.5 * xp.sum(xp.abs(R) ** 2, axis=1) + penalty_row_values(pen, C)


# ------------------------------------------------------------------------ dictionary updates
def project_atoms(D: np.ndarray, atom_norm: str, rng: np.random.RandomState, X: np.ndarray) -> None:
    """Project the atoms (rows of ``D``) in place on the unit sphere or ball.

    Zero atoms are revived from a random row of ``X`` (plus a little noise) first.
    """
    norms = np.linalg.norm(D, axis=1)
    dead = norms <= 1e-12
    if np.any(dead):
        D[dead] = X[rng.randint(0, X.shape[0], size=int(dead.sum()))]
        D[dead] += 1e-3 * rng.standard_normal(D[dead].shape)
        norms[dead] = np.linalg.norm(D[dead], axis=1)
    if atom_norm == "unit":
        D /= norms[:, None]
    else:
        D /= np.maximum(norms, 1.0)[:, None]


def bcd_update(
    D: np.ndarray,
    A: np.ndarray,
    B: np.ndarray,
    atom_norm: str,
    rng: np.random.RandomState,
    X: np.ndarray,
    C: np.ndarray,
) -> None:
    """One pass of block coordinate descent over the atoms (Mairal et al. 2010), in place.

    ``A = C^T C`` and ``B = C^T X`` (possibly with forgetting). Each atom takes its exact
    block minimiser ``d_j + (B_j - A_j D) / A_jj`` and is projected (unit sphere or ball);
    atoms that are never used (``A_jj < 1e-10``) are replaced by the normalised residual
    ``x_i - c_i D`` of a random row ``i`` of ``X`` (with the dictionary of the start of the
    pass; computed only when an atom is dead).
    """
    D_start = D.copy() if np.any(np.diag(A) < 1e-10) else D
    for j in range(D.shape[0]):
        if A[j, j] < 1e-10:
            i = rng.randint(X.shape[0])
            r = X[i] - C[i] @ D_start + 1e-6 * rng.standard_normal(D.shape[1])
            D[j] = r / max(np.linalg.norm(r), 1e-12)
            continue
        D[j] += (B[j] - A[j] @ D) / A[j, j]
        nrm = np.linalg.norm(D[j])
        if atom_norm == "unit":
            D[j] /= max(nrm, 1e-12)
        elif nrm > 1.0:
            D[j] /= nrm


def sgd_update(
    D: np.ndarray,
    X: np.ndarray,
    C: np.ndarray,
    lr: float,
    atom_norm: str,
    rng: np.random.RandomState,
) -> None:
    """The paper's Hebbian step ``D += lr C^T (X - C D) / n``, then projection, in place."""
    D += lr * (C.T @ (X - C @ D)) / X.shape[0]
    project_atoms(D, atom_norm, rng, X)


def forgetting_factor(step: int, batch_size: int) -> float:
    """scikit-learn's forgetting factor ``rho`` of the sufficient statistics at ``step``."""
    theta = (
        (step + 1) * batch_size if step < batch_size - 1 else batch_size**2 + step + 1 - batch_size
    )
    return (theta + 1 - batch_size) / (theta + 1)
