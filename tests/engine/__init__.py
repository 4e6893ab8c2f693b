"""Tests of the numba engine: kernels against their numpy references, validation, speed."""
