"""The compiled keyed streams reproduce NumPy's SeedSequence, SFC64 and Ziggurat bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from sparsestat._kernels.sfc64 import (
    assembled_entropy,
    fill_normals,
    fill_standard_normal,
    seed_states,
)

# the Ziggurat's tail starts at r: only the tail branch produces |x| > r
_ZIGGURAT_R = 3.6541528853610088


def _numpy_generator(seed, key):
    return np.random.Generator(np.random.SFC64(np.random.SeedSequence(seed, spawn_key=key)))


@pytest.mark.parametrize(
    ("seed", "key"),
    [
        (0, (0, 0)),
        (42, (1, 5)),
        (2**64 + 12345, (0, 7)),  # a seed of three 32-bit words
        ([3, 1, 4, 1, 5, 9, 2], (2, 3)),  # more entropy words than the pool holds
        (7, (0, 2**32 + 3)),  # a block id of two words
        (11, (4,)),
        (5, (3, 4, 9)),
    ],
)
def test_seed_state_equals_numpy(seed, key):
    expected = np.random.SFC64(np.random.SeedSequence(seed, spawn_key=key)).state["state"]
    state = seed_states(seed, key[:-1], [key[-1]])
    np.testing.assert_array_equal(state[0], expected["state"])


def test_seed_states_vectorised_over_blocks_of_one_and_two_words():
    blocks = [0, 1, 2**32 - 1, 2**32, 5, 2**40 + 9, 77]
    states = seed_states(12, (3,), blocks)
    for b, st in zip(blocks, states):
        ref = np.random.SFC64(np.random.SeedSequence(12, spawn_key=(3, b))).state["state"]
        np.testing.assert_array_equal(st, ref["state"])
    assert seed_states(12, (3,), []).shape == (0, 4)


def test_normals_equal_numpy_including_tail_and_wedge():
    n = 2_000_000
    z = fill_standard_normal(123, (0, 17), n)
    ref = _numpy_generator(123, (0, 17)).standard_normal(n)
    # the tail branch was taken (hundreds of times); the wedge branch runs ~100x more often
    assert np.sum(np.abs(ref) > _ZIGGURAT_R) > 100
    assert np.abs(ref).max() < 14.0  # the a-priori bound the fused sums rely on
    np.testing.assert_array_equal(z, ref)


def test_many_keys_and_state_continuation():
    for block in range(0, 3000, 37):
        z = fill_standard_normal(99, (1, block), 50)
        np.testing.assert_array_equal(z, _numpy_generator(99, (1, block)).standard_normal(50))
    # the returned state continues the stream exactly
    state = seed_states(8, (2,), [6])[0]
    first, second = np.empty(333), np.empty(1000)
    state = [np.uint64(s) for s in fill_normals(first, *state)]
    fill_normals(second, *state)
    ref = _numpy_generator(8, (2, 6)).standard_normal(1333)
    np.testing.assert_array_equal(np.concatenate([first, second]), ref)


def test_bad_seeds_are_refused():
    with pytest.raises(ValueError, match="non-negative"):
        assembled_entropy(-1, (0,))
    with pytest.raises(TypeError):
        assembled_entropy(1.5, (0,))
    with pytest.raises(TypeError):
        assembled_entropy(True, (0,))
    with pytest.raises(ValueError, match="key"):
        fill_standard_normal(0, (), 3)
