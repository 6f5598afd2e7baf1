"""Randomness of the local randomisers: keyed NumPy streams for simulations, the operating
system's CSPRNG and OpenDP's exact samplers for client reports."""

from __future__ import annotations

import numbers
import os
from typing import Any

import numpy as np

from sparsestat._kernels.ldp import stream_block_size

__all__ = [
    "BACKENDS",
    "OSSource",
    "PrivacyCheckError",
    "UserStreams",
    "load_opendp",
    "make_source",
    "opendp_available",
    "sampler",
]

#: Names of the noise backends.
BACKENDS = ("auto", "numpy", "opendp")


# ----------------------------------------------------------------------------- randomness
class UserStreams:
    """Per-user random streams keyed by ``(seed, stream, user id)``.

    Users are grouped in blocks of ``b = block_size(m)`` consecutive ids (``m`` numbers per
    user); each block has its own SFC64 generator seeded by
    ``SeedSequence(seed, spawn_key=(stream, block))``, and user ``i`` gets row ``i % b`` of
    its block's draw. So the numbers a user receives depend on the seed, the stream tag and
    the user id only, not on how users are batched.

    Parameters
    ----------
    seed : int or sequence of int
        Entropy of the streams (non-negative).

    Attributes
    ----------
    BLOCK : int
        Largest number of users per block (1024).

    Notes
    -----
    Drawing for a batch touches every block it intersects. For consecutive ids, blocks
    inside the batch are drawn straight into the output, and the last partially used block
    of each (stream, m, kind) is kept (at most 2**17 numbers, not pickled), so consecutive
    batches do not draw it twice. Whoever knows ``seed`` can recompute every
    user's noise: use seeded streams for simulations, never in a deployment.

    References
    ----------
    .. [1] O'Neill, NumPy ``SeedSequence`` (``spawn_key`` for independent streams), after
       Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011.

    Examples
    --------
    >>> import numpy as np
    >>> from sparsestat.privacy import UserStreams
    >>> s = UserStreams(0)
    >>> a = s.draw(np.arange(5), 3, stream=0)
    >>> b = s.draw(np.array([3, 4]), 3, stream=0)
    >>> bool(np.array_equal(a[3:], b))
    True
    """

    BLOCK = 1024
    _BLOCK_ENTRIES = 1 << 17

    def __init__(self, seed: Any) -> None:
        self.seed = seed
        self._last: dict[tuple[int, int, str], tuple[int, np.ndarray]] = {}

    def __repr__(self) -> str:
        return f"UserStreams(seed={self.seed!r})"

    @classmethod
    def block_size(cls, m: int) -> int:
        """Users per block for ``m`` numbers per user (a function of ``m`` only).

        See :func:`sparsestat._kernels.ldp.stream_block_size`.
        """
        return stream_block_size(m)

    def draw(self, user_ids: Any, m: int, stream: int, kind: str = "normal") -> np.ndarray:
        """Draw ``m`` numbers for each user.

        Parameters
        ----------
        user_ids : array-like of int, shape (n,)
            Non-negative user ids (repeats get identical rows).
        m : int
            Numbers per user.
        stream : int
            Stream tag (different tags give independent numbers).
        kind : {"normal", "uniform", "laplace"}, default="normal"
            Standard normal, uniform on [0, 1), or standard Laplace.

        Returns
        -------
        out : ndarray of shape (n, m)
            Row ``r`` depends on ``(seed, stream, user_ids[r])`` only.
        """
        ids = np.asarray(user_ids, dtype=np.int64).reshape(-1)
        if ids.size and ids.min() < 0:
            raise ValueError("user ids must be non-negative")
        out = np.empty((ids.size, m))
        if ids.size == 0 or m == 0:
            return out
        size = self.block_size(m)
        if ids[-1] - ids[0] == ids.size - 1 and np.all(np.diff(ids) == 1):
            self._draw_run(int(ids[0]), out, size, int(stream), kind)
            return out
        blocks = ids // size
        order = np.argsort(blocks, kind="stable")
        uniq, starts = np.unique(blocks[order], return_index=True)
        ends = np.append(starts[1:], ids.size)
        for b, s, e in zip(uniq, starts, ends):
            block = self._block(int(b), size, m, int(stream), kind)
            rows = order[s:e]
            out[rows] = block[ids[rows] - int(b) * size]
        return out

    def _generator(self, stream: int, block: int) -> np.random.Generator:
        seq = np.random.SeedSequence(self.seed, spawn_key=(stream, block))
        return np.random.Generator(np.random.SFC64(seq))

    def _block(self, b: int, size: int, m: int, stream: int, kind: str) -> np.ndarray:
        """The whole draw of block ``b``; the last one per (stream, m, kind) is kept."""
        key = (stream, m, kind)
        last = self._last
        if key in last and last[key][0] == b:
            return last[key][1]
        block = _draw(self._generator(stream, b), (size, m), kind)
        last[key] = (b, block)
        return block

    def _draw_run(self, first: int, out: np.ndarray, size: int, stream: int, kind: str) -> None:
        """Rows of the consecutive users ``first, first + 1, ...`` into ``out``.

        Blocks that lie inside the run are drawn straight into ``out``; the partial blocks
        at its ends are drawn whole (and the last one kept for the next run).
        """
        n, m = out.shape
        pos = 0
        while pos < n:
            user = first + pos
            b, r = divmod(user, size)
            take = min(size - r, n - pos)
            if r == 0 and take == size and kind in _FILL:
                _FILL[kind](self._generator(stream, b), out[pos : pos + size])
            else:
                out[pos : pos + take] = self._block(b, size, m, stream, kind)[r : r + take]
            pos += take

    def __getstate__(self) -> dict:
        return {"seed": self.seed}  # the block cache is not part of the state

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["seed"])


