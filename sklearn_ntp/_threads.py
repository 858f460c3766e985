"""Thread limits around BLAS kernels too small to gain from several threads.

Small products and factorizations are dominated by thread start-up and
synchronization; on a machine whose cores are busy (joblib workers, CI) extra
BLAS threads then cost far more than they save.
"""

from contextlib import nullcontext

from threadpoolctl import threadpool_limits

#: Floating-point operations per kernel below which one BLAS thread is used.
SMALL_KERNEL_FLOPS = 5e7


def kernel_threads(flops):
    """Context manager: one BLAS/OpenMP thread if a kernel costs fewer than ``flops``."""
    if flops < SMALL_KERNEL_FLOPS:
        return threadpool_limits(limits=1)
    return nullcontext()
