"""Numeric kernels: the only place with inner loops (Numba, CuPy, array-API code).

Every kernel has a generic implementation written against the array API standard, which
runs on NumPy, CuPy and PyTorch alike. Faster versions for one array library are registered
beside it with :func:`~sparsestat._kernels._dispatch.register`, and
:func:`~sparsestat._kernels._dispatch.get_kernel` picks one from the input arrays.
"""
