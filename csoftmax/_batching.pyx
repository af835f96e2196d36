# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Batch assembly: gather shuffled uint8 rows into a caller's float32 buffer, scaled.

Serial on purpose: the gather is memory-bound. csoftmax.data's iterators pass a fresh buffer per batch,
so batches a user keeps never change under them.
"""


def gather_scaled(const unsigned char[:, ::1] images, const long long[::1] rows, float scale,
                  float[:, ::1] out):
    """out[i, :] = images[rows[i], :] * scale for i < len(rows); returns the number of rows written.

    `out` must have at least len(rows) rows and the images' width; indices are checked.
    """
    cdef Py_ssize_t n = rows.shape[0], width = images.shape[1], count = images.shape[0]
    cdef Py_ssize_t i, j
    cdef long long r
    if out.shape[0] < n or out.shape[1] != width:
        raise ValueError(f"out: expected at least ({n}, {width}), got ({out.shape[0]}, {out.shape[1]})")
    for i in range(n):
        r = rows[i]
        if r < 0 or r >= count:
            raise IndexError(f"rows: index {r} at position {i} is outside [0, {count})")
    with nogil:
        for i in range(n):
            r = rows[i]
            for j in range(width):
                out[i, j] = images[r, j] * scale
    return n
