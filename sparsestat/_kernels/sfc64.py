"""NumPy's keyed normal streams inside Numba: SeedSequence, SFC64 and the Ziggurat, bit for bit.

``numpy.random.Generator(SFC64(SeedSequence(seed, spawn_key=key))).standard_normal(size)``
is reproduced here exactly, so that a compiled kernel can draw the noise of a stream where
it uses it, without materialising it, and still produce NumPy's own numbers:

* :func:`seed_state` hashes the assembled entropy with NumPy's ``SeedSequence`` algorithm
  (pool of four uint32 words, ``hashmix`` / ``mix``, then ``generate_state(3, uint64)``) and
  seeds SFC64 as NumPy does (the three words, counter 1, twelve discarded outputs);
* :func:`sfc64_next` is Chris Doty-Humphrey's SFC64 step as in NumPy's ``sfc64.h``;
* :func:`standard_normal` is NumPy's 256-layer Ziggurat (``random_standard_normal`` of
  ``distributions.c``), with NumPy's tables (read from Numba's copy of them), the tail
  branch and the wedge test included. The sign is applied by multiplying with +-1, which
  gives the same bits as negation and avoids an unpredictable branch (the reason this is
  about twice as fast per core as ``Generator.standard_normal``).

The generator state is four ``uint64`` scalars, passed in and returned, so that LLVM keeps
it in registers. Tests compare every function with NumPy on millions of draws (the tail and
wedge branches included) and across many keys.

These streams are for simulations with a known seed; they are not a cryptographic source.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numba import njit, uint32, uint64
from numba.np.random._constants import (
    fi_double,
    ki_double,
    wi_double,
    ziggurat_nor_inv_r,
    ziggurat_nor_r,
)

__all__ = [
    "assembled_entropy",
    "fill_standard_normal",
    "seed_state",
    "sfc64_next",
    "standard_normal",
]

_KI = np.ascontiguousarray(ki_double, dtype=np.uint64)
_WI = np.ascontiguousarray(wi_double, dtype=np.float64)
_FI = np.ascontiguousarray(fi_double, dtype=np.float64)
_NOR_R = float(ziggurat_nor_r)
_NOR_INV_R = float(ziggurat_nor_inv_r)

# SeedSequence constants (numpy/random/bit_generator.pyx)
_POOL = 4
_INIT_A = 0x43B0D7E5
_MULT_A = 0x931E8875
_INIT_B = 0x8B51F9DD
_MULT_B = 0x58F38DED
_MIX_MULT_L = 0xCA01F9DD
_MIX_MULT_R = 0x4973F715
_M32 = 0xFFFFFFFF


def _int_words(value: int) -> list[int]:
    """NumPy's ``_int_to_uint32_array``: little-endian 32-bit words, [0] for zero."""
    if value < 0:
        raise ValueError("seeds and keys must be non-negative")
    words = [] if value else [0]
    while value:
        words.append(value & _M32)
        value >>= 32
    return words


def _words(x: Any) -> list[int]:
    if isinstance(x, numbers.Integral) and not isinstance(x, bool):
        return _int_words(int(x))
    if isinstance(x, (list, tuple)):
        return [w for v in x for w in _words(v)]
    raise TypeError(f"seed must be a non-negative int or a sequence of them; got {x!r}")


def assembled_entropy(seed: Any, key_prefix: tuple[int, ...]) -> np.ndarray:
    """Entropy words of ``SeedSequence(seed, spawn_key=key_prefix + (block,))``, less the block.

    Parameters
    ----------
    seed : int or sequence of int
        The run entropy (non-negative).
    key_prefix : tuple of int
        The spawn key without its last element.

    Returns
    -------
    words : ndarray of uint32
        NumPy's assembled entropy: the seed's words, zero-padded to the pool size (as NumPy
        does when a spawn key is present), then the words of each key element. The block's
        words are appended by :func:`seed_state`.
    """
    run = _words(seed)
    run += [0] * max(0, _POOL - len(run))
    return np.array(run + _words(tuple(key_prefix)), dtype=np.uint32)


@njit(cache=True, nogil=True, inline="always")
def _hashmix(value: int, h: int) -> tuple[int, int]:  # pragma: no cover - compiled
    value = (value ^ h) & _M32
    h = (h * _MULT_A) & _M32
    value = (value * h) & _M32
    value ^= value >> 16
    return value, h


@njit(cache=True, nogil=True, inline="always")
def _mix(x: int, y: int) -> int:  # pragma: no cover - compiled
    r = (_MIX_MULT_L * x - _MIX_MULT_R * y) & _M32
    return r ^ (r >> 16)


@njit(cache=True, nogil=True, inline="always")
def sfc64_next(a: Any, b: Any, c: Any, w: Any) -> tuple[Any, Any, Any, Any, Any]:
    """One SFC64 output and the next state ``(out, a, b, c, w)`` (NumPy's ``sfc64_next``)."""
    out = a + b + w
    w += uint64(1)
    a = b ^ (b >> uint64(11))
    b = c + (c << uint64(3))
    c = ((c << uint64(24)) | (c >> uint64(40))) + out
    return out, a, b, c, w


