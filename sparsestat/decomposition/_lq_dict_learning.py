"""Dictionary learning with l1, l0, l1/2, lq and CEL0 codes (full batch and mini-batch)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from sparsestat._kernels.pgd import penalty_row_values
from sparsestat.decomposition._lq_coding import PENALTIES, _build_penalty, _encode
from sparsestat.penalties import Penalty
from sparsestat.utils import progress_bar
from sparsestat.utils._compat import Interval, StrOptions, fit_context, validate_data

__all__ = ["LqDictionaryLearning", "MiniBatchLqDictionaryLearning"]


def _project(D: np.ndarray, atom_norm: str, rng: np.random.RandomState, X: np.ndarray) -> None:
    """Project the atoms (rows) in place on the unit sphere or ball; revive zero atoms."""
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


def _bcd_update(
    D: np.ndarray,
    A: np.ndarray,
    B: np.ndarray,
    atom_norm: str,
    rng: np.random.RandomState,
    R_pool: np.ndarray,
) -> None:
    """One pass of block coordinate descent over the atoms (Mairal et al. 2010), in place.

    ``A = C^T C`` and ``B = C^T X`` (possibly with forgetting); atoms that are never used
    (``A_jj < 1e-10``) are replaced by a random normalised row of ``R_pool`` (residuals).
    """
    for j in range(D.shape[0]):
        if A[j, j] < 1e-10:
            r = R_pool[rng.randint(R_pool.shape[0])] + 1e-6 * rng.standard_normal(D.shape[1])
            D[j] = r / max(np.linalg.norm(r), 1e-12)
            continue
        D[j] += (B[j] - A[j] @ D) / A[j, j]
        nrm = np.linalg.norm(D[j])
        if atom_norm == "unit":
            D[j] /= max(nrm, 1e-12)
        elif nrm > 1.0:
            D[j] /= nrm


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
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "lr_decay": [StrOptions({"time"}), None],
        "atom_norm": [StrOptions({"unit", "ball"})],
        "dict_init": ["array-like", None],
        "shuffle": ["boolean"],
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
        _project(D, self.atom_norm, rng, X if X.shape[0] else D)
        return D

    def _penalty(self, D: np.ndarray) -> Penalty:
        return _build_penalty(self.penalty, self.alpha, self.q, D)

    def _code(self, X: np.ndarray, D: np.ndarray, init: Any = None) -> np.ndarray:
        C, _ = _encode(
            X,
            D,
            self._penalty(D),
            solver=self.transform_solver,
            max_iter=self.transform_max_iter,
            tol=self.transform_tol,
            step_size=1.0,
            init="zeros" if init is None else init,
            positive_code=False,
            batch_size=4096,
            n_jobs=None,
            verbose=0,
        )
        return C

    def _objective(self, X: np.ndarray, C: np.ndarray, D: np.ndarray) -> float:
        R = X - C @ D
        return float(0.5 * np.sum(R * R) + np.sum(penalty_row_values(self._penalty(D), C)))

    def _lr(self, step: int) -> float:
        eta0 = float(self.learning_rate)
        if self.lr_decay == "time":
            return eta0 / (1.0 + (eta0 / 50.0) * step)
        return eta0

    def _sgd_update(self, D: np.ndarray, X: np.ndarray, C: np.ndarray, rng: Any) -> None:
        D += self._lr(self.n_steps_) * (C.T @ (X - C @ D)) / X.shape[0]
        _project(D, self.atom_norm, rng, X)

    # ------------------------------------------------------------------ API
    def transform(self, X):
        """Code ``X`` with the learned dictionary and the same penalty.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Signals.

        Returns
        -------
        codes : ndarray of shape (n_samples, n_components)
            Sparse codes.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
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
    learning_rate : float, default=1e-2
        Step of 'sgd' (averaged over the batch: the paper's summed rate times the batch size).
    lr_decay : {'time'} or None, default=None
        'time': ``eta_t = eta_0 / (1 + (eta_0 / 50) t)`` with ``t`` the step count.
    atom_norm : {'unit', 'ball'}, default='unit'
        Atoms on the unit sphere (the paper) or in the unit ball (scikit-learn).
    dict_init : array-like of shape (n_components, n_features) or None, default=None
        Initial dictionary; else ``n_components`` random training rows, normalised.
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
    shuffle : bool, default=True
        Unused by the full-batch algorithm; kept for symmetry with the mini-batch class.
    random_state : int, RandomState instance or None, default=None
        Seed of the initial dictionary and of dead-atom resampling.
    callback : callable or None, default=None
        Called as ``callback(estimator, epoch)`` after every epoch.
    verbose : bool or int, default=False
        Progress bar over epochs.

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

    See Also
    --------
    MiniBatchLqDictionaryLearning : The online version with ``partial_fit``.
    LqSparseCoder : Coding with a fixed dictionary.

    Notes
    -----
    With 'bcd', ``atom_norm='ball'`` and ``code_init='warm'`` every epoch decreases the
    objective (coding is monotone from its start, the BCD pass is an exact block
    minimisation); with 'unit' the projection on the sphere may not. Dead atoms are replaced
    by random residuals [inferred]. Cost per epoch ``O(n (coding) + n k m + k^2 m)``.

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
        learning_rate=1e-2,
        lr_decay=None,
        atom_norm="unit",
        dict_init=None,
        code_init="zeros",
        shuffle=True,
        random_state=None,
        callback=None,
        verbose=False,
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
        self.learning_rate = learning_rate
        self.lr_decay = lr_decay
        self.atom_norm = atom_norm
        self.dict_init = dict_init
        self.code_init = code_init
        self.shuffle = shuffle
        self.random_state = random_state
        self.callback = callback
        self.verbose = verbose

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the dictionary from ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training signals.
        y : None
            Ignored.

        Returns
        -------
        self : LqDictionaryLearning
            The fitted estimator.
        """
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
            if self.fit_algorithm == "bcd":
                _bcd_update(D, C.T @ C, C.T @ X, self.atom_norm, rng, X - C @ D)
            else:
                self._sgd_update(D, X, C, rng)
            self.n_steps_ += 1
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
        Shuffle the rows before every epoch.
    random_state : int, RandomState instance or None, default=None
        Seed of the initial dictionary, the shuffling and dead-atom resampling.
    callback : callable or None, default=None
        Called as ``callback(estimator, epoch)`` after every epoch.
    verbose : bool or int, default=False
        Progress bar over epochs.

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

    See Also
    --------
    LqDictionaryLearning : The full-batch version.

    Notes
    -----
    ``partial_fit`` runs exactly one step on the batch it gets and keeps ``A``, ``B``,
    ``n_steps_`` and the random state, so ``partial_fit`` over the batches that ``fit`` uses
    (``shuffle=False``, same ``dict_init``) gives the same dictionary. Cost per step
    ``O(b (coding) + b k m + k^2 m)``.

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
        learning_rate=1e-2,
        lr_decay=None,
        atom_norm="unit",
        dict_init=None,
        batch_size=256,
        shuffle=True,
        random_state=None,
        callback=None,
        verbose=False,
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
        self.learning_rate = learning_rate
        self.lr_decay = lr_decay
        self.atom_norm = atom_norm
        self.dict_init = dict_init
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.random_state = random_state
        self.callback = callback
        self.verbose = verbose

    def _start(self, X: np.ndarray) -> None:
        self._rng = check_random_state(self.random_state)
        self.components_ = self._init_dictionary(X, self._rng)
        k = self.components_.shape[0]
        self._A = np.zeros((k, k), dtype=X.dtype)
        self._B = np.zeros((k, X.shape[1]), dtype=X.dtype)
        self.n_steps_ = 0

    def _step(self, Xb: np.ndarray) -> float:
        D = self.components_
        C = self._code(Xb, D)
        err = self._objective(Xb, C, D)
        b = Xb.shape[0]
        if self.fit_algorithm == "bcd":
            step, bs = self.n_steps_, self.batch_size
            theta = (step + 1) * bs if step < bs - 1 else bs**2 + step + 1 - bs
            rho = (theta + 1 - bs) / (theta + 1)
            self._A *= rho
            self._A += C.T @ C / b
            self._B *= rho
            self._B += C.T @ Xb / b
            _bcd_update(D, self._A, self._B, self.atom_norm, self._rng, Xb - C @ D)
        else:
            self._sgd_update(D, Xb, C, self._rng)
        self.n_steps_ += 1
        return err

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the dictionary from ``X`` in mini-batches.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training signals.
        y : None
            Ignored.

        Returns
        -------
        self : MiniBatchLqDictionaryLearning
            The fitted estimator.
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        self._start(X)
        n = X.shape[0]
        errors: list[float] = []
        for epoch in progress_bar(range(self.max_iter), verbose=self.verbose, desc="epochs"):
            order = self._rng.permutation(n) if self.shuffle else np.arange(n)
            total = 0.0
            for s in range(0, n, self.batch_size):
                total += self._step(X[order[s : s + self.batch_size]])
            errors.append(total)
            if self.callback is not None:
                self.callback(self, epoch)
            if len(errors) > 1 and abs(errors[-2] - errors[-1]) <= self.tol * abs(errors[-2]):
                break
        self.error_ = np.asarray(errors)
        self.n_iter_ = len(errors)
        return self

    @fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """One mini-batch step on ``X`` (initialising the dictionary on the first call).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            One mini-batch.
        y : None
            Ignored.

        Returns
        -------
        self : MiniBatchLqDictionaryLearning
            The updated estimator.
        """
        first = not hasattr(self, "components_")
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=first)
        if first:
            self._start(X)
            self.n_iter_ = 0
            self.error_ = np.zeros(0)
        self._step(X.astype(self.components_.dtype, copy=False))
        return self
