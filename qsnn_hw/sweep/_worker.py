"""Process-pool worker setup. Kept free of NumPy imports so the environment is set before
BLAS loads in a fresh (spawned) worker."""

import os

BLAS_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
            "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def init_worker() -> None:
    """One BLAS thread per worker: N workers on N cores must not start N*N threads."""
    for name in BLAS_ENV:
        os.environ[name] = "1"


def init_pool_worker(scratch: str) -> None:
    """A local pool's worker: one BLAS thread; temporary files under ``scratch`` (the
    parent removes it); Ctrl-C is the parent's to handle -- it stops the workers -- so a
    terminal's SIGINT does not also break every worker with a traceback of its own."""
    import signal
    import tempfile

    init_worker()
    tempfile.tempdir = scratch
    signal.signal(signal.SIGINT, signal.SIG_IGN)
