"""Client reports as data: the privatised values and the public parameters they were made under."""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from sparsestat._kernels.ldp import mirror_upper

__all__ = ["FORMAT", "LDPReports", "check_metadata"]

#: Name and version of the reports format.
FORMAT = "sparsestat.ldp-reports/1"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def check_metadata(reports: dict, expected: dict) -> None:
    """Refuse reports whose public parameters differ from the server's.

    Parameters
    ----------
    reports : dict
        The metadata carried by the reports.
    expected : dict
        The server's own public parameters (the same keys).

    Raises
    ------
    ValueError
        Naming every field that differs, with both values.
    """
    diff = [
        f"{key}: reports {reports.get(key, '<missing>')!r}, this model {value!r}"
        for key, value in expected.items()
        if key not in reports or not _same(reports[key], value)
    ]
    if diff:
        raise ValueError(
            "these reports were made under other public parameters than this model's and are "
            "refused (their noise and clipping would not match the estimate): " + "; ".join(diff)
        )


class LDPReports:
    """Privatised reports of a batch of users, with the public parameters they were made under.

    Made on the clients by
    :meth:`~sparsestat.privacy.LDPSparseLinearRegression.privatize`; the server reads them
    with :meth:`~sparsestat.privacy.LDPSparseLinearRegression.add_reports`, which refuses
    reports whose metadata (epsilon, delta, noise scales, bounds, mechanism, library
    version, ...) differ from its own public parameters.

    Parameters
    ----------
    values : dict of str to ndarray of shape (n_users, m)
        The released statistics, one array per channel: ``"xx"`` (upper triangles of the
        noisy ``x x^T``, row-major, diagonal included; absent with public covariates) and
        ``"xy"`` (noisy ``x y``).
    user_ids : ndarray of int of shape (n_users,)
        The reporting users.
    metadata : dict
        Public parameters (JSON-serialisable): ``format``, ``library_version``,
        ``estimator``, ``mechanism``, ``channels``, ``epsilon``, ``delta``,
        ``calibration``, ``sigma``, ``bounds_X``, ``bounds_y``, ``fit_intercept``,
        ``n_features``, ``units``, ``sampler`` ("opendp" or "numpy") and ``simulation``
        (True when the reports carry no formal guarantee: NumPy sampler or a known seed).

    Notes
    -----
    :meth:`save` writes one ``.npz`` file (arrays plus the metadata as JSON, no pickle);
    :meth:`load` reads it back and validates shapes and finiteness. A report file holds
    privatised values only: it may be stored and moved like any other public output.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.privacy import LDPReports
    >>> r = LDPReports({"xy": np.zeros((2, 3))}, np.arange(2), {"channels": ["xy"]})
    >>> len(r), r.v.shape, r.M is None
    (2, (2, 3), True)
    """

    def __init__(self, values: dict[str, Any], user_ids: Any, metadata: dict) -> None:
        self.values = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
        self.user_ids = np.asarray(user_ids, dtype=np.int64)
        self.metadata = dict(metadata)
        n = self.user_ids.shape[0]
        for name, v in self.values.items():
            if v.ndim != 2 or v.shape[0] != n:
                raise ValueError(f"reports {name!r} must have one row per user id; got {v.shape}")
            if not np.all(np.isfinite(v)):
                raise ValueError(f"reports {name!r} contain NaN or infinity")

    def __len__(self) -> int:
        return int(self.user_ids.shape[0])

    def __repr__(self) -> str:
        meta = self.metadata
        return (
            f"LDPReports(n_users={len(self)}, epsilon={meta.get('epsilon')!r}, "
            f"sampler={meta.get('sampler')!r}, simulation={meta.get('simulation')!r})"
        )

    @property
    def M(self) -> np.ndarray | None:
        """The noisy ``x x^T`` as symmetric (n_users, d, d) matrices (None without them)."""
        tri = self.values.get("xx")
        if tri is None:
            return None
        d = int(round((math.sqrt(8 * tri.shape[1] + 1) - 1) / 2))
        return mirror_upper(tri, d)

    @property
    def v(self) -> np.ndarray:
        """The noisy ``x y``, shape (n_users, d)."""
        return self.values["xy"]

    def save(self, path: str | os.PathLike) -> None:
        """Write the reports to one ``.npz`` file (no pickled objects).

        Parameters
        ----------
        path : str or path-like
            Destination (NumPy appends ``.npz`` when missing).
        """
        arrays = {f"values_{k}": v for k, v in self.values.items()}
        np.savez(path, user_ids=self.user_ids, metadata=json.dumps(self.metadata), **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> LDPReports:
        """Read reports written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
            A ``.npz`` file.

        Returns
        -------
        reports : LDPReports
            The reports (validated: one finite row per user id).
        """
        with np.load(path, allow_pickle=False) as data:
            if "metadata" not in data or "user_ids" not in data:
                raise ValueError(f"{path} is not a reports file (no metadata or user_ids)")
            metadata = json.loads(str(data["metadata"]))
            values = {k[len("values_") :]: data[k] for k in data.files if k.startswith("values_")}
            ids = data["user_ids"]
        if metadata.get("format") != FORMAT:
            raise ValueError(f"{path}: unknown reports format {metadata.get('format')!r}")
        return cls(values, ids, metadata)
