"""fpga.int_ops against exact-rational formulas (Python ints and Fractions), element by element:
half-up rounding at exact ties, s = 0, saturation on both sides."""
from fractions import Fraction
import math

import numpy as np
import pytest

from fpga import int_ops as ops


def ref_rshift(v: int, s: int) -> int:
    # round(v / 2^s) with ties toward +infinity, as an exact rational
    return v if s == 0 else math.floor(Fraction(v, 2 ** s) + Fraction(1, 2))


def ref_clip8(v: int) -> int:
    return min(max(v, -128), 127)


def test_rshift_ties_zero_shift_and_large():
    vals, shifts = [], []
    for s in range(0, 32):
        for k in (-5, -1, 0, 1, 4):
            for off in (-1, 0, 1):
                v = k * 2 ** s + (2 ** (s - 1) if s else 0) + off     # exact ties and neighbours
                if -2 ** 31 <= v < 2 ** 31:
                    vals.append(v)
                    shifts.append(s)
    vals += [2 ** 31 - 1, -2 ** 31, -3, -2, 2, 3]
    shifts += [31, 31, 1, 1, 1, 1]
    got = ops.rshift(np.array(vals, np.int64), np.array(shifts, np.int64))
    assert got.dtype == np.int32
    want = [ref_rshift(v, s) for v, s in zip(vals, shifts)]
    assert got.tolist() == want
    # a tie goes up for both signs: -3/2 -> -1, 3/2 -> 2, -1/2 -> 0
    assert ops.rshift(np.array([-3, 3, -1]), np.array([1, 1, 1])).tolist() == [-1, 2, 0]


def test_rshift_rejects_bad_shift():
    with pytest.raises(ValueError):
        ops.rshift(np.array([1]), np.array([32]))
    with pytest.raises(ValueError):
        ops.rshift(np.array([1]), np.array([-1]))


def test_clip8_relu8_add8():
    v = np.array([-100000, -129, -128, -127, -1, 0, 1, 126, 127, 128, 99999])
    assert ops.clip8(v).dtype == np.int8
    assert ops.clip8(v).tolist() == [ref_clip8(int(a)) for a in v]
    codes = np.arange(-128, 128, dtype=np.int8)
    assert ops.relu8(codes).tolist() == [max(int(a), 0) for a in codes]
    a, b = np.meshgrid(codes, codes[::5])
    got = ops.add8(a, b)
    assert got.dtype == np.int8
    assert got.tolist() == [[ref_clip8(int(p) + int(q)) for p, q in zip(ra, rb)] for ra, rb in zip(a, b)]


def _ref_linear(x, W, b, s):
    T, I = x.shape
    O = W.shape[0]
    return [[ref_clip8(ref_rshift(sum(int(x[t, i]) * int(W[o, i]) for i in range(I)), int(s[o]))
                       + int(b[o])) for o in range(O)] for t in range(T)]


def test_linear_random_and_saturating():
    rng = np.random.default_rng(0)
    for trial in range(4):
        T, I, O = 5, 13, 7
        x = rng.integers(-128, 128, size=(T, I)).astype(np.int8)
        W = rng.integers(-128, 128, size=(O, I)).astype(np.int8)
        b = rng.integers(-128, 128, size=O).astype(np.int8)
        s = rng.integers(0, 14, size=O)
        s[0] = 0                                # no shift: saturates nearly everywhere
        got = ops.linear(x, W, b, s)
        assert got.dtype == np.int8
        assert got.tolist() == _ref_linear(x, W, b, s)
    # extremes: all -128 inputs and weights, 96 wide -> the accumulator's largest value
    x = np.full((2, 96), -128, np.int8)
    W = np.full((3, 96), -128, np.int8)
    got = ops.linear(x, W, np.array([0, 5, -128], np.int8), np.array([0, 31, 21]))
    assert got.tolist() == _ref_linear(x, W, [0, 5, -128], [0, 31, 21])
    # batched leading axes equal the per-image result
    xb = rng.integers(-128, 128, size=(3, 4, 6)).astype(np.int8)
    Wb = rng.integers(-128, 128, size=(5, 6)).astype(np.int8)
    bb = rng.integers(-10, 10, size=5).astype(np.int8)
    sb = rng.integers(0, 10, size=5)
    full = ops.linear(xb, Wb, bb, sb)
    for n in range(3):
        assert full[n].tolist() == _ref_linear(xb[n], Wb, bb, sb)


