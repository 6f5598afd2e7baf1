"""Dictionary learning with l1, l0, l1/2, lq and CEL0 codes (full batch and mini-batch)."""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from sparsestat._solvers.coding import (
    PENALTIES,
    bcd_update,
    build_penalty,
    encode,
    forgetting_factor,
    project_atoms,
    row_objective,
    sgd_update,
)
from sparsestat.penalties import Penalty
from sparsestat.utils import progress_bar
from sparsestat.utils._compat import Interval, StrOptions, fit_context, validate_data
from sparsestat.utils._dask import is_dask_array, partial_fit_chunks, rowwise
from sparsestat.utils._deprecation import DEPRECATED, deprecated_constraints, renamed

__all__ = ["LqDictionaryLearning", "MiniBatchLqDictionaryLearning"]

_LR = [Interval(numbers.Real, 0, None, closed="neither")]


def _dense_only(X: Any, owner: str) -> None:
    if sp.issparse(X):
        raise TypeError(
            f"Sparse data was passed for X, but {owner}.fit needs dense data (the "
            "dictionary update works on dense rows); transform accepts sparse X. Use "
            "X.toarray() to convert to a dense numpy array."
        )


class _BaseLqDictionaryLearning(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared parameters, initialisation, coding and dictionary steps."""

    _parameter_constraints: dict = {
        "n_components": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "penalty": [StrOptions(set(PENALTIES)), Penalty],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "q": [Interval(numbers.Real, 0, 1, closed="right")],
        "max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "fit_algorithm": [StrOptions({"bcd", "sgd"})],
        "transform_solver": [StrOptions({"fista", "ista"})],
        "transform_max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "transform_tol": [Interval(numbers.Real, 0, None, closed="left")],
        "lr": _LR,
        "learning_rate": deprecated_constraints(_LR),
        "lr_decay": [StrOptions({"time"}), None],
        "atom_norm": [StrOptions({"unit", "ball"})],
        "dict_init": ["array-like", None],
        "random_state": ["random_state"],
        "callback": [callable, None],
        "verbose": ["verbose"],
    }

    # ------------------------------------------------------------------ pieces
    def _init_dictionary(self, X: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
        k = self.n_components if self.n_components is not None else X.shape[1]
        if self.dict_init is not None:
            D = np.array(self.dict_init, dtype=X.dtype, copy=True)
            if D.shape != (k, X.shape[1]):
                raise ValueError(
                    f"dict_init must have shape (n_components, n_features) = "
                    f"{(k, X.shape[1])}; got {D.shape}"
                )
            if not np.all(np.isfinite(D)):
                raise ValueError("dict_init contains NaN or infinity")
        else:
            idx = rng.permutation(X.shape[0])[:k]
            D = np.array(X[idx], dtype=X.dtype)
            if D.shape[0] < k:
                extra = rng.standard_normal((k - D.shape[0], X.shape[1])).astype(X.dtype)
                D = np.vstack([D, extra])
        project_atoms(D, self.atom_norm, rng, X if X.shape[0] else D)
        return D

    def _penalty(self, D: np.ndarray) -> Penalty:
        return build_penalty(self.penalty, self.alpha, self.q, D)

    def _code(self, X: Any, D: np.ndarray, init: Any = None) -> np.ndarray:
        C, _ = encode(
            X,
            D,
            self._penalty(D),
            solver=self.transform_solver,
            max_iter=self.transform_max_iter,
            tol=self.transform_tol,
            init="zeros" if init is None else init,
        )
        return C

    def _objective(self, X: np.ndarray, C: np.ndarray, D: np.ndarray) -> float:
        return float(np.sum(row_objective(X, C, D, self._penalty(D))))

    def _lr(self, step: int) -> float:
        eta0 = float(self._lr0)
        if self.lr_decay == "time":
            return eta0 / (1.0 + (eta0 / 50.0) * step)
        return eta0

    def _update(self, D: np.ndarray, X: np.ndarray, C: np.ndarray, A: Any, B: Any, rng: Any):
        """One dictionary step from the codes ``C`` of ``X`` ('bcd' uses ``A``, ``B``)."""
        if self.fit_algorithm == "bcd":
            bcd_update(D, A, B, self.atom_norm, rng, X, C)
        else:
            sgd_update(D, X, C, self._lr(self.n_steps_), self.atom_norm, rng)
        self.n_steps_ += 1

    # ------------------------------------------------------------------ API
    @rowwise(n_outputs=lambda est: est.components_.shape[0])
    def transform(self, X):
        """Code ``X`` with the learned dictionary and the same penalty.

        Parameters
        ----------
        X : {array-like, sparse matrix, dask array} of shape (n_samples, n_features)
            Signals. A sparse ``X`` is not densified as a whole; a dask array gives a lazy
            dask array of codes, computed by blocks of rows.

        Returns
        -------
        codes : ndarray of shape (n_samples, n_components)
            Sparse codes.
        """
        check_is_fitted(self)
        X = validate_data(
            self, X, reset=False, accept_sparse=["csr", "csc"], dtype=[np.float64, np.float32]
        )
        return self._code(X, self.components_.astype(X.dtype, copy=False))

    def inverse_transform(self, X):
        """Reconstruct signals from codes: ``C @ components_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes.

        Returns
        -------
        X_rec : ndarray of shape (n_samples, n_features)
            Reconstructions.
        """
        check_is_fitted(self)
        C = np.asarray(X)
        return C @ self.components_

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


_DOC_PARAMS = """
    n_components : int or None, default=None
        Number of atoms; ``n_features`` when None.
    penalty : {'l1', 'l0', 'l1/2', 'lq', 'cel0'} or Penalty, default='l1'
        Penalty on the codes (also used by ``transform``).
    alpha : float, default=1.0
        Penalty weight.
    q : float, default=0.5
        Exponent of 'lq'.
    max_iter : int, default=%(max_iter)s
        %(max_iter_doc)s
    tol : float, default=1e-8
        Stop when the objective changes by at most ``tol`` relatively between epochs.
    fit_algorithm : {'bcd', 'sgd'}, default='bcd'
        Dictionary update: block coordinate descent on the sufficient statistics (Mairal et
        al. 2010, as scikit-learn) or the paper's Hebbian gradient step.
    transform_solver : {'fista', 'ista'}, default='fista'
        Coding solver (see :func:`lq_sparse_encode`).
    transform_max_iter : int, default=300
        Coding iterations.
    transform_tol : float, default=1e-5
        Coding tolerance.
    lr : float, default=1e-2
        Learning rate of 'sgd' (averaged over the batch: the paper's summed rate times the
        batch size).
    lr_decay : {'time'} or None, default=None
        'time': ``eta_t = eta_0 / (1 + (eta_0 / 50) t)`` with ``t`` the step count.
    atom_norm : {'unit', 'ball'}, default='unit'
        Atoms on the unit sphere (the paper) or in the unit ball (scikit-learn).
    dict_init : array-like of shape (n_components, n_features) or None, default=None
        Initial dictionary; else ``n_components`` random training rows, normalised.
"""

_DOC_DEPRECATED = """    learning_rate : float
        Deprecated name of ``lr`` (a ``FutureWarning`` says so); removed in 0.3.
"""


class LqDictionaryLearning(_BaseLqDictionaryLearning):
    __doc__ = (
        """Full-batch dictionary learning with l1, l0, l1/2, lq or CEL0 sparse codes.

    Minimises ``1/2 ||X - C D||_F^2 + alpha sum_i P(c_i)`` over codes ``C`` and atoms ``D``
    (rows, norm 1 or at most 1) by alternating sparse coding of all rows (batched monotone
    FISTA) with a dictionary update, like scikit-learn's ``DictionaryLearning``.

    Parameters
    ----------"""
        + _DOC_PARAMS
        % {"max_iter": "1000", "max_iter_doc": "Maximum number of epochs (code + update)."}
        + """    code_init : {'zeros', 'warm'}, default='zeros'
        Start each epoch's coding from zero (the paper) or from the previous codes (makes the
        objective non-increasing with 'bcd' and ``atom_norm='ball'``, but freezes the supports
        of non-convex codes early: on the planted problem l0 / CEL0 / l1/2 learn much better
        from zero).
    random_state : int, RandomState instance or None, default=None
        Seed of the initial dictionary and of dead-atom resampling.
    callback : callable or None, default=None
        Called as ``callback(estimator, epoch)`` after every epoch.
    verbose : int, default=0
        Progress bar over epochs when > 0.
