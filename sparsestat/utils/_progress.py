"""Progress bars for ``verbose`` (tqdm); library code never prints."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

__all__ = ["progress_bar"]


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    total: int | None = None,
    verbose: int | bool = 0,
    desc: str | None = None,
    unit: str = "it",
) -> Any:
    """Return a tqdm bar that is shown only when ``verbose > 0``.

    Parameters
    ----------
    iterable : iterable or None
        What to iterate over; ``None`` gives a manual bar (``update`` / ``set_postfix``).
    total : int or None
        Number of steps, when ``iterable`` has no length.
    verbose : int or bool
        The estimator's ``verbose`` parameter; the bar is disabled when it is falsy.
    desc : str or None
        Label in front of the bar.
    unit : str
        Name of one step.

    Returns
    -------
    bar : tqdm.tqdm
        A (possibly disabled) progress bar; use it as an iterable or call ``update``.

    Examples
    --------
    >>> from sparsestat.utils import progress_bar
    >>> sum(progress_bar(range(3), verbose=0))
    3
    """
    return tqdm(iterable, total=total, disable=not verbose, desc=desc, unit=unit, leave=False)
