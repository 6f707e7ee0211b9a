"""Progress of long work (training, sweeps, simulations, builds) on stderr, drawn by tqdm.

Every command that can take more than a few seconds reports through this module, so all
of them look alike and one switch silences them: :func:`set_quiet` (the CLI's
``--quiet``; errors and final summaries are not progress and still print).

Where the bars go:

* a terminal: tqdm's bars, redrawn in place (at most ~10 times a second), with elapsed
  time and, when the total is known, the remaining time;
* a notebook (Jupyter): tqdm's notebook widgets (``tqdm.auto``);
* anything else (a log file, a pipe, CI): plain lines, never carriage returns -- one
  when a bar starts, then at most one per bar every :func:`interval` seconds (default
  30) while it moves, one at each milestone (a stage that changes, a bar that ends) --
  so a log shows where the work is without hundreds of redraws.

:func:`bar` makes a bar (a :class:`Bar`: counts, ETA, the current stage), :func:`line`
prints a message between bars (:func:`echo` a result, printed even when quiet) and
:func:`stage` brackets one step of a longer pipeline
with a start line and an end line with its elapsed time.
"""

from __future__ import annotations

import abc
import contextlib
import re
import sys
import threading
import time
import weakref

from tqdm import tqdm as _std_tqdm

_settings = {"quiet": False, "interval": 30.0}
STDERR = object()   # a default ``stream``: sys.stderr as it is when the output is written
TTY_REFRESH = 1.0       # a terminal's bars: the elapsed time moves at least this often
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def set_quiet(flag: bool) -> bool:
    """Silence (True) or show (False) all progress; returns the previous setting."""
    previous = _settings["quiet"]
    _settings["quiet"] = bool(flag)
    return previous


def is_quiet() -> bool:
    return _settings["quiet"]


@contextlib.contextmanager
def quiet(flag: bool = True):
    """Progress silenced (or shown, ``flag=False``) inside the block."""
    previous = set_quiet(flag)
    try:
        yield
    finally:
        set_quiet(previous)


def interval() -> float:
    """Seconds between two lines of the same bar when the output is not a terminal."""
    return _settings["interval"]


def set_interval(seconds: float) -> float:
    """Set :func:`interval`; returns the previous value."""
    previous = _settings["interval"]
    _settings["interval"] = float(seconds)
    return previous


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _notebook_class():
    """tqdm's notebook bar when running in a Jupyter kernel, else None."""
    if "ipykernel" not in sys.modules:
        return None
    try:
        from tqdm.auto import tqdm as auto
    except ImportError:     # pragma: no cover - depends on the installation
        return None
    return None if auto is _std_tqdm else auto


class _Lines:
    """A file for tqdm that turns its in-place redraws (``\\r`` + text) into plain lines:
    each distinct non-empty status becomes one line; the padding, the carriage returns
    and the cursor moves of nested bars are dropped."""

    encoding = "utf-8"

    def __init__(self, stream):
        self.stream = stream
        self.last = None

    def write(self, s: str) -> int:
        for part in re.split(r"[\r\n]", _ANSI.sub("", s)):
            text = part.rstrip()
            if text and text != self.last:
                self.stream.write(text + "\n")
                self.last = text
        return len(s)

    def flush(self) -> None:
        with contextlib.suppress(AttributeError, ValueError, OSError):
            self.stream.flush()

    def isatty(self) -> bool:
        return False


_FORMAT_TTY = ("{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} {unit} "
               "[{elapsed}<{remaining}, {rate_fmt}{postfix}]")
_FORMAT_LINES = ("{desc}: {n_fmt}/{total_fmt} {unit} ({percentage:.0f} %) "
                 "[{elapsed}<{remaining}, {rate_fmt}{postfix}]")
_FORMAT_OPEN = "{desc}: [{elapsed}{postfix}]"          # no total: what runs, for how long
_FORMAT_OPEN_COUNT = "{desc}: {n_fmt} {unit} [{elapsed}{postfix}]"

