"""Progress and log output on stderr: a rich bar on a terminal, a VW-style table of
progressive loss at doubling row counts in logs, nothing with --quiet. The only module
that imports rich.
"""

from __future__ import annotations

import sys
import time


class Reporter:
    """Silent reporter (--quiet); the base of the others."""

    def start(self, description: str, total_bytes: int | None) -> None:
        pass

    def advance(self, raw_bytes: int, rows: int, loss_sum: float) -> None:
        """raw_bytes: position in the current file; rows/loss_sum: this batch."""

    def end_input(self) -> None:
        pass

    def evaluation(self, record: dict) -> None:
        """A validation result: pass, examples, rows, logloss, auc."""

    def point(self, point: dict) -> None:
        """The progressive loss at a doubling example count: examples, pass, train_logloss."""

    def log(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass

    def close(self) -> None:
        pass


class LogReporter(Reporter):
    """Plain lines for logs: the progressive loss whenever the example count doubles."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self.header = False

    def log(self, message: str) -> None:
        print(message, file=self.stream, flush=True)

    def warn(self, message: str) -> None:
        print(f"warning: {message}", file=self.stream, flush=True)

    def evaluation(self, record):
        self.log(_eval_text(record))

    def point(self, p):
        if not self.header:  # (lines of at most 80 columns)
            self.log("pass loss: the progressive log loss of the pass so far")
            self.log(f"{'examples':>14} {'pass':>5} {'pass loss':>10} {'elapsed':>9}")
            self.header = True
        self.log(f"{p['examples']:>14,} {p['pass']:>5} {p['train_logloss']:>10.6f} {p['seconds']:>8.1f}s")


def _eval_text(r):
    auc = "n/a" if r.get("auc") is None or r["auc"] != r["auc"] else f"{r['auc']:.6f}"
    loss = "n/a" if r.get("logloss") is None else f"{r['logloss']:.6f}"
    # (no row count, to fit 80 columns: the summary and --json-progress give it)
    return f"validation after {r['examples']:,} examples (pass {r['pass']}): logloss {loss}, auc {auc}"


class JsonReporter(LogReporter):
    """--json-progress: one JSON object per line on stderr, for pipelines."""

    def _emit(self, **fields):
        import json

        print(json.dumps(fields), file=self.stream, flush=True)

    def log(self, message):
        self._emit(event="log", message=message)

    def warn(self, message):
        self._emit(event="warning", message=message)

    def point(self, p):
        self._emit(event="progress", rows=p["examples"], **{"pass": p["pass"]}, seconds=round(p["seconds"], 6),
                   progressive_logloss=p["train_logloss"], rss_mb=_rss_mb())

    def evaluation(self, record):
        self._emit(event="validation", **record, seconds=round(time.perf_counter() - self.t0, 6))


def _rss_mb():
    """Peak resident set size of this process in MB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Task:
    """One input being read (a pass over a file, or a file predicted or converted): its
    counts, and its display cut to the width it is drawn at."""

    def __init__(self, description: str, total: int | None):
        self.description = description
        self.total = total or None  # the file's size on disk; None for stdin and pipes
        self.completed = 0  # bytes read from it (compressed bytes for a compressed input)
        self.rows = 0
        self.loss = 0.0
        self.has_loss = False  # predict and convert report no loss: then none is shown
        self.t0 = time.perf_counter()
        self.t1: float | None = None

    def elapsed(self) -> float:
        return (self.t1 or time.perf_counter()) - self.t0

    def __rich_console__(self, console, options):
        yield from task_lines(self, options.max_width, self.elapsed())


BAR_MIN, BAR_MAX = 10, 40


def _clock(seconds: float) -> str:
    s = int(max(seconds, 0))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _bytes_done(done: int, total: int) -> str:
    """'12.3/44.5 MB' (both in the total's unit, as rich's DownloadColumn)."""
    from rich.filesize import pick_unit_and_suffix

    unit, suffix = pick_unit_and_suffix(total, ["bytes", "kB", "MB", "GB", "TB", "PB"], 1000)
    prec = 0 if unit == 1 else 1
    return f"{done / unit:.{prec}f}/{total / unit:.{prec}f} {suffix}"


def _shorten(s: str, room: int) -> str:
    """s in `room` columns: its start ("pass 2/5 " of a training pass) and its end (the file's
    name), an ellipsis for the middle."""
    if len(s) <= room:
        return s
    if room < 2:
        return ""
    head = s[:s.find(" ", 5) + 1] if s.startswith("pass ") and s.find(" ", 5) > 0 else ""
    head = head if len(head) <= room // 2 else ""
    return head + "…" + s[len(s) - (room - len(head) - 1):]


def task_lines(t: _Task, width: int, elapsed: float) -> list:
    """The task as rich Texts no wider than `width`, whole numbers always: one line when all
    fits, else the name, bar and bytes first and the other figures flowed onto more lines;
    only the name is shortened (in the middle). No total (stdin, a pipe): bytes read, no bar."""
    from rich.filesize import decimal
    from rich.text import Text

    done = t.t1 is not None
    secs = max(elapsed, 1e-9)
    figures = [f"{decimal(int(t.completed / secs))}/s".rjust(10), f"{t.rows:,} rows".rjust(12),
               f"{t.rows / secs:,.0f} rows/s".rjust(14)]
    if t.has_loss:
        figures.append(f"loss {t.loss / max(t.rows, 1):.5f}")
    figures.append(_clock(elapsed))
    if t.total is None:
        head, bar_min = [f"{decimal(t.completed)} read"], 0
    else:
        head, bar_min = [_bytes_done(t.completed, t.total)], 16
        if not done and t.completed:
            eta = f"eta {_clock(elapsed * (t.total - t.completed) / t.completed)}"
            # (beside the bytes when that leaves a dozen columns for the name)
            narrow = len(head[0] + eta) + 6 + BAR_MIN + 12 > width
            (figures if narrow else head).append(eta)
    sep = "  "
    fixed = sep.join(head + figures)
    if len(t.description) + len(sep) * 2 + bar_min + len(fixed) <= width:
        first, rest = fixed, []  # everything on one line
    else:
        first, rest = sep.join(head), figures
    bar = 0
    if bar_min:
        bar = min(BAR_MAX, width - len(t.description) - len(sep) * 2 - len(first))
        if rest:  # (a long name is shortened for a bar of a quarter of the width, at least 10)
            floor = min(max(BAR_MIN, width // 4), BAR_MAX)
            bar = max(bar, min(floor, width - len(sep) * 2 - len(first) - 2))
    room = width - len(first) - len(sep) - (bar + len(sep) if bar > 0 else 0)
    line = Text(_shorten(t.description, room), style="bold")
    if bar > 0:
        line.append(sep)
        frac = min(t.completed / t.total, 1.0)
        full = int(round(bar * frac))
        line.append("━" * full, style="bar.finished" if done and frac >= 1 else "bar.complete")
        line.append("─" * (bar - full), style="bar.back")
    line.append(sep + first)
    lines, cur = [line], ""
    for piece in rest:  # (each figure whole: a line break between figures, never inside one)
        if cur and len(cur) + len(sep) + len(piece) > width:
            lines.append(Text(cur))
            cur = ""
        cur += sep + piece
    if cur:
        lines.append(Text(cur))
    for x in lines:
        x.truncate(width)  # (only below ~20 columns, where no layout fits)
    return lines


class RichReporter(Reporter):
    """A live display on a terminal, fitted to its width (80 columns and up): the input, a bar
    of the bytes read of its size (the size on disk, compressed if it is), or the bytes read
    when the size is unknown (stdin, a pipe), then bytes/s, rows, rows/s, the log loss of its
    rows (as summed in training) per row, and the time. Each input's last state stays on
    screen when it ends."""

    def __init__(self, console=None):
        from rich.console import Console
        from rich.live import Live

        self.console = console or Console(stderr=True)
        self.task: _Task | None = None
        self.live = Live(None, console=self.console, refresh_per_second=4, transient=True,
                         get_renderable=lambda: self.task or "")

    def start(self, description, total_bytes):
        self._finish()
        self.task = _Task(description, total_bytes)
        if not self.live.is_started:  # (started with the first input: a run that ends before
            self.live.start()          # reading any, on an error, leaves no hidden cursor)

    def advance(self, raw_bytes, rows, loss_sum):
        t = self.task
        t.completed, t.rows = raw_bytes, t.rows + rows
        t.loss += loss_sum
        t.has_loss = t.has_loss or loss_sum != 0.0

    def end_input(self):
        self._finish()

    def _finish(self, always=True):
        """Print the task's last state above the live display, where it stays."""
        t, self.task = self.task, None
        if t is not None and (always or t.rows):
            t.t1 = time.perf_counter()
            self.console.print(t)

    def log(self, message):
        self.console.print(message, highlight=False, markup=False)

    def evaluation(self, record):
        self.log(_eval_text(record))

    def warn(self, message):
        self.console.print(f"warning: {message}", style="yellow", highlight=False, markup=False)

    def close(self):
        self._finish(always=False)  # (interrupted mid-input: where it stopped)
        if self.live.is_started:
            self.live.stop()


class WarningsOnly(Reporter):
    """No progress, but warnings on stderr (predict and eval in logs)."""

    def warn(self, message: str) -> None:
        print(f"warning: {message}", file=sys.stderr, flush=True)


def make_reporter(quiet: bool = False, log: bool = True, json_lines: bool = False) -> Reporter:
    """A bar on a terminal; in logs the progressive-loss table (log=True) or silence;
    JSON lines with json_lines."""
    if json_lines:
        return JsonReporter()
    if quiet:
        return Reporter()
    if sys.stderr.isatty():
        return RichReporter()
    return LogReporter() if log else WarningsOnly()
