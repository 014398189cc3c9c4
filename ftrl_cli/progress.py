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

    def log(self, message: str) -> None:
        pass

    def warn(self, message: str) -> None:
        pass

    def close(self) -> None:
        pass


class LogReporter(Reporter):
    """Plain lines for logs: progressive loss whenever the row count doubles."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self.rows = 0
        self.loss = 0.0
        self.next_report = 1 << 14
        self.header = False

    def start(self, description, total_bytes):
        if self.rows == 0:
            self.t0 = time.perf_counter()

    def log(self, message: str) -> None:
        print(message, file=self.stream, flush=True)

    def warn(self, message: str) -> None:
        print(f"warning: {message}", file=self.stream, flush=True)

    def advance(self, raw_bytes, rows, loss_sum):
        self.rows += rows
        self.loss += loss_sum
        if self.rows >= self.next_report:
            if not self.header:
                self.log(f"{'rows':>14} {'avg loss':>10} {'rows/s':>12} {'elapsed':>9}")
                self.header = True
            dt = time.perf_counter() - self.t0
            self.log(f"{self.rows:>14,} {self.loss / self.rows:>10.6f} "
                     f"{self.rows / max(dt, 1e-9):>12,.0f} {dt:>8.1f}s")
            while self.next_report <= self.rows:
                self.next_report *= 2


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

    def warn(self, message):
        self.console.print(f"warning: {message}", style="yellow", highlight=False, markup=False)

    def close(self):
        self.progress.stop()


def make_reporter(quiet: bool = False, log: bool = True) -> Reporter:
    """A bar on a terminal; in logs the progressive-loss table (log=True) or silence."""
    if quiet:
        return Reporter()
    if sys.stderr.isatty():
        return RichReporter()
    return LogReporter() if log else Reporter()