_FILL = {
    "normal": lambda gen, out: gen.standard_normal(out=out),
    "uniform": lambda gen, out: gen.random(out=out),
}


def _draw(gen: np.random.Generator, shape: tuple[int, int], kind: str) -> np.ndarray:
    if kind == "normal":
        return gen.standard_normal(shape)
    if kind == "uniform":
        return gen.random(shape)
    if kind == "laplace":
        return gen.laplace(0.0, 1.0, shape)
    raise ValueError(f"unknown kind {kind!r}")


class _SequentialSource:
    """Rows drawn in order from one generator (no per-user keying)."""

    def __init__(self, gen: np.random.Generator) -> None:
        self.gen = gen

    def draw(self, user_ids: Any, m: int, stream: int, kind: str = "normal") -> np.ndarray:
        return _draw(self.gen, (len(user_ids), m), kind)


class OSSource:
    """Uniforms from the operating system's CSPRNG (for the discrete mechanisms' coins)."""

    def draw(self, user_ids: Any, m: int, stream: int, kind: str = "uniform") -> np.ndarray:
        if kind != "uniform":
            raise ValueError("the OS source draws uniforms only")
        n = len(user_ids) * m
        words = np.frombuffer(os.urandom(8 * n), dtype=np.uint64)
        return ((words >> np.uint64(11)).astype(np.float64) * 2.0**-53).reshape(-1, m)


class PrivacyCheckError(RuntimeError):
    """OpenDP's privacy map of a measurement does not meet the budget the mechanism claims.

    Raised when the measurement is built, before any user's data is randomised.

    Examples
    --------
    >>> from sparsestat.privacy import PrivacyCheckError
    >>> issubclass(PrivacyCheckError, RuntimeError)
    True
    """


def sampler(noise_backend: str, simulation: bool) -> str:
    """The sampler a call uses: ``"opendp"`` (exact, fresh entropy) or ``"numpy"`` (simulation).

    Parameters
    ----------
    noise_backend : {"auto", "numpy", "opendp"}
        The mechanism's or estimator's setting.
    simulation : bool
        Whether the caller declared a simulation.

    Returns
    -------
    name : {"opendp", "numpy"}
        ``"auto"`` gives OpenDP for client reports and NumPy for simulations.

    Raises
    ------
    ValueError
        ``noise_backend="numpy"`` outside a simulation.

    Examples
    --------
    >>> from sparsestat.privacy.mechanisms import sampler
    >>> sampler("auto", simulation=False), sampler("auto", simulation=True)
    ('opendp', 'numpy')
    """
    if noise_backend not in BACKENDS:
        raise ValueError(f"noise_backend must be one of {BACKENDS}; got {noise_backend!r}")
    if noise_backend == "auto":
        return "numpy" if simulation else "opendp"
    if noise_backend == "numpy" and not simulation:
        raise ValueError(
            "noise_backend='numpy' is for simulations only: NumPy's samplers leave "
            "floating-point artefacts that can rule out neighbouring inputs (Mironov 2012), so "
            "their reports carry no formal guarantee. Client reports use OpenDP's exact "
            "samplers (noise_backend='auto' or 'opendp'); pass simulation=True to run a "
            "simulation knowingly"
        )
    return noise_backend


def make_source(random_state: Any, noise_backend: str, simulation: bool = False) -> Any:
    """The source of a call's random numbers (see the mechanisms' module notes).

    Parameters
    ----------
    random_state : None, int, Generator, RandomState or UserStreams
        Simulations only; a client report refuses anything but None.
    noise_backend : {"auto", "numpy", "opendp"}
        The mechanism's setting.
    simulation : bool, default=False
        Whether the caller declared a simulation.

    Returns
    -------
    source : object
        With ``draw(user_ids, m, stream, kind)``; an :class:`OSSource` for OpenDP.
    """
    if random_state is not None and not simulation:
        raise ValueError(
            "a client report draws fresh operating-system entropy on every call; a "
            f"random_state ({random_state!r}) would let whoever knows it regenerate and "
            "subtract the noise. Pass simulation=True to declare a simulation (its reports "
            "carry no formal guarantee), or leave random_state=None"
        )
    if sampler(noise_backend, simulation) == "opendp":
        if random_state is not None:
            raise ValueError(
                "noise_backend='opendp' draws fresh entropy only; random_state must be None"
            )
        return OSSource()
    if random_state is None:
        return _SequentialSource(np.random.default_rng())
    if isinstance(random_state, UserStreams):
        return random_state
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return UserStreams(int(random_state))
    if isinstance(random_state, np.random.Generator):
        return _SequentialSource(random_state)
    if isinstance(random_state, np.random.RandomState):
        words = random_state.randint(0, 2**32, size=4, dtype=np.uint64)
        return _SequentialSource(np.random.default_rng([int(w) for w in words]))
    raise TypeError(
        "random_state must be None, an int, a numpy Generator / RandomState or UserStreams; "
        f"got {type(random_state).__name__}"
    )


def opendp_available() -> bool:
    """Whether the optional ``opendp`` package can be imported.

    Returns
    -------
    available : bool
        True when client reports (OpenDP's exact samplers) can be made.

    Examples
    --------
    >>> from sparsestat.privacy import opendp_available
    >>> isinstance(opendp_available(), bool)
    True
    """
    try:
        import opendp.prelude  # noqa: F401
    except ImportError:
        return False
    return True


def load_opendp() -> Any:
    try:
        import opendp.prelude as dp
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "client reports use OpenDP's exact samplers, from the optional 'opendp' package: "
            "pip install 'sparsestat[opendp]' (or declare a simulation with simulation=True)"
        ) from exc
    dp.enable_features("contrib")
    return dp
