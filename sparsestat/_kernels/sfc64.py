"""NumPy's keyed normal streams inside Numba: SeedSequence, SFC64 and the Ziggurat, bit for bit.

``numpy.random.Generator(SFC64(SeedSequence(seed, spawn_key=key))).standard_normal(size)``
is reproduced here exactly, so that a compiled kernel can draw the noise of a stream where
it uses it, without materialising it, and still produce NumPy's own numbers:

* :func:`seed_states` hashes the assembled entropy with NumPy's ``SeedSequence`` algorithm
  (pool of four uint32 words, ``hashmix`` / ``mix``, then ``generate_state(3, uint64)``) and
  seeds SFC64 as NumPy does (the three words, counter 1, twelve discarded outputs);
* the SFC64 step (Chris Doty-Humphrey's) is NumPy's ``sfc64_next`` of ``sfc64.h``;
* :func:`fill_normals` runs NumPy's 256-layer Ziggurat (``random_standard_normal`` of
  ``distributions.c``), with NumPy's tables (read from Numba's copy of them), the tail
  branch and the wedge test included. The sign bit selects the layer width ``+wi`` or
  ``-wi`` from a table, which gives the same bits as NumPy's negation without its
  unpredictable branch; with the SFC64 step written out in the loop and the state kept in
  four ``uint64`` scalars (registers), this draws two to three times as many normals per
  second and core as ``Generator.standard_normal``.

Tests compare every function with NumPy on millions of draws (the tail and wedge branches
included) and across many keys, seeds and key lengths.

These streams are for simulations with a known seed; they are not a cryptographic source.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numba import njit, uint64
from numba.np.random._constants import (
    fi_double,
    ki_double,
    wi_double,
    ziggurat_nor_inv_r,
    ziggurat_nor_r,
)

__all__ = [
    "assembled_entropy",
    "fill_normals",
    "fill_standard_normal",
    "seed_states",
]

_KI = np.ascontiguousarray(ki_double, dtype=np.uint64)
_WI = np.ascontiguousarray(wi_double, dtype=np.float64)
_FI = np.ascontiguousarray(fi_double, dtype=np.float64)
_SWI = np.concatenate([_WI, -_WI])  # layer width indexed by sign bit * 256 + layer
_NOR_R = float(ziggurat_nor_r)
_NOR_INV_R = float(ziggurat_nor_inv_r)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53

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


def seed_states(seed: Any, key_prefix: tuple[int, ...], blocks: Any) -> np.ndarray:
    """SFC64 states of ``SFC64(SeedSequence(seed, spawn_key=key_prefix + (b,)))`` for many b.

    Parameters
    ----------
    seed : int or sequence of int
        The run entropy (non-negative).
    key_prefix : tuple of int
        The spawn key without its last element.
    blocks : array-like of int, shape (n,)
        The last key element of each state (non-negative, below 2**64).

    Returns
    -------
    states : ndarray of shape (n, 4), uint64
        ``(a, b, c, counter)`` of each generator after NumPy's seeding, for
        :func:`fill_normals`.

    Notes
    -----
    NumPy's SeedSequence (pool of four uint32 words; ``hashmix`` of each entropy word, each
    pool word mixed into every other one, then the remaining entropy words into every pool
    word; ``generate_state(3, uint64)``) and ``sfc64_set_seed`` (three words, counter 1,
    twelve discarded outputs), vectorised over the blocks in uint64 arithmetic: products of
    32-bit words are exact and masked to 32 bits, and the wrapping subtraction keeps the low
    32 bits right. O(n (len(entropy) + 12)).
    """
    blocks = np.asarray(blocks, dtype=np.uint64).reshape(-1)
    prefix = [int(v) for v in assembled_entropy(seed, tuple(key_prefix))]
    states = np.empty((blocks.size, 4), np.uint64)
    wide = blocks >= np.uint64(1 << 32)  # such keys take two words, as in NumPy
    for rows in (np.flatnonzero(~wide), np.flatnonzero(wide)):
        if rows.size:
            states[rows] = _seed_group(prefix, blocks[rows])
    return states


def _seed_group(prefix: list[int], blocks: np.ndarray) -> np.ndarray:
    m32 = np.uint64(_M32)
    ent = [np.full(blocks.size, v, np.uint64) for v in prefix] + [blocks & m32]
    if blocks.size and int(blocks[0]) >> 32:
        ent.append(blocks >> np.uint64(32))
    h = _INIT_A

    def hashmix(value: np.ndarray) -> np.ndarray:
        nonlocal h
        value = (value ^ np.uint64(h)) & m32
        h = (h * _MULT_A) & _M32
        value = (value * np.uint64(h)) & m32
        return value ^ (value >> np.uint64(16))

    def mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        r = (np.uint64(_MIX_MULT_L) * x - np.uint64(_MIX_MULT_R) * y) & m32
        return r ^ (r >> np.uint64(16))

    pool = [hashmix(ent[i]) for i in range(_POOL)]  # the entropy has at least _POOL words
    for i_src in range(_POOL):
        for i_dst in range(_POOL):
            if i_src != i_dst:
                pool[i_dst] = mix(pool[i_dst], hashmix(pool[i_src]))
    for i_src in range(_POOL, len(ent)):
        for i_dst in range(_POOL):
            pool[i_dst] = mix(pool[i_dst], hashmix(ent[i_src]))
    hb = _INIT_B
    words = []
    for i in range(6):
        v = (pool[i % _POOL] ^ np.uint64(hb)) & m32
        hb = (hb * _MULT_B) & _M32
        v = (v * np.uint64(hb)) & m32
        words.append(v ^ (v >> np.uint64(16)))
    s32 = np.uint64(32)
    a, b, c = (words[2 * j] | (words[2 * j + 1] << s32) for j in range(3))
    w = np.ones(blocks.size, np.uint64)
    for _ in range(12):  # sfc64_set_seed discards twelve outputs
        out = a + b + w
        w = w + np.uint64(1)
        a = b ^ (b >> np.uint64(11))
        b = c + (c << np.uint64(3))
        c = ((c << np.uint64(24)) | (c >> np.uint64(40))) + out
    return np.stack([a, b, c, w], axis=1)


@njit(nogil=True, inline="always")
def _uniform(a: Any, b: Any, c: Any, w: Any) -> tuple[float, Any, Any, Any, Any]:
    """One SFC64 step as NumPy's ``next_double``: top 53 bits of the output times 2**-53.

    Only the Ziggurat's rare branches call it; the common one has the step written out.
    """  # pragma: no cover - compiled
    out = a + b + w
    w += uint64(1)
    a = b ^ (b >> uint64(11))
    b = c + (c << uint64(3))
    c = ((c << uint64(24)) | (c >> uint64(40))) + out
    return float(np.int64(out >> uint64(11))) * _TO_UNIT, a, b, c, w


@njit(cache=True, nogil=True)
def fill_normals(out: Any, a: Any, b: Any, c: Any, w: Any) -> tuple[Any, Any, Any, Any]:
    """Fill ``out`` with standard normal draws (NumPy's Ziggurat) and return the next state.

    The SFC64 step (NumPy's ``sfc64_next``) is written out in the loop. Rectangle test
    (99.3% of the draws): bits 0-7 pick the layer, bit 8 the sign (a table holds ``+wi``
    then ``-wi``, and ``rabs * (-wi)`` is ``-(rabs * wi)`` bit for bit), bits 9-60 give
    ``rabs < 2**52`` (so its conversion to float is exact). Otherwise NumPy's tail (layer 0,
    two uniforms per try until one is accepted) or wedge test (one uniform; on rejection a
    new output).
    """  # pragma: no cover - compiled
    for i in range(out.shape[0]):
        while True:
            r = a + b + w
            w += uint64(1)
            a = b ^ (b >> uint64(11))
            b = c + (c << uint64(3))
            c = ((c << uint64(24)) | (c >> uint64(40))) + r
            idx = np.intp(r & uint64(0xFF))
            rabs = (r >> uint64(9)) & uint64(0x000FFFFFFFFFFFFF)
            x = float(np.int64(rabs)) * _SWI[np.intp(r & uint64(0x1FF))]
            if rabs < _KI[idx]:
                break
            if idx == 0:  # the tail beyond r
                while True:
                    u1, a, b, c, w = _uniform(a, b, c, w)
                    u2, a, b, c, w = _uniform(a, b, c, w)
                    xx = -_NOR_INV_R * np.log1p(-u1)
                    yy = -np.log1p(-u2)
                    if yy + yy > xx * xx:
                        break
                # NumPy takes the tail's sign from bit 8 of rabs
                x = -(_NOR_R + xx) if (rabs >> uint64(8)) & uint64(1) else _NOR_R + xx
                break
            u, a, b, c, w = _uniform(a, b, c, w)  # the wedge
            if (_FI[idx - 1] - _FI[idx]) * u + _FI[idx] < np.exp(-0.5 * x * x):
                break
        out[i] = x
    return a, b, c, w


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
    fill_normals(out, *seed_states(seed, tuple(key[:-1]), [key[-1]])[0])
    return out
