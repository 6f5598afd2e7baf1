"""numpydoc validation of every public class, function and method of sparsestat.

Public means: listed in the ``__all__`` of a public (non-underscore) module. Classes and
functions need a summary, every parameter documented, a Returns section where something is
returned, and an Examples section (run by pytest's doctest collection). Estimators also need
an Attributes section. A deliberately broken dummy shows that the check can fail.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from importlib.util import find_spec

import pytest
from numpydoc.validate import validate

import sparsestat

#: numpydoc error codes enforced everywhere (summary, parameters, returns).
_CODES = {"GL08", "SS01", "PR01", "PR02", "PR07", "RT01", "RT03", "GL06", "GL07"}
#: additionally for classes and functions: an Examples section.
_TOP_LEVEL_CODES = _CODES | {"EX01"}


def _public_modules():
    for info in pkgutil.walk_packages(sparsestat.__path__, prefix="sparsestat."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts[1:]):
            continue
        if "neural" in parts and find_spec("torch") is None:
            continue
        yield importlib.import_module(info.name)


def _public_objects():
    seen = set()
    for module in _public_modules():
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name, None)
            if obj is None or inspect.ismodule(obj) or not callable(obj):
                continue
            if id(obj) in seen or not getattr(obj, "__module__", "").startswith("sparsestat"):
                continue
            seen.add(id(obj))
            yield f"{obj.__module__}.{obj.__qualname__}", obj


def _methods(cls):
    for name, member in vars(cls).items():
        if name.startswith("_") or not inspect.isfunction(member):
            continue
        yield f"{cls.__module__}.{cls.__qualname__}.{name}", member


def problems(obj, name=None, codes=_TOP_LEVEL_CODES):
    """The numpydoc errors among ``codes`` for ``obj`` (plus our Attributes rule)."""
    name = name or f"{obj.__module__}.{obj.__qualname__}"
    report = validate(name)
    found = [f"{code}: {msg}" for code, msg in report["errors"] if code in codes]
    if (
        inspect.isclass(obj)
        and hasattr(obj, "fit")
        and "Attributes\n    ------" not in (obj.__doc__ or "")
    ):
        found.append("ATTR: estimator docstring has no Attributes section")
    return found


_OBJECTS = list(_public_objects())
_METHODS = [m for _, obj in _OBJECTS if inspect.isclass(obj) for m in _methods(obj)]


def test_public_api_found():
    names = {n.rsplit(".", 1)[-1] for n, _ in _OBJECTS}
    assert {"IHTRegressor", "L1", "nmse", "all_estimators"} <= names


@pytest.mark.parametrize(("name", "obj"), _OBJECTS, ids=[n for n, _ in _OBJECTS])
def test_public_docstring_is_valid(name, obj):
    assert not problems(obj, name), "\n".join(problems(obj, name))


@pytest.mark.parametrize(("name", "obj"), _METHODS, ids=[n for n, _ in _METHODS])
def test_public_method_docstring_is_valid(name, obj):
    errs = problems(obj, name, codes=_CODES)
    assert not errs, "\n".join(errs)


# --------------------------------------------------------------------------- the check fails
def broken_dummy(x):
    """Return twice x.

    Parameters
    ----------
    x : float
        A number.

    Examples
    --------
    >>> broken_dummy(1.0)
    2.0
    """
    return 2 * x


def complete_dummy(x):
    """Return twice x.

    Parameters
    ----------
    x : float
        A number.

    Returns
    -------
    y : float
        Twice ``x``.

    Examples
    --------
    >>> complete_dummy(1.0)
    2.0
    """
    return 2 * x


def test_validator_flags_a_docstring_that_lost_a_section():
    assert problems(complete_dummy, f"{__name__}.complete_dummy") == []
    errs = problems(broken_dummy, f"{__name__}.broken_dummy")
    assert any(e.startswith("RT01") for e in errs), errs
