"""Renamed parameters: the old name keeps working for one release, with a ``FutureWarning``.

An estimator that renames ``old`` to ``new`` keeps ``old`` in its ``__init__`` with the
sentinel default :data:`DEPRECATED` (so ``get_params``, ``clone`` and ``GridSearchCV`` still
see it), accepts the sentinel in its parameter constraints through
:func:`deprecated_constraints`, and reads the value to use in ``fit`` with :func:`renamed`.
Torch estimators that route old names through ``**kwargs`` call :func:`warn_renamed`.

Examples
--------
>>> import warnings
>>> from sklearn.base import BaseEstimator
>>> class Model(BaseEstimator):
...     def __init__(self, lr=0.1, learning_rate=DEPRECATED):
...         self.lr = lr
...         self.learning_rate = learning_rate
>>> renamed(Model(), "learning_rate", "lr")
0.1
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     value = renamed(Model(learning_rate=0.5), "learning_rate", "lr")
>>> value, caught[0].category.__name__
(0.5, 'FutureWarning')
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

from sparsestat.utils._compat import Hidden, StrOptions

__all__ = ["DEPRECATED", "REMOVED_IN", "deprecated_constraints", "renamed", "warn_renamed"]

#: Default of a renamed parameter's old name: "not set by the caller".
DEPRECATED = "deprecated"

#: The release in which the old names go away.
REMOVED_IN = "0.3"


def _is_unset(value: Any) -> bool:
    return isinstance(value, str) and value == DEPRECATED


def deprecated_constraints(constraints: list[Any]) -> list[Any]:
    """Constraints of a renamed parameter's old name: the new name's, plus the sentinel."""
    return [*constraints, Hidden(StrOptions({DEPRECATED}))]


def warn_renamed(old: str, new: str, owner: str, *, stacklevel: int = 3) -> None:
    """Warn (``FutureWarning``) that parameter ``old`` of ``owner`` is now called ``new``."""
    warnings.warn(
        f"{owner}: the parameter {old!r} was renamed to {new!r} and the old name will be "
        f"removed in sparsestat {REMOVED_IN}; use {owner}({new}=...).",
        FutureWarning,
        stacklevel=stacklevel,
    )


def renamed(estimator: Any, old: str, new: str) -> Any:
    """The value to use for parameter ``new`` of ``estimator``, honouring the old name ``old``.

    Returns ``estimator.<new>`` when ``old`` was not set. When the caller set ``old``, warns
    with a ``FutureWarning`` and returns its value; raises ``ValueError`` if the caller also
    changed ``new`` from its default (the two would disagree).
    """
    old_value = getattr(estimator, old, DEPRECATED)
    new_value = getattr(estimator, new)
    if _is_unset(old_value):
        return new_value
    owner = type(estimator).__name__
    default = inspect.signature(type(estimator).__init__).parameters[new].default
    changed = new_value is not default and not _equal(new_value, default)
    if changed:
        raise ValueError(
            f"{owner}: {old!r} is the deprecated name of {new!r}; set only {new!r} "
            f"(got {old}={old_value!r} and {new}={new_value!r})."
        )
    warn_renamed(old, new, owner, stacklevel=3)
    return old_value


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # arrays, objects without a truth value
        return False
