"""Sparse coding with l1, l0, l1/2, lq and CEL0 penalties (``LqSparseCoder``)."""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, TransformerMixin

from sparsestat._kernels._dispatch import get_namespace
from sparsestat._kernels.cd import penalty_spec
from sparsestat._kernels.gram_code import gram_code
from sparsestat._kernels.pgd import lipschitz_constant, penalty_row_values, pgd_sparse_code
from sparsestat.penalties import CEL0, L0, L1, Penalty, make_penalty
from sparsestat.utils import check_complex_array, progress_bar
from sparsestat.utils._compat import Interval, StrOptions, fit_context, validate_params

__all__ = ["LqSparseCoder", "lq_sparse_encode"]

PENALTIES = ("l1", "l0", "l1/2", "lq", "cel0")

_ENCODE_CONSTRAINTS: dict[str, list[Any]] = {
    "penalty": [StrOptions(set(PENALTIES)), Penalty],
    "alpha": [Interval(numbers.Real, 0, None, closed="left")],
    "q": [Interval(numbers.Real, 0, 1, closed="right")],
    "solver": [StrOptions({"auto", "fista", "ista", "cd", "lars", "omp"})],
    "max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
    "tol": [Interval(numbers.Real, 0, None, closed="left")],
    "step_size": [Interval(numbers.Real, 0, 1, closed="right")],
    "init": [StrOptions({"zeros", "l1"}), "array-like"],
    "positive_code": ["boolean"],
    "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
    "n_jobs": [numbers.Integral, None],
    "verbose": ["verbose"],
}


def _is_device_array(a: Any) -> bool:
    return type(a).__module__.split(".")[0] in ("cupy", "torch")


def _check_inputs(X: Any, D: Any, n_features_in: int | None = None) -> tuple[Any, Any]:
    """Validate ``X`` and the dictionary; NumPy arrays are checked, device arrays kept."""
    if not _is_device_array(X) and not sp.issparse(X):
        X = np.asarray(X)
    if n_features_in is not None and X.ndim == 2 and X.shape[1] != n_features_in:
        raise ValueError(
            f"X has {X.shape[1]} features, but LqSparseCoder is expecting "
            f"{n_features_in} features as input."
        )
    if _is_device_array(X) or _is_device_array(D):
        xp = get_namespace(X, D)
        for name, a in (("X", X), ("dictionary", D)):
            if a.ndim != 2:
                raise ValueError(f"{name} must be 2-D; got {a.ndim}-D")
            if a.shape[0] < 1 or a.shape[1] < 1:
                raise ValueError(f"{name} is empty (shape {tuple(a.shape)})")
            if not bool(xp.all(xp.isfinite(a))):
                raise ValueError(f"Input {name} contains NaN or infinity.")
    else:
        for name, a in (("X", X), ("dictionary", D)):
            if sp.issparse(a):
                raise TypeError(
                    f"Sparse data was passed for {name}, but dense data is required. Use "
                    "'.toarray()' to convert to a dense numpy array."
                )
            if isinstance(a, np.ndarray) and a.dtype == object:
                a = np.asarray(a, dtype=np.float64)  # numpy's own error for non-numbers
            if np.ndim(a) == 1:
                raise ValueError(
                    f"Expected 2D array for {name}, got 1D array instead. Reshape your data "
                    "either using array.reshape(-1, 1) if your data has a single feature or "
                    "array.reshape(1, -1) if it contains a single sample."
                )
        X = check_complex_array(X, input_name="X")
        D = check_complex_array(D, input_name="dictionary")
    xp = get_namespace(X, D)
    if xp.isdtype(X.dtype, "real floating") and xp.isdtype(D.dtype, "real floating"):
        D = xp.astype(D, X.dtype)  # float32 signals are coded in float32
    if X.shape[1] != D.shape[1]:
        raise ValueError(
            f"X has {X.shape[1]} features, but the dictionary has atoms of length {D.shape[1]}"
        )
    return X, D


def _atom_norms(D: Any) -> Any:
    xp = get_namespace(D)
    return xp.sqrt(xp.sum(xp.abs(D) ** 2, axis=1))


def _build_penalty(penalty: Any, alpha: float, q: float, D: Any) -> Penalty:
    """Penalty object for coding with ``D`` (CEL0 gets the atom norms of ``D``)."""
    pen = make_penalty(penalty, alpha=alpha, q=q)
    if isinstance(pen, CEL0):
        norms = np.asarray(_to_host(_atom_norms(D)), dtype=np.float64)
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


