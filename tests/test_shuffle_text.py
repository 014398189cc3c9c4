"""--shuffle on text (issue 13, item 14): a libsvm file's rows are shuffled in blocks of
--shuffle-buffer rows, checked against a plain reference of the rule (readers/shuffle.py),
and a run killed at any checkpoint (mid-block too) resumes to the very same model."""

import numpy as np
import pytest
from conftest import DATA

from ftrl_cli import api, checkpoint
from ftrl_cli.config import Config
from ftrl_cli.errors import ConfigError
from ftrl_cli.readers import open_batches

A9A = DATA / "a9a_head2000.svm"


def reference_order(path, n, seed):
    """Row indices (0-based, over the file's data rows) in the order --shuffle yields them:
    blocks of n rows from the first, each permuted by default_rng([*seed, the byte offset
    where the block starts: just past the previous block's last row's line])."""
    raw = path.read_bytes()
    starts, ends, pos = [], [], 0
    for line in raw.split(b"\n")[:-1] if raw.endswith(b"\n") else raw.split(b"\n"):
        end = pos + len(line) + 1
        if line.strip() and not line.lstrip().startswith(b"#"):
            starts.append(pos)
            ends.append(min(end, len(raw)))
        pos = end
    order = []
    for k in range(0, len(starts), n):
        offset = 0 if k == 0 else ends[k - 1]
        block = np.arange(k, min(k + n, len(starts)))
        order += block[np.random.default_rng([*seed, offset]).permutation(len(block))].tolist()
    return order


def rows(path, config, **kw):
    out = []
    for b in open_batches(str(path), config, **kw):
        for r in range(b.rows):
            a, c = b.indptr[r], b.indptr[r + 1]
            out.append((float(b.labels[r]), tuple(b.ids[a:c].tolist()), tuple(b.values[a:c].tolist())))
    return out


@pytest.mark.parametrize("buffer, batch_size, batch_rows", [(300, 1, 128), (300, 7, 70), (5000, 1, 512)])
def test_rows_come_in_the_reference_order(tmp_path, buffer, batch_size, batch_rows):
    text = tmp_path / "a.svm"  # with a comment and blank lines, which are not rows
    lines = A9A.read_text().splitlines()
    text.write_text("# header\n" + "\n".join(lines[:700]) + "\n\n" + "\n".join(lines[700:]) + "\n")
    plain = rows(text, Config())
    c = Config(shuffle=True, shuffle_buffer=buffer, batch_size=batch_size)
    n = -(-buffer // batch_size) * batch_size
    got = rows(text, c, shuffle_seed=(3, 1, 0), block_row=0, batch_rows=batch_rows)
    assert got == [plain[i] for i in reference_order(text, n, (3, 1, 0))]
    assert got != plain
    # another pass (seed) another order; no block_row: the line order (parallel pieces)
    assert rows(text, c, shuffle_seed=(3, 2, 0), block_row=0, batch_rows=batch_rows) != got
    assert rows(text, c, shuffle_seed=(3, 1, 0), batch_rows=batch_rows) == plain
    assert rows(text, c.replace(shuffle_buffer=1), shuffle_seed=(3, 1, 0), block_row=0, batch_rows=batch_rows) == plain


def test_batches_hold_whole_steps_and_resume_positions():
    c = Config(shuffle=True, shuffle_buffer=300, batch_size=4)
    seen = 0
    bs = list(open_batches(str(A9A), c, shuffle_seed=(0, 0, 0), block_row=0, batch_rows=128))
    for b in bs[:-1]:
        assert b.rows % 4 == 0 and b.rows <= 128
    for b in bs:
        seen += b.rows
        # a batch inside a block reports the block's start and its rows yielded so far
        assert b.end_block_row == (0 if seen % 300 == 0 or seen == 2000 else seen % 300)
    # from any of those positions the rest is what followed it
    full = rows(A9A, c, shuffle_seed=(0, 0, 0), block_row=0, batch_rows=128)
    done = 0
    for b in bs[:-1]:
        done += b.rows
        rest = rows(A9A, c, shuffle_seed=(0, 0, 0), block_row=b.end_block_row, batch_rows=128,
                    start_offset=b.end_offset, start_line=b.end_line)
        assert rest == full[done:]


class Crash(Exception):
    pass


@pytest.mark.parametrize("overrides, crash_at", [
    ({}, 3), ({}, 7),  # mid-block, and the pass's end region
    ({"batch_size": 4, "interactions": [["5", "*"]], "bits": 16}, 4),
    ({"passes": 2}, 25),  # in the second pass
])
def test_crash_at_a_checkpoint_then_resume_is_bit_identical(tmp_path, monkeypatch, overrides, crash_at):
    o = {"shuffle": True, "shuffle_buffer": 450, "seed": 5, "checkpoint_every": 100, **overrides}
    api.train([str(A9A)], tmp_path / "ref", overrides=o)
    real_save = checkpoint.save
    calls = []

    def dying_save(*a, **k):
        name = real_save(*a, **k)
        calls.append(name)
        if len(calls) == crash_at:
            raise Crash
        return name

    monkeypatch.setattr(checkpoint, "save", dying_save)
    with pytest.raises(Crash):
        api.train([str(A9A)], tmp_path / "crash", overrides=o)
    monkeypatch.setattr(checkpoint, "save", real_save)
    _, log = checkpoint.load(tmp_path / "crash", resume=True)
    assert not log.finished
    if crash_at == 3:
        assert log.run.block_row == 300  # mid-block: the block is read again, 300 rows skipped
    api.train([str(A9A)], tmp_path / "crash", resume=True)
    a, b = api.load_model(tmp_path / "ref"), api.load_model(tmp_path / "crash")
    assert np.array_equal(a.state.table, b.state.table) and np.array_equal(a.state.bias, b.state.bias)


def test_shuffle_changes_the_model_and_is_reproducible(tmp_path):
    o = {"shuffle": True, "shuffle_buffer": 1000, "seed": 1}
    for name, extra in (("a", {}), ("b", {}), ("plain", {"shuffle": False}), ("seed2", {"seed": 2})):
        api.train([str(A9A)], tmp_path / name, overrides={**o, **extra})
    w = {n: api.load_model(tmp_path / n).state.table for n in ("a", "b", "plain", "seed2")}
    assert np.array_equal(w["a"], w["b"])
    assert not np.array_equal(w["a"], w["plain"]) and not np.array_equal(w["a"], w["seed2"])


def test_shuffle_buffer_must_be_a_positive_row_count():
    from ftrl_cli.config import validate

    for bad in (0, -1, 2**31, 1.5, True):
        with pytest.raises(ConfigError, match="shuffle_buffer"):
            validate(Config(shuffle_buffer=bad))
