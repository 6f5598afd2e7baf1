"""One vocabulary: every estimator's parameters are named as in docs/glossary.rst.

The glossary is the reference for parameter names: a name that is not a glossary term, or
that a term lists under *Replaces*, fails here (a renamed parameter's old name may remain for
one release with the default ``sparsestat.utils._deprecation.DEPRECATED``).
"""

from __future__ import annotations

import inspect
import pathlib
import re

import pytest

from sparsestat.utils import all_estimators
from sparsestat.utils._deprecation import DEPRECATED

GLOSSARY = pathlib.Path(__file__).resolve().parents[1] / "docs" / "glossary.rst"

#: the largest number of parameters an estimator may have (the rest route to variant objects)
MAX_PARAMS = {"SparseAutoencoder": 25, "SparseMLPClassifier": 25, "SparseMLPRegressor": 25}


def _glossary() -> tuple[set[str], set[str]]:
    """The glossary's terms, and the old names they replace."""
    text = GLOSSARY.read_text(encoding="utf-8")
    terms, replaced = set(), set()
    in_glossary = False
    for line in text.splitlines():
        if line.startswith(".. glossary::"):
            in_glossary = True
        elif line and not line.startswith(" "):
            in_glossary = False
        elif in_glossary and (m := re.fullmatch(r" {3}``([^`]+)``", line)):
            terms.add(m.group(1))
        if "*Replaces:*" in line:
            replaced.update(re.findall(r"``(\w+)``", line.split("*Replaces:*", 1)[1]))
    return terms, replaced


TERMS, REPLACED = _glossary()
_ESTIMATORS = all_estimators()


def test_glossary_parses():
    assert {"alpha", "max_iter", "lr", "random_state", "verbose"} <= TERMS
    assert {"lam", "learning_rate", "density"} <= REPLACED
    assert not TERMS & REPLACED, f"both a term and replaced: {TERMS & REPLACED}"


def _defaults(cls) -> dict[str, object]:
    sig = inspect.signature(cls.__init__)
    return {
        name: p.default
        for name, p in sig.parameters.items()
        if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }


def _current_names(cls) -> dict[str, object]:
    """Parameters that are not deprecated aliases, with their defaults."""
    return {n: d for n, d in _defaults(cls).items() if not (isinstance(d, str) and d == DEPRECATED)}


def _in_glossary(name: str) -> bool:
    return name in TERMS or (name.endswith("_coef") and name != "n_nonzero_coefs")


@pytest.mark.parametrize("name, cls", _ESTIMATORS, ids=[n for n, _ in _ESTIMATORS])
def test_parameter_names_are_in_the_glossary(name, cls):
    params = _current_names(cls)
    unknown = sorted(p for p in params if not _in_glossary(p) or p in REPLACED)
    assert not unknown, (
        f"{name} has parameters that docs/glossary.rst does not define (or replaces): {unknown}"
    )
    if "verbose" in params:
        assert type(params["verbose"]) is int, f"{name}: verbose must default to an int"
    if "device" in params:
        assert params["device"] == "auto", f"{name}: device must default to 'auto'"


@pytest.mark.parametrize("name, cls", _ESTIMATORS, ids=[n for n, _ in _ESTIMATORS])
def test_deprecated_names_are_listed_as_replaced(name, cls):
    deprecated = sorted(set(_defaults(cls)) - set(_current_names(cls)))
    assert set(deprecated) <= REPLACED | {p for p in deprecated if not _in_glossary(p)}, (
        f"{name}: deprecated aliases {deprecated} shadow glossary terms"
    )


@pytest.mark.parametrize("name", sorted(MAX_PARAMS))
def test_variant_estimators_have_short_parameter_lists(name):
    cls = dict(_ESTIMATORS)[name]
    n = len(_current_names(cls))
    assert n <= MAX_PARAMS[name], f"{name} has {n} parameters (at most {MAX_PARAMS[name]})"
