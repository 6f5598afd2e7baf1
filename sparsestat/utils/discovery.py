"""Discovery of the estimators sparsestat provides (used by the common tests)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from importlib.util import find_spec
from typing import Any

from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    ClusterMixin,
    RegressorMixin,
    TransformerMixin,
)

__all__ = ["all_estimators"]

_TYPE_MIXINS = {
    "classifier": ClassifierMixin,
    "regressor": RegressorMixin,
    "transformer": TransformerMixin,
    "cluster": ClusterMixin,
}


def all_estimators(type_filter: str | list[str] | None = None) -> list[tuple[str, type]]:
    """List the public estimators of sparsestat, like ``sklearn.utils.all_estimators``.

    Private modules (a leading underscore in any part of the name) are imported too, but only
    classes whose name does not start with an underscore and that have a ``fit`` method count.
    PyTorch-based estimators are included only when torch is importable.

    Parameters
    ----------
    type_filter : {"classifier", "regressor", "transformer", "cluster"} or list, default=None
        Keep only estimators of these kinds; None keeps all.

    Returns
    -------
    estimators : list of (name, class) tuples
        Sorted by name.

    Examples
    --------
    >>> from sparsestat.utils import all_estimators
    >>> names = [name for name, _ in all_estimators()]
    >>> "IHTRegressor" in names
    True
    """
    import sparsestat

    has_torch = find_spec("torch") is not None
    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(sparsestat.__path__, prefix="sparsestat."):
        name = info.name
        parts = name.split(".")
        if any(p in {"tests", "_cupy"} for p in parts):
            continue
        if "neural" in parts and not has_torch:
            continue
        module = importlib.import_module(name)
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if (
                cls_name.startswith("_")
                or not issubclass(cls, BaseEstimator)
                or not cls.__module__.startswith("sparsestat.")
                or inspect.isabstract(cls)
                or not hasattr(cls, "fit")
            ):
                continue
            found[cls_name] = cls
    items = sorted(found.items())
    if type_filter is None:
        return items
    filters = [type_filter] if isinstance(type_filter, str) else list(type_filter)
    unknown = set(filters) - set(_TYPE_MIXINS)
    if unknown:
        raise ValueError(f"type_filter must be among {sorted(_TYPE_MIXINS)}; got {sorted(unknown)}")
    mixins: tuple[Any, ...] = tuple(_TYPE_MIXINS[f] for f in filters)
    return [(n, c) for n, c in items if issubclass(c, mixins)]