@njit(cache=True, nogil=True)
def seed_state(prefix: Any, block: int) -> tuple[Any, Any, Any, Any]:  # pragma: no cover
    """SFC64 state of ``SFC64(SeedSequence(seed, spawn_key=(..., block)))``.

    ``prefix`` is :func:`assembled_entropy` (uint32 words); ``block`` (>= 0) is appended as
    NumPy appends an int key (one word below 2**32, two below 2**64).
    """
    n_block = 1 if block < 4294967296 else 2
    n = prefix.shape[0] + n_block
    ent = np.empty(n, np.int64)
    for i in range(prefix.shape[0]):
        ent[i] = np.int64(prefix[i])
    ent[prefix.shape[0]] = block & _M32
    if n_block == 2:
        ent[n - 1] = block >> 32
    pool = np.zeros(_POOL, np.int64)
    h = _INIT_A
    for i in range(_POOL):
        pool[i], h = _hashmix(ent[i] if i < n else 0, h)
    for i_src in range(_POOL):
        for i_dst in range(_POOL):
            if i_src != i_dst:
                hm, h = _hashmix(pool[i_src], h)
                pool[i_dst] = _mix(pool[i_dst], hm)
    for i_src in range(_POOL, n):
        for i_dst in range(_POOL):
            hm, h = _hashmix(ent[i_src], h)
            pool[i_dst] = _mix(pool[i_dst], hm)
    hb = _INIT_B
    words = np.empty(6, np.int64)
    for i in range(6):
        v = (pool[i % _POOL] ^ hb) & _M32
        hb = (hb * _MULT_B) & _M32
        v = (v * hb) & _M32
        words[i] = v ^ (v >> 16)
    a = uint64(uint32(words[0])) | (uint64(uint32(words[1])) << uint64(32))
    b = uint64(uint32(words[2])) | (uint64(uint32(words[3])) << uint64(32))
    c = uint64(uint32(words[4])) | (uint64(uint32(words[5])) << uint64(32))
    w = uint64(1)
    for _ in range(12):
        _, a, b, c, w = sfc64_next(a, b, c, w)
    return a, b, c, w


@njit(cache=True, nogil=True, inline="always")
def _uniform(u: Any) -> float:  # pragma: no cover - compiled
    """NumPy's ``next_double``: 53 bits of a uint64 output in [0, 1)."""
    return float(np.int64(u >> uint64(11))) * (1.0 / 9007199254740992.0)


@njit(cache=True, nogil=True, inline="always")
def standard_normal(a: Any, b: Any, c: Any, w: Any) -> tuple[float, Any, Any, Any, Any]:
    """One standard normal draw (NumPy's Ziggurat) and the next state ``(x, a, b, c, w)``."""
    while True:
        r, a, b, c, w = sfc64_next(a, b, c, w)
        idx = np.intp(r & uint64(0xFF))
        r >>= uint64(8)
        rabs = (r >> uint64(1)) & uint64(0x000FFFFFFFFFFFFF)
        # rabs < 2**52: the signed conversion is exact; * (+-1) equals negation bit for bit
        x = float(np.int64(rabs)) * _WI[idx] * (1.0 - 2.0 * float(np.int64(r & uint64(1))))
        if rabs < _KI[idx]:
            return x, a, b, c, w
        if idx == 0:  # the tail beyond r
            while True:
                u1, a, b, c, w = sfc64_next(a, b, c, w)
                u2, a, b, c, w = sfc64_next(a, b, c, w)
                xx = -_NOR_INV_R * np.log1p(-_uniform(u1))
                yy = -np.log1p(-_uniform(u2))
                if yy + yy > xx * xx:
                    if (rabs >> uint64(8)) & uint64(1):
                        return -(_NOR_R + xx), a, b, c, w
                    return _NOR_R + xx, a, b, c, w
        else:  # the wedge
            u, a, b, c, w = sfc64_next(a, b, c, w)
            if (_FI[idx - 1] - _FI[idx]) * _uniform(u) + _FI[idx] < np.exp(-0.5 * x * x):
                return x, a, b, c, w


@njit(cache=True, nogil=True)
def _fill_impl(prefix: Any, block: int, out: Any) -> None:  # pragma: no cover - compiled
    a, b, c, w = seed_state(prefix, block)
    for i in range(out.shape[0]):
        out[i], a, b, c, w = standard_normal(a, b, c, w)


def fill_standard_normal(seed: Any, key: tuple[int, ...], size: int) -> np.ndarray:
    """``Generator(SFC64(SeedSequence(seed, spawn_key=key))).standard_normal(size)``, compiled.

    Parameters
    ----------
    seed : int or sequence of int
        Run entropy.
    key : tuple of int
        Spawn key (at least one element; the last one is the block).
    size : int
        Number of draws.

    Returns
    -------
    z : ndarray of shape (size,)
        The same numbers as NumPy's generator. O(size).
    """
    if not key:
        raise ValueError("key must have at least one element")
    out = np.empty(int(size))
    _fill_impl(assembled_entropy(seed, tuple(key[:-1])), int(key[-1]), out)
    return out