_open_bars: weakref.WeakSet = weakref.WeakSet()
_ticker_lock = threading.Lock()
_ticker: list = []


class Bar:
    """One progress bar: ``update(n)`` advances it, ``stage(text)`` names what runs now
    (``stage=`` the first), ``close()`` (or the end of a ``with`` block) ends it. Silent
    (every method a no-op) when progress is quiet. ``total`` None: no count to reach,
    the bar shows what runs and for how long (``count=True``: and a count). ``leave``
    False: the bar disappears when closed (and off a terminal only shows once it has
    lasted one interval). ``initial``: the count it starts from (not part of the rate).
    ``stream``: default stderr."""

    def __init__(self, total=None, desc: str = "", unit: str = "it", *, leave: bool = True,
                 stream=None, initial: int = 0, count: bool = False, stage: str = ""):
        self.desc, self.stage_text, self.leave = desc, stage, leave
        self.disabled = is_quiet()
        self.tty = self.notebook = False
        self._tqdm = None
        self._shown = 0.0   # when this class last redrew it (tqdm tracks its own updates)
        if self.disabled:
            return
        stream = sys.stderr if stream is None else stream
        notebook = _notebook_class() if stream is sys.stderr else None
        self.tty = notebook is None and _is_tty(stream)
        if total is None:
            fmt = _FORMAT_OPEN_COUNT if count else _FORMAT_OPEN
        else:
            fmt = _FORMAT_TTY if self.tty or notebook else _FORMAT_LINES
        kwargs = dict(total=total, desc=desc, unit=unit, leave=leave, initial=initial,
                      bar_format=fmt, dynamic_ncols=True, postfix=stage or None)
        if notebook is not None:
            try:
                self._tqdm = notebook(**kwargs)
            except ImportError:     # a kernel without ipywidgets: plain lines instead
                notebook = None
                kwargs["bar_format"] = _FORMAT_LINES if total is not None else fmt
        if self._tqdm is None and self.tty:
            self._tqdm = _std_tqdm(file=stream, mininterval=0.1, **kwargs)
        elif self._tqdm is None:
            # off a terminal: its own last line instead of tqdm's (often a copy of the
            # one before); a bar that vanishes when done (an epoch's batches) shows only
            # when it lasts
            self._tqdm = _std_tqdm(file=_Lines(stream), mininterval=interval(),
                                   maxinterval=max(interval(), 10.0), ascii=True,
                                   delay=0 if leave else interval(),
                                   **dict(kwargs, leave=False))
        self.notebook = notebook is not None
        _open_bars.add(self)
        _start_ticker()

    # -- reading -------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return 0 if self._tqdm is None else self._tqdm.n

    @property
    def total(self):
        return None if self._tqdm is None else self._tqdm.total

    def times(self) -> str:
        """``elapsed 1:05, ~2:10 left`` (the estimate once something was counted and
        the total is known), for lines that stand on their own in a log."""
        t = self._tqdm
        if t is None:
            return ""
        elapsed = time.time() - t.start_t
        text = f"elapsed {format_seconds(elapsed)}"
        done = t.n - getattr(t, "initial", 0)
        if t.total and done > 0 and elapsed > 0 and t.n < t.total:
            text += f", ~{format_seconds((t.total - t.n) * elapsed / done)} left"
        return text

    # -- changing ------------------------------------------------------------------------
    def update(self, n: int = 1) -> None:
        if self._tqdm is not None:
            self._tqdm.update(n)

    def set(self, n: int) -> None:
        """Move the count to ``n`` (a count read from elsewhere, e.g. a file)."""
        if self._tqdm is not None and n != self._tqdm.n:
            self._tqdm.update(n - self._tqdm.n)

    def stage(self, text: str, milestone: bool = True) -> None:
        """Show ``text`` as what runs now. A ``milestone`` is printed at once when the
        output is not a terminal; a minor stage (``milestone=False``) only shows in the
        next periodic line there."""
        if self._tqdm is None or text == self.stage_text:
            return
        self.stage_text = text
        t, now = self._tqdm, time.time()
        live = (self.tty or self.notebook) and now - t.last_print_t >= t.mininterval
        if milestone or live:
            self._shown = now
        t.set_postfix_str(text, refresh=milestone or live)

    def close(self) -> None:
        t = self._tqdm
        if t is None or t.disable:
            return
        _open_bars.discard(self)
        if self.leave and not (self.tty or self.notebook) and (
                t.last_print_n != t.n or time.time() - t.last_print_t > 1.0):
            t.refresh()     # the final count and time, unless the last line showed them
        t.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the ticker's --------------------------------------------------------------------
    def _tick(self, now: float) -> None:
        t = self._tqdm
        if t is None or t.disable or self.notebook:
            return
        every = TTY_REFRESH if self.tty else interval()
        if now - max(getattr(t, "last_print_t", now), self._shown) >= every:
            self._shown = now
            t.refresh()