"""
        + _DOC_DEPRECATED
        + """    shuffle : None
        Deprecated: it never had an effect on the full-batch algorithm (a ``FutureWarning``
        says so when it is set); removed in 0.3.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The learned atoms.
    error_ : ndarray of shape (n_iter,)
        Objective after the coding step of every epoch.
    n_iter_ : int
        Epochs run.
    n_steps_ : int
        Dictionary updates done (equals ``n_iter_``).
    n_features_in_ : int
        Number of features seen by ``fit``.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of the features seen by ``fit``, when ``X`` has string column names.

    See Also
    --------
    MiniBatchLqDictionaryLearning : The online version with ``partial_fit``.
    LqSparseCoder : Coding with a fixed dictionary.

    Notes
    -----
    With 'bcd', ``atom_norm='ball'`` and ``code_init='warm'`` every epoch decreases the
    objective (coding is monotone from its start, the BCD pass is an exact block
    minimisation); with 'unit' the projection on the sphere may not. Atoms that no code
    uses are replaced by random residuals: not specified by the paper; chosen here (as
    scikit-learn and SPAMS do) because a dead atom never comes back otherwise. Cost per
    epoch ``O(n (coding) + n k m + k^2 m)``.

    ``fit`` needs dense ``X``; ``transform`` also accepts SciPy sparse ``X`` (not densified
    as a whole) and dask arrays (lazy codes, computed by blocks of rows).
    ``get_feature_names_out`` names the codes ``lqdictionarylearning0``, ... .

    References
    ----------
    .. [1] D. Rentzeperis, L. Calatroni, L. Perrinet, D. Prandi, "Beyond l1 sparse coding in
       V1", PLOS Computational Biology 19(9), e1011459, 2023.
    .. [2] J. Mairal, F. Bach, J. Ponce, G. Sapiro, "Online learning for matrix factorization
       and sparse coding", JMLR 11, 2010.
    .. [3] B. A. Olshausen, D. J. Field, "Emergence of simple-cell receptive field properties
       by learning a sparse code for natural images", Nature 381, 1996.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.decomposition import LqDictionaryLearning
    >>> X = np.random.default_rng(0).standard_normal((40, 6))
    >>> dl = LqDictionaryLearning(8, penalty="l1/2", alpha=0.1, max_iter=5, random_state=0)
    >>> dl.fit(X).components_.shape
    (8, 6)
    """
    )

    _parameter_constraints: dict = {
        **_BaseLqDictionaryLearning._parameter_constraints,
        "code_init": [StrOptions({"zeros", "warm"})],
        "shuffle": ["boolean", None],
    }

    def __init__(
        self,
        n_components=None,
        *,
        penalty="l1",
        alpha=1.0,
        q=0.5,
        max_iter=1000,
        tol=1e-8,
        fit_algorithm="bcd",
        transform_solver="fista",
        transform_max_iter=300,
        transform_tol=1e-5,
        lr=1e-2,
        lr_decay=None,
        atom_norm="unit",
        dict_init=None,
        code_init="zeros",
        random_state=None,
        callback=None,
        verbose=0,
        learning_rate=DEPRECATED,
        shuffle=None,
    ):
        self.n_components = n_components
        self.penalty = penalty
        self.alpha = alpha
        self.q = q
        self.max_iter = max_iter
        self.tol = tol
        self.fit_algorithm = fit_algorithm
        self.transform_solver = transform_solver
        self.transform_max_iter = transform_max_iter
        self.transform_tol = transform_tol
        self.lr = lr
        self.lr_decay = lr_decay
        self.atom_norm = atom_norm
        self.dict_init = dict_init
        self.code_init = code_init
        self.random_state = random_state
        self.callback = callback
        self.verbose = verbose
        self.learning_rate = learning_rate
        self.shuffle = shuffle

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the dictionary from ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training signals (dense).
        y : None
            Ignored.

        Returns
        -------
        self : LqDictionaryLearning
            The fitted estimator.
        """
        _dense_only(X, type(self).__name__)
        if self.shuffle is not None:
            warnings.warn(
                "LqDictionaryLearning: the parameter 'shuffle' has no effect on the "
                "full-batch algorithm and will be removed in sparsestat 0.3; drop it.",
                FutureWarning,
                stacklevel=3,
            )
        self._lr0 = renamed(self, "learning_rate", "lr")
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        rng = check_random_state(self.random_state)
        D = self._init_dictionary(X, rng)
        self.n_steps_ = 0
        C = None
        errors: list[float] = []
        for epoch in progress_bar(range(self.max_iter), verbose=self.verbose, desc="epochs"):
            init = C if (self.code_init == "warm" and C is not None) else None
            C = self._code(X, D, init)
            errors.append(self._objective(X, C, D))
            self._update(D, X, C, C.T @ C, C.T @ X, rng)
            if self.callback is not None:
                self.components_ = D
                self.callback(self, epoch)
            if len(errors) > 1 and abs(errors[-2] - errors[-1]) <= self.tol * abs(errors[-2]):
                break
        self.components_ = D
        self.error_ = np.asarray(errors)
        self.n_iter_ = len(errors)
        return self


