"""Launch configuration shared by every 1-D CUDA kernel of the package.

Kept free of ``numba.cuda`` so that the kernel modules can import it without loading (or
compiling) anything: ``_fixed_cuda`` is imported on first use of ``backend="cuda"``.
"""
from __future__ import annotations

#: Most threads per block of a launch (a multiple of the 32-thread warp).
THREADS_PER_BLOCK = 256
_WARP = 32


def launch_config(n: int) -> tuple[int, int]:
    """``(blocks, threads)`` of a launch with one thread per item, ``n >= 0`` items.

    ``threads`` is ``THREADS_PER_BLOCK``, or fewer (whole warps) when ``n`` needs less than one
    block; ``blocks * threads >= n`` and ``blocks >= 1`` (the kernels return for ``i >= n``).
    """
    threads = min(THREADS_PER_BLOCK, _WARP * max(1, -(-n // _WARP)))
    return max(1, -(-n // threads)), threads