def _start_ticker() -> None:
    """One daemon thread that redraws open bars whose work does not update them often
    (a tool or a child process runs): a terminal's elapsed time keeps moving, a log gets
    its periodic line."""
    with _ticker_lock:
        if _ticker and _ticker[0].is_alive():
            return
        thread = threading.Thread(target=_tick_loop, name="qsnn-progress", daemon=True)
        _ticker[:] = [thread]
        thread.start()


def _tick_loop() -> None:
    while True:
        time.sleep(0.25)
        bars = list(_open_bars)
        if not bars:
            continue
        now = time.time()
        for b in bars:
            with contextlib.suppress(Exception):   # a bar closed meanwhile
                b._tick(now)


def bar(total=None, desc: str = "", unit: str = "it", **kwargs) -> Bar:
    """A :class:`Bar` (``leave``, ``stream``, ``initial``, ``count``, ``stage``: see the
    class)."""
    return Bar(total, desc, unit, **kwargs)


def line(text: str, stream=None) -> None:
    """Print a progress message (not when quiet) without breaking a terminal's bars."""
    if is_quiet():
        return
    stream = sys.stderr if stream is None else stream
    _std_tqdm.write(text, file=stream)
    with contextlib.suppress(AttributeError, ValueError, OSError):
        stream.flush()


def echo(text: str, stream=None) -> None:
    """Print a result (also when quiet; default stdout) without breaking a terminal's
    bars."""
    stream = sys.stdout if stream is None else stream
    _std_tqdm.write(text, file=stream)
    with contextlib.suppress(AttributeError, ValueError, OSError):
        stream.flush()


def format_seconds(s: float) -> str:
    s = max(0.0, float(s))
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(int(round(s)), 60)
    return f"{m // 60}:{m % 60:02d}:{sec:02d}" if m >= 60 else f"{m}:{sec:02d}"


@contextlib.contextmanager
def stage(name: str, prefix: str = "", stream=None):
    """One step of a pipeline: a line when it starts, one when it ends with its elapsed
    time (or that it failed). Yields nothing useful; the step draws its own bars."""
    head = f"{prefix}{name}"
    line(f"{head} ...", stream)
    t0 = time.perf_counter()
    try:
        yield
    except BaseException:
        line(f"{head}: stopped after {format_seconds(time.perf_counter() - t0)}", stream)
        raise
    line(f"{head}: done in {format_seconds(time.perf_counter() - t0)}", stream)


class Watcher(abc.ABC):
    """Progress read from outside a tool while it runs: inside the ``with`` block a
    daemon thread calls :meth:`poll` every :attr:`POLL` seconds (the subclass reads the
    tool's files and moves ``bar``); entering shows ``first_stage`` on the bar."""

    POLL = 0.5

    def __init__(self, bar, first_stage: str, name: str):
        self.bar = bar
        self._first = first_stage
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self):
        self.bar.stage(self._first)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.wait(self.POLL):
            self.poll()

    @abc.abstractmethod
    def poll(self):
        """Read what the tool wrote since the last call and move the bar."""