def _to_host(a: Any) -> np.ndarray:
    from sparsestat._kernels._dispatch import to_numpy

    return to_numpy(a)


def _encode(
    X: Any,
    D: Any,
    pen: Penalty,
    *,
    solver: str,
    max_iter: int,
    tol: float,
    step_size: float,
    init: Any,
    positive_code: bool,
    batch_size: int,
    n_jobs: int | None,
    verbose: int,
    lipschitz: float | None = None,
) -> tuple[Any, int]:
    """Core of :func:`lq_sparse_encode` on validated arrays."""
    xp = get_namespace(X, D)
    complex_ = bool(xp.isdtype(X.dtype, "complex floating")) or bool(
        xp.isdtype(D.dtype, "complex floating")
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

    if positive_code:

        def prox(Z: Any, step: float) -> Any:
            return pen.prox(xp.maximum(Z, xp.zeros_like(Z)), step)

    else:
        prox = pen.prox

    def row_penalty(C: Any) -> Any:
        return penalty_row_values(pen, C)

    n = X.shape[0]
    if isinstance(init, str) and init == "l1" and not isinstance(pen, L1):
        C0, _ = _encode(
            X,
            D,
            L1(alpha=pen.alpha),
            solver="auto",
            max_iter=max_iter,
            tol=tol,
            step_size=step_size,
            init="zeros",
            positive_code=positive_code,
            batch_size=batch_size,
            n_jobs=n_jobs,
            verbose=0,
            lipschitz=lipschitz,
        )
    elif isinstance(init, str):
        C0 = None
    else:
        C0 = init
        if tuple(C0.shape) != (n, D.shape[0]):
            raise ValueError(
                f"init must have shape (n_samples, n_components) = {(n, D.shape[0])}; "
                f"got {tuple(C0.shape)}"
            )

    cpu_real = not (complex_ or _is_device_array(X))
    if solver == "auto":
        solver = "lars" if cpu_real and isinstance(pen, L1) else "fista"
    if solver in ("cd", "lars", "omp"):
        if not cpu_real:
            raise ValueError(
                f"solver={solver!r} codes real NumPy arrays only; use 'fista' otherwise"
            )
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
        return C.astype(X.dtype, copy=False), int(it.max()) if n else 0

    starts = list(range(0, n, batch_size))

    def run(s: int) -> tuple[Any, Any]:
        sl = slice(s, min(s + batch_size, n))
        return pgd_sparse_code(
            X[sl, ...],
            D,
            prox,
            row_penalty,
            lipschitz=lipschitz,
            step_size=step_size,
            accelerated=solver == "fista",
            max_iter=max_iter,
            tol=tol,
            init=None if C0 is None else C0[sl, ...],
        )

    if n_jobs not in (None, 1) and len(starts) > 1 and not _is_device_array(X):
        parts = Parallel(n_jobs=n_jobs, prefer="threads")(delayed(run)(s) for s in starts)
    else:
        parts = [run(s) for s in progress_bar(starts, verbose=verbose, desc="coding", unit="chunk")]
    if len(parts) == 1:
        C, it = parts[0]
    else:
        C = xp.concat([p[0] for p in parts], axis=0)
        it = xp.concat([p[1] for p in parts], axis=0)
    n_iter = int(xp.max(it)) if n else 0
    return C, n_iter


def _penalty_of(penalty: Any, alpha: float, q: float, D: Any) -> Penalty:
    return _build_penalty(penalty, alpha, q, D)


@validate_params(
    {
        "X": ["array-like"],
        "dictionary": ["array-like"],
        **_ENCODE_CONSTRAINTS,
        "return_n_iter": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def lq_sparse_encode(
    X: Any,
    dictionary: Any,
    *,
    penalty: Any = "l1",
    alpha: float = 1.0,
    q: float = 0.5,
    solver: str = "auto",
    max_iter: int = 1000,
    tol: float = 1e-6,
    step_size: float = 1.0,
    init: Any = "zeros",
    positive_code: bool = False,
    batch_size: int = 4096,
    n_jobs: int | None = None,
    verbose: int = 0,
    return_n_iter: bool = False,
) -> Any:
    """Sparse codes of many signals with an l1, l0, l1/2, lq or CEL0 penalty.

    Each row ``x`` of ``X`` gets the code ``c`` that (locally) minimises
    ``F(c) = 1/2 ||x - c D||^2 + alpha P(c)`` by batched proximal gradient (monotone FISTA or
    ISTA): one Gram matrix for all signals, one GEMM per iteration over the block of rows
    that are still moving, the prox applied to the whole block.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Signals, one per row. NumPy, CuPy or torch; complex for 'l1' and 'l0'.
    dictionary : array-like of shape (n_components, n_features)
        Atoms as rows (never modified).
    penalty : {'l1', 'l0', 'l1/2', 'lq', 'cel0'} or Penalty, default='l1'
        Penalty ``P``, or a :mod:`sparsestat.penalties` object (then ``alpha`` and ``q`` are
        taken from it).
    alpha : float, default=1.0
        Penalty weight, ``>= 0``; ``alpha = 0`` gives least squares by gradient steps.
    q : float, default=0.5
        Exponent of 'lq', in (0, 1].
    solver : {'auto', 'fista', 'ista', 'cd', 'lars', 'omp'}, default='auto'
        'fista' / 'ista': monotone FISTA or ISTA (iterative thresholding, the paper's scheme)
        on blocks of signals, any penalty, any array library, complex data. The other three
        code each signal on its own from ``G = D D^T`` and ``X D^T`` in a compiled loop
        (real NumPy data only): 'cd', coordinate descent for every penalty (each step an
        exact coordinate minimisation, which for 'cel0' with its own atom norms is the same
        hard threshold as 'l0'); 'lars', the exact lasso homotopy ('l1' only); 'omp',
        orthogonal matching pursuit stopped by the l0 price of an atom ('l0' only; a greedy
        critical point, usually lower than the one hard thresholding from zero reaches), both
        followed by coordinate descent. 'auto' is 'lars' for 'l1' on real NumPy data (the
        fastest, and exact: the l1 problem is convex) and 'fista' otherwise (it keeps the
        paper's iterative-thresholding critical points for the non-convex penalties).
    max_iter : int, default=1000
        Maximum iterations (coordinate-descent epochs for 'cd', 'lars', 'omp') per signal.
    tol : float, default=1e-6
        A signal stops when ``max|c+ - c| <= tol * max(1, max|c|)`` (over one iteration, or
        one full sweep of coordinate descent); coordinate descent on 'l1' also stops when
        the duality gap is at most ``tol^2 ||x||^2``.
    step_size : float, default=1.0
        Step as a fraction of ``1 / L``, ``L = ||D||_2^2``.
    init : {'zeros', 'l1'} or array of shape (n_samples, n_components), default='zeros'
        Starting codes: zeros (the paper), the l1 solution at the same ``alpha`` (the usual
        warm start for l0 / CEL0), or given codes.
    positive_code : bool, default=False
        Constrain the codes to be non-negative (real data only).
    batch_size : int, default=4096
        Rows coded together (one GEMM block).
    n_jobs : int or None, default=None
        Threads (NumPy input only): over blocks of rows for 'fista' / 'ista', Numba threads
        over signals for 'cd', 'lars', 'omp' (at most ``NUMBA_NUM_THREADS``).
    verbose : int, default=0
        Show a progress bar over blocks.
    return_n_iter : bool, default=False
        Also return the largest number of iterations over the signals (homotopy steps for
        'lars', selected atoms for 'omp').

    Returns
    -------
    codes : array of shape (n_samples, n_components)
        The codes, same library and device as ``X``.
    n_iter : int
        Returned when ``return_n_iter`` is True.

    Notes
    -----
    With ``penalty='l1'`` the objective is exactly the one of scikit-learn's
    ``SparseCoder(transform_algorithm='lasso_cd', transform_alpha=alpha)``. For the non-convex
    penalties the result is a critical point that depends on ``init``. Monotone FISTA is used
    for 'l1' too (a momentum restart on the rows whose objective would increase; the spec
    asks for plain FISTA there [inferred]). Cost per iteration ``O(n k^2)`` with the Gram
    matrix (``k <= 2 m``), ``O(n k m)`` otherwise; memory ``O(n k + k^2)``.

    References
    ----------
    .. [1] D. Rentzeperis, L. Calatroni, L. Perrinet, D. Prandi, "Beyond l1 sparse coding in
       V1", PLOS Computational Biology 19(9), e1011459, 2023.
    .. [2] A. Beck, M. Teboulle, "A fast iterative shrinkage-thresholding algorithm for linear
       inverse problems", SIAM J. Imaging Sciences 2(1), 2009.
    .. [3] H. Li, Z. Lin, "Accelerated proximal gradient methods for nonconvex programming",
       NeurIPS 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.decomposition import lq_sparse_encode
    >>> D = np.eye(3)
    >>> lq_sparse_encode(np.array([[3.0, 0.5, -2.0]]), D, penalty="l1", alpha=1.0)
    array([[ 2.,  0., -1.]])
    """
    X, D = _check_inputs(X, dictionary)
    pen = _penalty_of(penalty, alpha, q, D)
    if not isinstance(init, str) and not _is_device_array(X):
        init = check_complex_array(init, input_name="init")
    C, n_iter = _encode(
        X,
        D,
        pen,
        solver=solver,
        max_iter=max_iter,
        tol=tol,
        step_size=step_size,
        init=init,
        positive_code=positive_code,
        batch_size=batch_size,
        n_jobs=n_jobs,
        verbose=verbose,
    )
    return (C, n_iter) if return_n_iter else C


class LqSparseCoder(TransformerMixin, BaseEstimator):
    """Sparse coding against a fixed dictionary with l1, l0, l1/2, lq or CEL0 penalties.

    The non-convex twin of scikit-learn's ``SparseCoder``: ``transform`` returns, for each
    row ``x``, a code ``c`` (locally) minimising ``1/2 ||x - c D||^2 + alpha P(c)``, computed
    for all rows at once by batched proximal gradient (see :func:`lq_sparse_encode`).

    Parameters
    ----------
    dictionary : array-like of shape (n_components, n_features)
        Atoms as rows; never modified.
    penalty : {'l1', 'l0', 'l1/2', 'lq', 'cel0'} or Penalty, default='l1'
        The sparsity penalty, or a :mod:`sparsestat.penalties` object (tunable as
        ``penalty__alpha``; ``alpha`` and ``q`` are then ignored).
    alpha : float, default=1.0
        Penalty weight.
    q : float, default=0.5
        Exponent of 'lq', in (0, 1].
    solver : {'auto', 'fista', 'ista', 'cd', 'lars', 'omp'}, default='auto'
        Monotone FISTA, ISTA, Gram coordinate descent, LARS-lasso ('l1') or OMP ('l0'), the
        last three on real NumPy data; 'auto' is 'lars' for 'l1' on real NumPy data and
        'fista' otherwise (see :func:`lq_sparse_encode`).
    max_iter : int, default=1000
        Maximum iterations per signal.
    tol : float, default=1e-6
        Per-signal stopping tolerance on the change of the codes.
    step_size : float, default=1.0
        Step as a fraction of ``1 / L``.
    init : {'zeros', 'l1'} or ndarray of shape (n_samples, n_components), default='zeros'
        Starting codes.
    positive_code : bool, default=False
        Non-negative codes.
    split_sign : bool, default=False
        Return ``[max(c, 0), max(-c, 0)]`` side by side, as scikit-learn does.
    batch_size : int, default=4096
        Rows per GEMM block.
    n_jobs : int or None, default=None
        Threads over blocks.
    verbose : int, default=0
        Progress bar over blocks.

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen by ``fit``.
    n_components_ : int
        Number of atoms.
    lipschitz_ : float
        ``||D||_2^2 (1 + 1e-6)``, the Lipschitz constant of the data-fit gradient.
    atom_norms_ : ndarray of shape (n_components,)
        Euclidean norms of the atoms.
    n_iter_ : int
        Largest number of iterations over the signals of the last ``fit_transform``
        (``transform`` leaves the estimator unchanged).

    See Also
    --------
    lq_sparse_encode : The function behind ``transform``.
    LqDictionaryLearning : Learns the dictionary.

    Notes
    -----
    Stateless like scikit-learn's ``SparseCoder`` (``requires_fit=False``): ``fit`` only
    validates. Complex signals and dictionaries work with 'l1' and 'l0'. CuPy and torch
    inputs stay on their device (generic array-API kernels). Non-convex penalties give
    critical points that depend on ``init``. 'cel0' uses the atom norms of the dictionary and
    warns when they are not 1. scikit-learn's common checks feed ``X`` with a number of
    features fixed by each check, which a fixed dictionary cannot match; those checks are
    run in the tests with a matching dictionary instead (as scikit-learn does for
    ``SparseCoder``).

    References
    ----------
    .. [1] D. Rentzeperis, L. Calatroni, L. Perrinet, D. Prandi, "Beyond l1 sparse coding in
       V1", PLOS Computational Biology 19(9), e1011459, 2023.
    .. [2] E. Soubies, L. Blanc-Feraud, G. Aubert, "A continuous exact l0 penalty (CEL0) for
       least squares regularized problem", SIAM J. Imaging Sciences 8(3), 2015.
    .. [3] Z. Xu, X. Chang, F. Xu, H. Zhang, "L1/2 regularization: a thresholding
       representation theory and a fast solver", IEEE TNNLS 23(7), 2012.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.decomposition import LqSparseCoder
    >>> D = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    >>> coder = LqSparseCoder(D, penalty="l0", alpha=0.1)
    >>> coder.transform(np.array([[0.6, 0.8]])).round(3)
    array([[0., 0., 1.]])
    """

    _parameter_constraints: dict = {
        "dictionary": ["array-like"],
        **dict(_ENCODE_CONSTRAINTS.items()),
        "split_sign": ["boolean"],
    }

    def __init__(
        self,
        dictionary,
        *,
        penalty="l1",
        alpha=1.0,
        q=0.5,
        solver="auto",
        max_iter=1000,
        tol=1e-6,
        step_size=1.0,
        init="zeros",
        positive_code=False,
        split_sign=False,
        batch_size=4096,
        n_jobs=None,
        verbose=0,
    ):
        self.dictionary = dictionary
        self.penalty = penalty
        self.alpha = alpha
        self.q = q
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.step_size = step_size
        self.init = init
        self.positive_code = positive_code
        self.split_sign = split_sign
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.verbose = verbose

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate the parameters and ``X`` (the dictionary is fixed; nothing is learned).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Signals (only their shape is used).
        y : None
            Ignored.

        Returns
        -------
        self : LqSparseCoder
            The estimator.
        """
        X, D = _check_inputs(X, self.dictionary)
        self.n_features_in_ = X.shape[1]
        self.n_components_ = D.shape[0]
        self.lipschitz_ = lipschitz_constant(D)
        self.atom_norms_ = np.asarray(_to_host(_atom_norms(D)), dtype=np.float64)
        return self

    def _code(self, X):
        self._validate_params()
        X, D = _check_inputs(X, self.dictionary, getattr(self, "n_features_in_", None))
        pen = _penalty_of(self.penalty, self.alpha, self.q, D)
        init = self.init
        if not isinstance(init, str) and not _is_device_array(X):
            init = check_complex_array(init, input_name="init")
        C, n_iter = _encode(
            X,
            D,
            pen,
            solver=self.solver,
            max_iter=self.max_iter,
            tol=self.tol,
            step_size=self.step_size,
            init=init,
            positive_code=self.positive_code,
            batch_size=self.batch_size,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
        )
        if self.split_sign:
            xp = get_namespace(C)
            zero = xp.zeros_like(C)
            C = xp.concat([xp.maximum(C, zero), -xp.minimum(C, zero)], axis=1)
        return C, n_iter

    def transform(self, X):
        """Code every row of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Signals.

        Returns
        -------
        codes : array of shape (n_samples, n_components)
            Sparse codes (twice as many columns with ``split_sign``).
        """
        return self._code(X)[0]

    def fit_transform(self, X, y=None):
        """Validate, then code every row of ``X``; sets ``n_iter_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Signals.
        y : None
            Ignored.

        Returns
        -------
        codes : array of shape (n_samples, n_components)
            Sparse codes.
        """
        self.fit(X)
        C, self.n_iter_ = self._code(X)
        return C

    def inverse_transform(self, X):
        """Reconstruct signals from codes: ``C @ D``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes (without ``split_sign`` doubling).

        Returns
        -------
        X_rec : array of shape (n_samples, n_features)
            Reconstructions.
        """
        if _is_device_array(X):
            return X @ self.dictionary
        C = check_complex_array(X, input_name="X")
        D = check_complex_array(self.dictionary, input_name="dictionary")
        if C.shape[1] != D.shape[0]:
            raise ValueError(f"codes have {C.shape[1]} columns; the dictionary has {D.shape[0]}")
        return C @ D

    def objective(self, X, C):
        """Per-signal objective ``1/2 ||x - c D||^2 + alpha P(c)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Signals.
        C : array-like of shape (n_samples, n_components)
            Codes.

        Returns
        -------
        F : ndarray of shape (n_samples,)
            Objective of each row.
        """
        X, D = _check_inputs(X, self.dictionary)
        xp = get_namespace(X, D)
        pen = _penalty_of(self.penalty, self.alpha, self.q, D)
        if not _is_device_array(C):
            C = check_complex_array(C, input_name="C")
        R = X - C @ D
        return 0.5 * xp.sum(xp.abs(R) ** 2, axis=1) + penalty_row_values(pen, C)

    @property
    def _n_features_out(self):
        k = np.shape(self.dictionary)[0]
        return 2 * k if self.split_sign else k

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
