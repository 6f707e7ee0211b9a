"""The output checks every command that writes a directory runs before any work, so a
mistake in ``--out`` costs a second, not an epoch or a build, and nothing of the user's
is replaced without ``--force``: the path is a directory (or can become one), it is
writable, and it does not already hold this command's outputs."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from ..errors import UserError


def add_force(p, what: str) -> None:
    """Add ``--force`` to the parser ``p``; ``what`` names the outputs it replaces."""
    p.add_argument("--force", action="store_true",
                   help=f"replace {what} already in --out (refused otherwise)")


def check_out(out, *, outputs=(), force: bool = False, flag: str = "--out",
              hint: str = "--force to replace them", replaces_dir: bool = False) -> Path:
    """Check the output directory ``out`` (named ``flag`` in messages) and return it.

    ``outputs``: paths inside ``out`` that mark an earlier run of the command; any of them
    present is refused unless ``force`` (``hint`` says what to do). ``replaces_dir``: the
    command swaps the whole directory for a new one (synth's builds), so a non-empty
    directory without those outputs is the user's and refused even with ``force``."""
    out = Path(out)
    _no_file_in_the_way(out, flag)
    _check_writable(out.parent if replaces_dir else out, out, flag)
    found = [name for name in outputs if (out / name).exists()]
    if found and not force:
        raise UserError(f"{flag} {out} already holds {', '.join(found)}; give {hint}, or "
                        f"another {flag}")
    if replaces_dir and not found and out.is_dir() and any(out.iterdir()):
        raise UserError(f"{flag} {out} is a non-empty directory without "
                        f"{' or '.join(outputs)}: not an earlier qsnn-hw output, so it is "
                        f"not replaced (not even with --force); give a new or empty {flag}")
    return out


def check_out_file(out, *, force: bool = False, flag: str = "--out") -> Path:
    """Check an output *file* before any work: its directory exists (or can be made) and
    is writable; an existing directory there is refused; an existing file only with
    ``force``."""
    out = Path(out)
    if out.is_dir():
        raise UserError(f"{flag} {out} is a directory; give a file path")
    _no_file_in_the_way(out.parent, flag)
    _check_writable(out.parent, out, flag)
    if out.exists() and not force:
        raise UserError(f"{flag} {out} already exists; give --force to replace it, or "
                        f"another {flag}")
    return out


def _existing_ancestor(path: Path) -> Path:
    """``path`` itself if it exists, else its nearest existing ancestor."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _no_file_in_the_way(out: Path, flag: str) -> None:
    """``out`` and the directories above it must be directories where they exist."""
    found = _existing_ancestor(out)
    if not found.is_dir():
        where = "is a file" if found == Path(os.path.abspath(out)) else f"is under the file {found}"
        raise UserError(f"{flag} {out} {where}, not a directory; give a directory path "
                        f"(nothing was written)")


def _check_writable(target: Path, out: Path, flag: str) -> None:
    """Create and remove a temporary file where ``target`` (or its nearest existing
    ancestor, in which it would be created) lives: permissions, read-only mounts and
    quotas all show up here instead of after the work."""
    where = _existing_ancestor(target)
    try:
        fd, probe = tempfile.mkstemp(prefix=".qsnn-hw-probe-", dir=where)
    except OSError as exc:
        raise UserError(f"{flag} {out}: cannot write in {where} ({exc.strerror}); give a "
                        f"writable {flag}") from None
    os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(probe)


@contextlib.contextmanager
def replacing(out: Path, names):
    """Run the body as a new run writing ``names`` (files or directories, relative to
    ``out``) and leave ``out`` as it found it unless the body finishes.

    An earlier run's ``names`` are first moved into a hidden directory in ``out`` (a
    rename: no copy). If the body raises -- an error, Ctrl-C, SIGTERM -- whatever it wrote
    under ``names`` is removed and the earlier files are moved back; directories it
    created are removed when left empty. If it finishes, the earlier files are deleted."""
    import shutil

    out = Path(out)
    made = {d for n in names for d in (out / n, *(out / n).parents) if not d.exists()}
    aside = out / f".previous-{os.getpid()}"
    moved = []
    try:
        for name in names:
            if (out / name).exists() or (out / name).is_symlink():
                (aside / name).parent.mkdir(parents=True, exist_ok=True)
                os.replace(out / name, aside / name)
                moved.append(name)
        yield out
    except BaseException:
        for name in names:
            _remove(out / name)
        for name in moved:
            os.replace(aside / name, out / name)
        shutil.rmtree(aside, ignore_errors=True)
        for d in sorted(made, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                d.rmdir()                       # only if empty
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _remove(path: Path) -> None:
    import shutil
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
