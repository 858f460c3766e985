"""Thread limits around BLAS kernels too small to gain from several threads.

Small products and factorizations are dominated by thread start-up and
synchronization; on a machine whose cores are busy (joblib workers, CI) extra
BLAS threads then cost far more than they save.
"""

from contextlib import nullcontext

from threadpoolctl import threadpool_limits

#: Floating-point operations per kernel below which one BLAS thread is used.
#: Measured on 2 cores with one kept busy: a 1000 x 1000 Cholesky (3e8 flops)
#: takes 0.1 s on one thread and several seconds on two.
SMALL_KERNEL_FLOPS = 1e9


def kernel_threads(flops):
    """Context manager: one BLAS/OpenMP thread if a kernel costs fewer than ``flops``."""
    if flops < SMALL_KERNEL_FLOPS:
        return threadpool_limits(limits=1)
    return nullcontext()
