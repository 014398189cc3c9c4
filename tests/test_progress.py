"""The progress display fits the terminal (issue 13, item 16): at 80, 120 and 200 columns (and
40) no line is wider than the terminal, the bar shows, no number is cut; reading stdin it shows
the bytes read. The log's table and validation lines fit 80 columns."""

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from ftrl_cli.progress import LogReporter, RichReporter, _eval_text, _Task, task_lines

HERE = Path(__file__).resolve().parent
TRAIN = HERE.parent / "sample_data" / "agaricus.txt.train"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
BAR = set("━─")


def console(width, out):
    return Console(file=out, width=width, force_terminal=True, color_system="truecolor")


def screen_lines(raw: str) -> list:
    """What a terminal shows, line by line: escapes dropped, split at CR and LF."""
    return re.split(r"[\r\n]", ANSI.sub("", raw))


def render(task, width, elapsed):
    out = io.StringIO()
    c = console(width, out)
    for line in task_lines(task, width, elapsed):
        c.print(line)
    text = ANSI.sub("", out.getvalue())
    return text.rstrip("\n").split("\n"), text


def task(description, total, completed, rows, loss_sum):
    t = _Task(description, total)
    t.completed, t.rows, t.loss, t.has_loss = completed, rows, loss_sum, loss_sum != 0
    return t


def figures(t, elapsed):
    """The numbers the display must show whole, formatted here independently."""
    out = [f"{t.rows:,} rows", f"{t.rows / elapsed:,.0f} rows/s"]
    if t.has_loss:
        out.append(f"loss {t.loss / t.rows:.5f}")
    s = int(elapsed)
    out.append(f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}")
    return out


LONG = "pass 12/20 /data/criteo/day_0_split/part-00017-of-00100.libsvm.gz"


@pytest.mark.parametrize("width", [40, 80, 120, 200])
@pytest.mark.parametrize("description", ["pass 1/2 train.svm", LONG])
def test_a_file_s_display_fits_with_a_bar_and_whole_numbers(width, description):
    total, done, elapsed = 44_535_420_000, 12_345_678_901, 3725.0
    t = task(description, total, done, 976_830_123, 976_830_123 * 0.4321)
    lines, text = render(t, width, elapsed)
    assert all(len(x) <= width for x in lines), lines
    bar = sum(ch in BAR for ch in lines[0])
    assert bar >= 10 and bar <= 40, lines
    # the bar's filled part is the fraction read
    assert lines[0].count("━") == round(bar * done / total)
    flat = " ".join(" ".join(lines).split())  # (figures may move between lines, never split)
    for f in figures(t, elapsed) + [f"{done / 1e9:.1f}/{total / 1e9:.1f} GB"]:
        assert f in flat, (f, lines)
    # the eta: time per byte so far times the bytes left
    eta = int(elapsed * (total - done) / done)
    assert f"eta {eta // 3600}:{eta // 60 % 60:02d}:{eta % 60:02d}" in flat
    # only the name may be shortened, from its start
    assert "…" not in text.replace(lines[0].split("  ")[0], "")
    name = lines[0].split("  ")[0]
    head, cut, tail = name.partition("…")
    assert name == description or (cut and description.startswith(head) and description.endswith(tail))
    assert not cut or head in ("", "pass 12/20 ")  # (the pass kept when shortened, if it fits)
    if width >= 120 and description != LONG:
        assert len(lines) == 1 + (width < 200), lines  # one line when it fits


@pytest.mark.parametrize("width", [40, 80, 120])
def test_stdin_shows_the_bytes_read_not_a_total_it_does_not_know(width):
    t = task("pass 1/1 <stdin>", None, 7_012_345, 390_780, 0.0)  # no loss: predict
    lines, text = render(t, width, 2.0)
    assert all(len(x) <= width for x in lines), lines
    flat = " ".join(" ".join(lines).split())
    assert "7.0 MB read" in flat and "3.5 MB/s" in flat, lines
    for f in figures(t, 2.0):
        assert f in flat
    assert "?" not in text and "eta" not in text and "loss" not in text
    assert not BAR & set(text)


def test_the_live_reporter_at_80_columns(monkeypatch):
    """The reporter as train drives it: every frame and the lines left fit, the last state
    of each input stays, with its own rows."""
    out = io.StringIO()
    rep = RichReporter(console(80, out))
    total = 44_535_420
    for p in (1, 2):
        rep.start(f"pass {p}/2 /tmp/some/where/a-rather-long-file-name.svm", total)
        for k in range(1, 11):
            rep.advance(total * k // 10, 97_683, 97_683 * 0.25 / p)
            rep.live.refresh()
        rep.end_input()
    rep.start("<stdin>", None)
    rep.advance(123_456_789, 5_000_000, 0.0)
    rep.close()
    shown = [x for x in screen_lines(out.getvalue()) if x.strip()]
    assert shown and all(len(x) <= 80 for x in shown), [x for x in shown if len(x) > 80]
    text = " ".join(" ".join(shown).split())
    assert "976,830 rows" in text and "1,953,660" not in text  # (per input, not summed)
    assert "loss 0.25000" in text and "loss 0.12500" in text
    assert "44.5/44.5 MB" in text and "123.5 MB read" in text and "5,000,000 rows" in text
    assert "…" in text  # (the long name, shortened at 80 columns)
    assert not re.search(r"\d…", text)


def test_log_table_and_validation_lines_fit_80_columns():
    out = io.StringIO()
    rep = LogReporter(out)
    for p in (1, 12):
        rep.point({"examples": 123_456_789_012, "pass": p, "train_logloss": 0.123456789, "seconds": 99999.9})
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and all(len(x) <= 80 for x in lines), lines
    assert "pass loss" in lines[0] and "of the pass so far" in lines[0]
    assert "123,456,789,012" in lines[2] and "0.123457" in lines[2]
    r = {"pass": 3, "examples": 6_513, "rows": 1_611, "logloss": 0.1, "auc": 0.9}
    assert _eval_text(r) == "validation after 6,513 examples (pass 3): logloss 0.100000, auc 0.900000"
    r.update(examples=1_234_567_890, rows=123_456_789, auc=float("nan"))
    assert len(_eval_text(r)) <= 80 and "auc n/a" in _eval_text(r)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pty")
def test_train_in_an_80_column_terminal(tmp_path):
    """`ftrl train` in a real pty 80 columns wide: nothing on stderr is wider (a wider line
    would wrap), the bar and the whole row count show."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = dict(os.environ, COLUMNS="80", LINES="24", TERM="xterm-256color")
    env.pop("NO_COLOR", None)
    p = subprocess.Popen([sys.executable, "-m", "ftrl_cli", "train", str(TRAIN), "-m", "m"],
                         stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env, cwd=tmp_path)
    os.close(slave)
    raw = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        try:
            chunk = os.read(master, 65536) if ready else b""
        except OSError:  # (EIO: the child closed the pty)
            chunk = b""
        if not chunk:
            break
        raw += chunk
    os.close(master)
    assert p.wait(timeout=60) == 0, raw
    shown = [x for x in screen_lines(raw.decode()) if x.strip()]
    assert all(len(x) <= 80 for x in shown), [x for x in shown if len(x) > 80]
    first = next(x for x in shown if x.startswith("pass 1/1 …"))
    assert sum(ch in BAR for ch in first) >= 10 and "742.3/742.3 kB" in first
    assert "6,513 rows" in " ".join(shown) and "trained on 6,513 examples" in " ".join(shown)
