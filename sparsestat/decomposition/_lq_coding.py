"""Sparse coding with l1, l0, l1/2, lq and CEL0 penalties (``LqSparseCoder``)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin

from sparsestat._kernels._dispatch import get_namespace
from sparsestat._solvers.coding import (
    PENALTIES,
    SOLVERS,
    atom_norms,
    build_penalty,
    check_coding_inputs,
    check_same_library,
    dictionary_like,
    encode,
    in_namespace,
    lipschitz_constant,
    row_objective,
)
from sparsestat.penalties import Penalty
from sparsestat.utils import check_complex_array
from sparsestat.utils._compat import (
    Interval,
    StrOptions,
    fit_context,
    validate_data,
    validate_params,
)
from sparsestat.utils._dask import is_dask_array, rowwise

__all__ = ["LqSparseCoder", "lq_sparse_encode"]

_ENCODE_CONSTRAINTS: dict[str, list[Any]] = {
    "penalty": [StrOptions(set(PENALTIES)), Penalty],
    "alpha": [Interval(numbers.Real, 0, None, closed="left")],
    "q": [Interval(numbers.Real, 0, 1, closed="right")],
    "solver": [StrOptions(set(SOLVERS))],
    "max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
    "tol": [Interval(numbers.Real, 0, None, closed="left")],
    "step_size": [Interval(numbers.Real, 0, 1, closed="right")],
    "init": [StrOptions({"zeros", "l1"}), "array-like"],
    "positive_code": ["boolean"],
    "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
    "n_jobs": [numbers.Integral, None],
    "verbose": ["verbose"],
}


#: The solver settings that the coder hands to the coding dispatch unchanged.
_SOLVER_PARAMS = (
    "solver",
    "max_iter",
    "tol",
    "step_size",
    "init",
    "positive_code",
    "batch_size",
    "n_jobs",
    "verbose",
)


def _keeps_names(X: Any) -> bool:
    """Whether ``X`` itself should go to ``validate_data`` (pandas names, dask shapes)."""
    return hasattr(X, "columns") or is_dask_array(X)


def _codes_dtype(coder: LqSparseCoder, X_dtype: Any) -> np.dtype:
    """dtype of the codes of signals of dtype ``X_dtype`` (declared for dask output)."""
    D_dtype = np.asarray(coder.dictionary).dtype
    if np.issubdtype(D_dtype, np.complexfloating):
        return np.result_type(X_dtype, D_dtype)
    return np.result_type(X_dtype, np.float32)


@validate_params(
    {
        "X": ["array-like", "sparse matrix"],
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
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Signals, one per row: NumPy, SciPy sparse (CSR / CSC, real), or an array of another
        array-API library (CuPy, torch, ...), coded where it lives; complex for 'l1' and
        'l0'. A sparse ``X`` is never densified as a whole (see Notes).
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
        followed by coordinate descent. 'auto' is 'lars' for 'l1' on real NumPy or SciPy
        sparse data (the
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
        The codes, same library and device as ``X`` (a dense NumPy array for sparse
        ``X``).
    n_iter : int
        Returned when ``return_n_iter`` is True.

    Notes
    -----
    With ``penalty='l1'`` the objective is exactly the one of scikit-learn's
    ``SparseCoder(transform_algorithm='lasso_cd', transform_alpha=alpha)``. For the non-convex
    penalties the result is a critical point that depends on ``init``. Monotone FISTA is used
    for 'l1' too, with a momentum restart on the rows whose objective would increase: not
    specified by the paper (whose scheme is plain iterative thresholding); chosen here
    because it keeps every step monotone for every penalty at the cost of one extra
    objective evaluation. Cost per iteration ``O(n k^2)`` with the Gram matrix
    (``k <= 2 m``), ``O(n k m)`` otherwise; memory ``O(n k + k^2)``.

    A SciPy sparse ``X`` enters the Gram coders ('cd', 'lars', 'omp') and the Gram form of
    FISTA / ISTA only through ``X D^T`` and the row norms (one sparse product); the residual
    form (``n_components > 2 n_features``) densifies one block of ``batch_size`` rows at a
    time.

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
    X, D = check_coding_inputs(X, dictionary)
    pen = build_penalty(penalty, alpha, q, D)
    C, n_iter = encode(
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


class LqSparseCoder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
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
        last three on real NumPy or SciPy sparse data; 'auto' is 'lars' for 'l1' on such
        data and 'fista' otherwise (see :func:`lq_sparse_encode`).
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
    feature_names_in_ : ndarray of shape (n_features,)
        Names of the features seen by ``fit``, when ``X`` has string column names.
    n_components_ : int
        Number of atoms.
    lipschitz_ : float
        ``||D||_2^2 (1 + 1e-6)``, the Lipschitz constant of the data-fit gradient.
    atom_norms_ : array of shape (n_components,)
        Euclidean norms of the atoms (in the array library of the ``X`` given to ``fit``).
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
    validates. Complex signals and dictionaries work with 'l1' and 'l0'. Arrays of other
    array-API libraries (CuPy, torch, ...) stay on their device and are coded by the
    generic FISTA / ISTA kernels, so the estimator declares ``array_api_support``; the Gram
    coders ('cd', 'lars', 'omp') need real NumPy or SciPy sparse data. SciPy sparse signals
    (CSR / CSC) are accepted and never densified as a whole (see :func:`lq_sparse_encode`).
    Non-convex penalties give critical points that depend on ``init``. 'cel0' uses the atom
    norms of the dictionary and warns when they are not 1.

    ``transform`` of a :class:`dask.array.Array` returns a lazy dask array of codes,
    computed block of rows by block of rows (declared shape ``(n_samples, n_components)``,
    twice as wide with ``split_sign``); ``get_feature_names_out`` names the codes
    ``lqsparsecoder0``, ``lqsparsecoder1``, ... so ``set_output(transform="pandas")`` works.

    scikit-learn's common checks feed ``X`` with a number of features fixed by each check,
    which a fixed dictionary cannot match; those checks are run in the tests with a
    matching dictionary instead (as scikit-learn does for ``SparseCoder``).

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
        **_ENCODE_CONSTRAINTS,
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
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Signals (only their shape and values are checked; a dask array is not read).
        y : None
            Ignored.

        Returns
        -------
        self : LqSparseCoder
            The estimator.
        """
        Xc, D = check_coding_inputs(X[:1].compute() if is_dask_array(X) else X, self.dictionary)
        # feature names (pandas) and n_features_in_, from the checked array otherwise
        validate_data(self, X if _keeps_names(X) else Xc, skip_check_array=True)
        self.n_components_ = D.shape[0]
        self.lipschitz_ = lipschitz_constant(D)
        self.atom_norms_ = atom_norms(D)
        return self

    def _code(self, X):
        self._validate_params()
        if hasattr(self, "atom_norms_"):
            check_same_library(X, self.atom_norms_, type(self).__name__, "transform")
        Xc, D = check_coding_inputs(
            X, self.dictionary, n_features_in=getattr(self, "n_features_in_", None)
        )
        validate_data(self, X if _keeps_names(X) else Xc, reset=False, skip_check_array=True)
        X = Xc
        pen = build_penalty(self.penalty, self.alpha, self.q, D)
        C, n_iter = encode(X, D, pen, **{name: getattr(self, name) for name in _SOLVER_PARAMS})
        if self.split_sign:
            xp = get_namespace(C)
            zero = xp.zeros_like(C)
            C = xp.concat([xp.maximum(C, zero), -xp.minimum(C, zero)], axis=1)
        return C, n_iter

    @rowwise(n_outputs=lambda est: est._n_features_out, dtype=_codes_dtype)
    def transform(self, X):
        """Code every row of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array} of shape (n_samples, n_features)
            Signals. A dask array gives a lazy dask array of codes, computed by blocks of
            rows.

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
        X : {array-like, sparse matrix, dask array} of shape (n_samples, n_features)
            Signals.
        y : None
            Ignored.

        Returns
        -------
        codes : array of shape (n_samples, n_components)
            Sparse codes (lazy for a dask array, which leaves ``n_iter_`` unset).
        """
        self.fit(X)
        if is_dask_array(X):
            return self.transform(X)
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
        C = X if in_namespace(X) else check_complex_array(X, input_name="X")
        D = dictionary_like(self.dictionary, C)
        if not in_namespace(C):
            D = check_complex_array(D, input_name="dictionary")
        if C.shape[1] != D.shape[0]:
            raise ValueError(f"codes have {C.shape[1]} columns; the dictionary has {D.shape[0]}")
        xp = get_namespace(C, D)
        if xp.isdtype(C.dtype, "real floating") and xp.isdtype(D.dtype, "real floating"):
            D = xp.astype(D, C.dtype)  # float32 codes give float32 signals
        return C @ D

    def objective(self, X, C):
        """Per-signal objective ``1/2 ||x - c D||^2 + alpha P(c)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Signals.
        C : array-like of shape (n_samples, n_components)
            Codes.

        Returns
        -------
        F : ndarray of shape (n_samples,)
            Objective of each row.
        """
        X, D = check_coding_inputs(X, self.dictionary)
        if not in_namespace(C):
            C = check_complex_array(C, input_name="C")
        return row_objective(X, C, D, build_penalty(self.penalty, self.alpha, self.q, D))

    @property
    def _n_features_out(self):
        k = np.shape(self.dictionary)[0]
        return 2 * k if self.split_sign else k

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.sparse = True
        tags.array_api_support = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
