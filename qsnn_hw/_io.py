"""Atomic file output: a crash or Ctrl-C never leaves a half-written file behind, and a
user's existing file is replaced only by a complete new one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _temp_beside(path: Path, data: bytes) -> str:
    """Write ``data`` to a new temporary file in ``path``'s directory (created if needed),
    fsynced, with the permissions a plain open() would give; return its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; give the file the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename over ``path``."""
    return atomic_write_together([(path, data)])[0]


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_together(files) -> list[Path]:
    """Write several ``(path, bytes)`` files as one set whose last file marks it complete.

    Every file is first written to a temporary file beside it (a failure there touches
    nothing); then the last file's old version is removed and the files are renamed over
    their targets in order. Renames of several files cannot be one atomic step, so a crash
    in that window (a few renames) can leave the earlier files without the last one: an
    incomplete set, recognizable as such, but never the last file beside files from
    another write."""
    files = [(Path(p), data) for p, data in files]
    temps: list[str] = []
    try:
        for path, data in files:
            temps.append(_temp_beside(path, data))
        if len(files) > 1:   # one file alone is simply renamed over its old version
            with contextlib.suppress(FileNotFoundError):
                os.unlink(files[-1][0])
        for tmp, (path, _) in zip(temps, files, strict=True):
            os.replace(tmp, path)
    finally:   # the temporary files not renamed (after an error or Ctrl-C)
        for tmp in temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
    return [path for path, _ in files]


def run_in_group(cmd, **kwargs) -> int:
    """``subprocess`` ``cmd`` in a session (process group) of its own; returns its exit
    status. On any exception in the waiting process (Ctrl-C, SIGTERM made an exception by
    :func:`qsnn_hw.cli.main`), the whole group -- the tools the command started, too --
    is terminated (killed after 5 s) before the exception goes on, so nothing keeps
    running in a directory about to be removed."""
    import os
    import signal
    import subprocess

    proc = subprocess.Popen(cmd, start_new_session=True, **kwargs)
    try:
        return proc.wait()
    except BaseException:
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, None)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        raise


@contextlib.contextmanager
def signals_deferred():
    """Ctrl-C and SIGTERM wait until the body is done: for a write that must not be cut
    in two, such as one frame to a board. While it runs, the two signals are only noted
    (Python runs signal handlers in the main thread, whichever thread the signal reached:
    a signal mask would not do, BLAS threads would take the signal); at its end the
    previous handlers are back and a noted signal is raised again for them. A no-op off
    the main thread, where handlers cannot be set."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted = []
    sigs = (signal.SIGINT, signal.SIGTERM)
    old = {sig: signal.signal(sig, lambda signum, frame: noted.append(signum))
           for sig in sigs}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        if noted:
            signal.raise_signal(noted[0])