def test_linear_ties_round_up():
    # two-input rows whose accumulators are odd multiples of 2^(s-1): exact ties for every s
    x = np.array([[1, 1]], np.int64)
    for s in range(1, 8):
        h = 2 ** (s - 1)
        accs = [-3 * h, -h, h, 3 * h]
        W = np.array([[a // 2, a - a // 2] for a in accs], np.int64)   # each row sums to acc
        got = ops.linear(x, W, np.zeros(4, np.int64), np.full(4, s))
        assert got[0].tolist() == [ref_clip8(ref_rshift(a, s)) for a in accs]
        if s == 1:
            assert got[0].tolist() == [-1, 0, 1, 2]


def test_affine():
    rng = np.random.default_rng(1)
    T, C = 6, 9
    x = rng.integers(-128, 128, size=(T, C)).astype(np.int8)
    w = rng.integers(-128, 128, size=C).astype(np.int8)
    b = rng.integers(-128, 128, size=C).astype(np.int8)
    s = rng.integers(0, 9, size=C)
    s[:2] = 0
    got = ops.affine(x, w, b, s)
    assert got.dtype == np.int8
    want = [[ref_clip8(ref_rshift(int(x[t, c]) * int(w[c]), int(s[c])) + int(b[c]))
             for c in range(C)] for t in range(T)]
    assert got.tolist() == want
    # ties: x * w = +-2^(s-1) exactly
    x = np.array([[1, -1, 3, -3]], np.int8)
    w = np.array([4, 4, 4, 4], np.int8)
    assert ops.affine(x, w, np.zeros(4, np.int8), np.full(4, 3)).tolist() == \
        [[ref_rshift(4, 3), ref_rshift(-4, 3), ref_rshift(12, 3), ref_rshift(-12, 3)]]


def test_lerp8_every_code_against_rationals():
    rng = np.random.default_rng(2)
    C = 3
    lut = rng.integers(-128, 128, size=(C, 65)).astype(np.int8)
    lut[0] = np.linspace(-128, 127, 65).round().astype(np.int8)     # monotone
    lut[1, :] = 127
    lut[1, ::2] = -128                                              # extreme swings
    codes = np.arange(-128, 128)
    x = np.stack([codes] * C, axis=1).astype(np.int8)               # (256, C)
    got = ops.lerp8(x, lut)
    assert got.dtype == np.int8
    for c in range(C):
        for n, v in enumerate(codes):
            idx = int(v) + 128
            hi, lo = idx // 4, idx % 4
            y0, y1 = int(lut[c, hi]), int(lut[c, hi + 1])
            want = y0 + math.floor(Fraction((y1 - y0) * lo, 4) + Fraction(1, 2))
            assert min(y0, y1) <= want <= max(y0, y1)
            assert int(got[n, c]) == want
    # the top code uses entry 64 (no read past the table)
    assert int(ops.lerp8(np.array([[127]], np.int8), np.array([[0] * 64 + [100]], np.int8))[0, 0]) == 75


def test_mean_pool():
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, size=(2, 64, 5)).astype(np.int8)
    x[0, :, 0] = -128
    x[0, :, 1] = 127
    x[1, :, 2] = 0
    x[1, 0, 2] = 32                             # sum 32 = 0.5 * 64: a tie, rounds up to 1
    x[1, 1:3, 3] = (-16, -16)                   # sum -32: a tie, rounds up to 0
    x[1, 3:, 3] = 0
    x[1, 0, 3] = 0
    got = ops.mean_pool(x)
    assert got.dtype == np.int8
    want = [[math.floor(Fraction(int(x[n, :, c].astype(int).sum()), 64) + Fraction(1, 2))
             for c in range(5)] for n in range(2)]
    assert got.tolist() == want
    assert got[0, 0] == -128 and got[0, 1] == 127 and got[1, 2] == 1 and got[1, 3] == 0


def test_blas_and_int64_dot_products_agree():
    # the default float64-BLAS product is an exact integer dot product: compare with int64
    rng = np.random.default_rng(4)
    x = rng.integers(-128, 128, size=(3, 64, 192))
    W = rng.integers(-128, 128, size=(96, 192))
    x[0, 0] = -128
    W[0] = -128                                   # the largest accumulator: 192 * 2^14
    assert np.array_equal(ops.matmul_int(x, W), ops.matmul_int(x, W, int64_matmul=True))
    assert int(ops.matmul_int(x, W)[0, 0, 0]) == 192 * 128 * 128
    b = rng.integers(-128, 128, size=96)
    s = rng.integers(0, 20, size=96)
    assert np.array_equal(ops.linear(x, W, b, s), ops.linear(x, W, b, s, int64_matmul=True))