class MiniBatchLqDictionaryLearning(_BaseLqDictionaryLearning):
    __doc__ = (
        """Mini-batch dictionary learning with l1, l0, l1/2, lq or CEL0 codes (``partial_fit``).

    The online twin of :class:`LqDictionaryLearning`, like scikit-learn's
    ``MiniBatchDictionaryLearning``: every mini-batch is coded (from zero, as in the paper)
    and the dictionary takes one step, either block coordinate descent on forgetting
    sufficient statistics ``A = rho A + C^T C / b``, ``B = rho B + C^T X / b`` (Mairal et al.
    2010, scikit-learn's schedule for ``rho``) or the paper's Hebbian step.

    Parameters
    ----------"""
        + _DOC_PARAMS
        % {"max_iter": "10", "max_iter_doc": "Number of passes (epochs) over the data."}
        + """    batch_size : int, default=256
        Rows per mini-batch.
    shuffle : bool, default=True
        Shuffle the rows before every epoch (NumPy input; a dask array is read in order).
    random_state : int, RandomState instance or None, default=None
        Seed of the initial dictionary, the shuffling and dead-atom resampling.
    callback : callable or None, default=None
        Called as ``callback(estimator, epoch)`` after every epoch.
    verbose : int, default=0
        Progress bar over epochs when > 0.
"""
        + _DOC_DEPRECATED
        + """
    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The learned atoms.
    error_ : ndarray of shape (n_iter,)
        Sum over the mini-batches of each epoch of the batch objective after coding.
    n_iter_ : int
        Epochs run.
    n_steps_ : int
        Mini-batch steps done (also counted by ``partial_fit``).
    n_features_in_ : int
        Number of features seen by ``fit``.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of the features seen by ``fit``, when ``X`` has string column names.

    See Also
    --------
    LqDictionaryLearning : The full-batch version.

    Notes
    -----
    ``partial_fit(X)`` cuts ``X`` into consecutive mini-batches of ``batch_size`` rows (in
    order) and takes one step per mini-batch, keeping ``A``, ``B``, ``n_steps_`` and the
    random state; so ``partial_fit`` over the batches that ``fit`` uses (``shuffle=False``,
    same ``dict_init``) gives the same dictionary. Cost per step
    ``O(b (coding) + b k m + k^2 m)``.

    Out-of-core data: ``fit`` of a :class:`dask.array.Array` (for example a zarr store
    opened with :func:`dask.array.from_zarr`) makes ``max_iter`` passes over its blocks of
    rows in storage order, computing one block at a time and calling ``partial_fit`` on it,
    so it equals ``partial_fit`` on the same blocks in the same order (the first block
    gives the initial dictionary; ``shuffle`` does not apply: shuffle the rows beforehand if
    they are sorted). dask-ml's ``Incremental`` wrapper is not needed for this; it works only
    when given ``scoring=`` (and equals ``partial_fit`` on the blocks with
    ``shuffle_blocks=False``): the estimator has no ``score``, because a reconstruction error
    always prefers the least sparse codes and would mislead a model search.
    ``transform`` of a dask array is lazy, block by block; it also accepts SciPy sparse
    ``X`` (``fit`` and ``partial_fit`` need dense rows).

    References
    ----------
    .. [1] D. Rentzeperis, L. Calatroni, L. Perrinet, D. Prandi, "Beyond l1 sparse coding in
       V1", PLOS Computational Biology 19(9), e1011459, 2023.
    .. [2] J. Mairal, F. Bach, J. Ponce, G. Sapiro, "Online learning for matrix factorization
       and sparse coding", JMLR 11, 2010.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.decomposition import MiniBatchLqDictionaryLearning
    >>> X = np.random.default_rng(0).standard_normal((60, 6))
    >>> dl = MiniBatchLqDictionaryLearning(8, penalty="cel0", alpha=0.1, batch_size=20,
    ...                                    max_iter=2, random_state=0)
    >>> dl.fit(X).n_steps_
    6
    """
    )

    _parameter_constraints: dict = {
        **_BaseLqDictionaryLearning._parameter_constraints,
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
    }

    def __init__(
        self,
        n_components=None,
        *,
        penalty="l1",
        alpha=1.0,
        q=0.5,
        max_iter=10,
        tol=1e-8,
        fit_algorithm="bcd",
        transform_solver="fista",
        transform_max_iter=300,
        transform_tol=1e-5,
        lr=1e-2,
        lr_decay=None,
        atom_norm="unit",
        dict_init=None,
        batch_size=256,
        shuffle=True,
        random_state=None,
        callback=None,
        verbose=0,
        learning_rate=DEPRECATED,
    ):
        self.n_components = n_components
        self.penalty = penalty
        self.alpha = alpha
        self.q = q
        self.max_iter = max_iter
        self.tol = tol
        self.fit_algorithm = fit_algorithm
        self.transform_solver = transform_solver
        self.transform_max_iter = transform_max_iter
        self.transform_tol = transform_tol
        self.lr = lr
        self.lr_decay = lr_decay
        self.atom_norm = atom_norm
        self.dict_init = dict_init
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.random_state = random_state
        self.callback = callback
        self.verbose = verbose
        self.learning_rate = learning_rate

    def _start(self, X: np.ndarray) -> None:
        self._rng = check_random_state(self.random_state)
        self.components_ = self._init_dictionary(X, self._rng)
        k = self.components_.shape[0]
        self._A = np.zeros((k, k), dtype=X.dtype)
        self._B = np.zeros((k, X.shape[1]), dtype=X.dtype)
        self.n_steps_ = 0
        self._error_sum = 0.0

    def _step(self, Xb: np.ndarray) -> float:
        """Code one mini-batch and take one dictionary step; returns its objective."""
        D = self.components_
        C = self._code(Xb, D)
        err = self._objective(Xb, C, D)
        if self.fit_algorithm == "bcd":
            rho = forgetting_factor(self.n_steps_, self.batch_size)
            b = Xb.shape[0]
            self._A *= rho
            self._A += C.T @ C / b
            self._B *= rho
            self._B += C.T @ Xb / b
        self._update(D, Xb, C, self._A, self._B, self._rng)
        self._error_sum += err
        return err

    def _epochs(self, one_pass: Any) -> None:
        """Run ``max_iter`` passes (each returning its summed objective) with the stop rule."""
        errors: list[float] = []
        for epoch in progress_bar(range(self.max_iter), verbose=self.verbose, desc="epochs"):
            self._error_sum = 0.0
            one_pass()
            errors.append(self._error_sum)
            if self.callback is not None:
                self.callback(self, epoch)
            if len(errors) > 1 and abs(errors[-2] - errors[-1]) <= self.tol * abs(errors[-2]):
                break
        self.error_ = np.asarray(errors)
        self.n_iter_ = len(errors)

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the dictionary from ``X`` in mini-batches.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
            Training signals (dense). A dask array is streamed block by block through
            ``partial_fit`` (see Notes).
        y : None
            Ignored.

        Returns
        -------
        self : MiniBatchLqDictionaryLearning
            The fitted estimator.
        """
        _dense_only(X, type(self).__name__)
        if is_dask_array(X):
            for attr in ("components_", "n_steps_", "n_features_in_", "feature_names_in_"):
                self.__dict__.pop(attr, None)
            self._epochs(lambda: partial_fit_chunks(self, X))
            return self
        self._lr0 = renamed(self, "learning_rate", "lr")
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        self._start(X)
        n = X.shape[0]

        def one_pass() -> None:
            order = self._rng.permutation(n) if self.shuffle else np.arange(n)
            for s in range(0, n, self.batch_size):
                self._step(X[order[s : s + self.batch_size]])

        self._epochs(one_pass)
        return self

    @fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """One step per mini-batch of ``batch_size`` rows of ``X``, in order.

        The first call initialises the dictionary from ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A chunk of training rows (dense).
        y : None
            Ignored.

        Returns
        -------
        self : MiniBatchLqDictionaryLearning
            The updated estimator.
        """
        _dense_only(X, type(self).__name__)
        self._lr0 = renamed(self, "learning_rate", "lr")
        first = not hasattr(self, "components_")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=first)
        if first:
            self._start(X)
            self.n_iter_ = 0
            self.error_ = np.zeros(0)
        X = X.astype(self.components_.dtype, copy=False)
        for s in range(0, X.shape[0], self.batch_size):
            self._step(X[s : s + self.batch_size])
        return self
