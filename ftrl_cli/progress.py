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
        if not self.header:
            self.log(f"{'examples':>14} {'pass':>5} {'pass loss':>10} {'elapsed':>9}   "
                     "(pass loss: progressive log loss of the pass so far)")
            self.header = True
        self.log(f"{p['examples']:>14,} {p['pass']:>5} {p['train_logloss']:>10.6f} {p['seconds']:>8.1f}s")


def _eval_text(r):
    auc = "n/a" if r.get("auc") is None or r["auc"] != r["auc"] else f"{r['auc']:.6f}"
    loss = "n/a" if r.get("logloss") is None else f"{r['logloss']:.6f}"
    return (f"validation after {r['examples']:,} examples (pass {r['pass']}, {r['rows']:,} rows): "
            f"logloss {loss}  auc {auc}")


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


class RichReporter(Reporter):
    """A live bar on a terminal: bytes read, rows/s and the progressive log loss."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TextColumn("{task.fields[rows]:>12,} rows"),
            TextColumn("{task.fields[rate]:>9,.0f} rows/s"),
            TextColumn("loss {task.fields[loss]:.5f}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=self.console, transient=False)
        self.progress.start()
        self.task = None
        self.rows = 0
        self.loss = 0.0
        self.t0 = time.perf_counter()

    def start(self, description, total_bytes):
        self.task = self.progress.add_task(description, total=total_bytes or None,
                                           rows=self.rows, rate=0.0,
                                           loss=self.loss / max(self.rows, 1))

    def advance(self, raw_bytes, rows, loss_sum):
        self.rows += rows
        self.loss += loss_sum
        rate = self.rows / max(time.perf_counter() - self.t0, 1e-9)
        self.progress.update(self.task, completed=raw_bytes, rows=self.rows, rate=rate,
                             loss=self.loss / max(self.rows, 1))

    def end_input(self):
        if self.task is not None:
            t = self.progress.tasks[self.task]
            if t.total:
                self.progress.update(self.task, completed=t.total)

    def log(self, message):
        self.console.print(message, highlight=False, markup=False)

    def evaluation(self, record):
        self.log(_eval_text(record))

    def warn(self, message):
        self.console.print(f"warning: {message}", style="yellow", highlight=False, markup=False)

    def close(self):
        self.progress.stop()


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
