#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the .npy fixtures of tests/unit with NumPy itself.

The C++ unit tests read these files and compare them with values computed in C++ from the
same formulas, so they check that our reader understands what numpy.save() writes (and
refuses what it should refuse). Run it again only if a fixture must change:

    /usr/bin/python3 scripts/make_npy_fixture.py
"""
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "unit", "fixtures")


def main():
    os.makedirs(OUT, exist_ok=True)

    def path(name):
        return os.path.join(OUT, name)

    # f32: element i = 0.5 * i, shape (2, 3, 4).
    np.save(path("arange_f32.npy"), (np.arange(24, dtype=np.float32) * np.float32(0.5)).reshape(2, 3, 4))
    # i32: element i = 7 - 3 * i, shape (3, 2) (negative values check the sign handling).
    np.save(path("affine_i32.npy"), (7 - 3 * np.arange(6, dtype=np.int32)).reshape(3, 2))
    # 1-D int32 0..4 (the shape tuple "(5,)" needs its trailing comma).
    np.save(path("line_i32.npy"), np.arange(5, dtype=np.int32))
    # A 0-d float32 scalar 3.25 and an empty (0, 3) int32 array.
    np.save(path("scalar_f32.npy"), np.array(3.25, dtype=np.float32))
    np.save(path("empty_i32.npy"), np.zeros((0, 3), dtype=np.int32))
    # Format version 2.0 (uint32 header length): element i = 0.25 * i - 1, shape (5,).
    with open(path("v2_f32.npy"), "wb") as f:
        a = np.arange(5, dtype=np.float32) * np.float32(0.25) - np.float32(1.0)
        np.lib.format.write_array(f, a, version=(2, 0))
    # Files our reader must refuse: float64, Fortran order.
    np.save(path("bad_f64.npy"), np.arange(4, dtype=np.float64))
    np.save(path("bad_fortran_f32.npy"), np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))


if __name__ == "__main__":
    main()
