"""The training engine (ftrl_cli/engine.py) driven directly, as the estimator, a sweep or a
worker would drive it: over arrays in memory, from a given state, without a directory."""

import os
import signal

import numpy as np
import pytest
from sklearn.datasets import load_svmlight_file

from ftrl_cli import api, checkpoint
from ftrl_cli.config import Config
from ftrl_cli.engine import StopFlag, Trainer, array_source, file_source, start_run
from ftrl_cli.model import Model, State, fresh_row
from ftrl_cli.records import InputId, TrainingLog

DATA = os.path.join(os.path.dirname(__file__), "data")
A9A = os.path.join(DATA, "a9a_head2000.svm")


def a9a_arrays():
    X, y = load_svmlight_file(A9A, zero_based=True)  # ids as written: column j is id j
    X.sort_indices()
    return (X.indptr.astype(np.int64), X.indices.astype(np.int64), X.data.astype(np.float64),
            y.astype(np.float64))


def train_arrays(config, arrays, log=None, model=None):
    model = model or Model(config)
    log = start_run(log, [InputId("<array>")], config)
    trainer = Trainer(config, model, log)
    return trainer.run([array_source(*arrays)]), log, trainer


@pytest.mark.parametrize("settings", [{}, {"dtype": "float32", "l1": 0.5},
                                      {"batch_size": 32, "passes": 2}, {"holdout_every": 7}])
def test_trainer_on_arrays_equals_train_on_the_file(tmp_path, settings):
    """No directory, no reader: the same steps as `ftrl train` on the file, bit for bit,
    and the same training record."""
    config = Config(**settings)
    model, log, trainer = train_arrays(config, a9a_arrays())
    summary = api.train([A9A], tmp_path / "m", overrides=settings)
    ref, ref_log = checkpoint.load(tmp_path / "m")
    assert model.state == ref.state
    assert [h.to_json() for h in log.history] == [h.to_json() for h in ref_log.history]
    assert [e.to_json() for e in log.evals] == [e.to_json() for e in ref_log.evals]
    assert log.examples_seen == ref_log.examples_seen and log.finished
    assert trainer.features == summary["features"] > 0


def test_early_stopping_in_memory_keeps_the_best_state(tmp_path):
    settings = {"holdout_every": 5, "early_stop": 1, "passes": 6, "alpha": 2.0, "l1": 0.0, "l2": 0.0}
    model, log, trainer = train_arrays(Config(**settings), a9a_arrays())
    api.train([A9A], tmp_path / "m", overrides=settings)
    ref, ref_log = checkpoint.load(tmp_path / "m")
    assert ref_log.kept is not None and log.kept == ref_log.kept
    assert model.state == ref.state  # the best one, kept as a copy instead of best.npz


def test_state_is_a_value():
    config = Config(bits=12)
    model, _, _ = train_arrays(config, a9a_arrays())
    s = model.state
    c = s.copy()
    assert c == s and c is not s and c.table is not s.table
    c.table[3, 0] = np.nextafter(c.table[3, 0], 1)  # one ulp
    assert c != s
    nan = s.copy()
    nan.table[0, 0] = np.nan
    assert nan == nan.copy()  # bit equality: NaN equals NaN
    assert State.fresh(config) == State.fresh(config)


def test_a_shard_trained_from_a_state_hands_back_exactly_its_changed_slots():
    """What a worker does: train part 2 from the state after part 1, hand back the changed
    rows; putting them into the starting state gives the trained state."""
    config = Config(bits=16)
    ip, ids, vals, y = a9a_arrays()
    half = len(y) // 2
    cut = int(ip[half])
    part1 = (ip[:half + 1], ids[:cut], vals[:cut], y[:half])
    part2 = (ip[half:] - cut, ids[cut:], vals[cut:], y[half:])
    m1, _, _ = train_arrays(config, part1)
    start = m1.state.copy()
    m2, _, _ = train_arrays(config, part2, model=Model(config, m1.state.copy()))
    slots = m2.state.changed_slots(start, fresh_row(config))
    touched = np.unique(ids[cut:])
    assert np.array_equal(slots, touched)  # ids < 2**bits own their slot; every touched one moved
    merged = start.copy()
    table = np.tile(fresh_row(config), (len(m2.state.table), 1))
    table[:len(merged.table)] = merged.table
    table[slots] = m2.state.table[slots]
    merged.table = table
    merged.bias[:] = m2.state.bias
    assert merged == m2.state


def test_two_states_over_one_batch_stream_equal_two_runs():
    """The sweep's shape: one read of the data, one Trainer per setting, batches handed to
    each in turn; each ends where its own run would."""
    arrays = a9a_arrays()
    configs = [Config(alpha=a) for a in (0.05, 0.5)]
    trainers = [Trainer(c, Model(c), start_run(None, [InputId("<array>")], c)) for c in configs]
    for b in array_source(*arrays).open(batch_rows=trainers[0].rows_per_batch):
        for t in trainers:
            t.learn(b)
    for t, c in zip(trainers, configs):
        t.end_pass()
        alone, log, _ = train_arrays(c, arrays)
        assert t.model.state == alone.state
        assert t.log.history[0].logloss == log.history[0].logloss


def test_stop_flag_installs_handlers_only_when_asked():
    before = signal.getsignal(signal.SIGINT)
    with StopFlag() as stop:
        assert signal.getsignal(signal.SIGINT) is before and stop.signum is None
    with StopFlag(install=True):
        assert signal.getsignal(signal.SIGINT) is not before
    assert signal.getsignal(signal.SIGINT) is before


def test_unfinished_run_continues_only_with_its_inputs():
    config = Config()
    log = TrainingLog(run=start_run(None, [InputId("a", 10)], config).run)
    assert start_run(log, [InputId("a", 10)], config) is log
    with pytest.raises(Exception, match="unfinished run on a"):
        start_run(log, [InputId("b", 10)], config)
    with pytest.raises(Exception, match="changed since"):
        start_run(log, [InputId("a", 11)], config)
    log.finished = True
    log.passes_done = 3
    new = start_run(log, [InputId("b", 1)], config)
    assert not new.finished and new.run.first_pass == 3 and new.run.inputs == [InputId("b", 1)]


def test_file_source_reads_resume_positions(tmp_path):
    config = Config()
    src = file_source(A9A, config, os.path.getsize(A9A))
    batches = list(src.open(batch_rows=500))
    rest = list(src.open(start_offset=batches[1].end_offset, start_line=batches[1].end_line, batch_rows=500))
    assert [b.rows for b in rest] == [b.rows for b in batches[2:]]
    assert np.array_equal(rest[0].ids, batches[2].ids)


def test_curve_goes_on_after_a_point_skipped_for_zero_weight(tmp_path):
    """Rows of weight 0 at the start leave the first curve points undefined; later batches
    (and a resumed run) go on from where the stream is, never at a negative offset."""
    lines = open(A9A).read().splitlines()
    lines = [line.split(" ", 1)[0] + " cost:0 " + line.split(" ", 1)[1] if i < 300 else line
             for i, line in enumerate(lines)]
    p = tmp_path / "w.svm"
    p.write_text("\n".join(lines) + "\n")
    s = api.train([str(p)], tmp_path / "m", batch_rows=100)
    _, log = checkpoint.load(tmp_path / "m")
    xs = [c.examples for c in log.curve]
    assert xs and xs == sorted(set(xs)) and xs[0] >= 512 and s["examples"] == 2000


@pytest.mark.parametrize("every", [3, 7])
def test_holdout_every_holds_out_the_same_rows_in_every_pass(every, tmp_path):
    """2,000 rows are not a multiple of 3 or 7: counting rows over the run would hold other
    rows out in the second pass (and train on the first pass's hold-out). Counted per pass,
    three passes learn exactly what three passes over the kept rows alone learn, and the
    hold-out scores of each pass are those of the same rows."""
    ip, ids, vals, y = a9a_arrays()
    assert len(y) % every
    model, log, _ = train_arrays(Config(holdout_every=every, passes=3), (ip, ids, vals, y))
    keep = (np.arange(1, len(y) + 1) % every) != 0
    rows = np.flatnonzero(keep)
    kp = np.concatenate([[0], np.cumsum(np.diff(ip)[rows])]).astype(np.int64)
    k_ids = np.concatenate([ids[ip[i]:ip[i + 1]] for i in rows])
    k_vals = np.concatenate([vals[ip[i]:ip[i + 1]] for i in rows])
    alone, _, _ = train_arrays(Config(passes=3), (kp, k_ids, k_vals, y[rows]))
    assert model.state == alone.state
    assert [e.rows for e in log.evals] == [int(len(y) - keep.sum())] * 3
    assert [e.examples for e in log.evals] == [int(keep.sum()) * p for p in (1, 2, 3)]


@pytest.mark.parametrize("batch_size,every", [(1, 10), (1, 3), (4, 7)])
def test_held_out_rows_are_scored_where_they_stand_in_the_stream(batch_size, every):
    """A plain loop as the reference: each held-out row is scored by the model after every
    kept row before it (online) or before the step it falls in (mini-batch); the others are
    learned in order. The model learned is the same as training on the kept rows alone."""
    from ftrl_cli import metrics

    config = Config(holdout_every=every, batch_size=batch_size)
    ip, ids, vals, y = a9a_arrays()
    model, log, _ = train_arrays(config, (ip, ids, vals, y))

    ref = Model(Config(batch_size=batch_size))
    held_m, held_y, step = [], [], []

    def row(i):
        return ip[i:i + 2] - ip[i], ids[ip[i]:ip[i + 1]], vals[ip[i]:ip[i + 1]]

    def learn(rows):
        p = np.concatenate([[0], np.cumsum([ip[i + 1] - ip[i] for i in rows])]).astype(np.int64)
        r_ids = np.concatenate([ids[ip[i]:ip[i + 1]] for i in rows])
        r_vals = np.concatenate([vals[ip[i]:ip[i + 1]] for i in rows])
        ref.learn(p, r_ids, r_vals, (y[rows] > 0).astype(float), np.ones(len(rows)),
                  int(r_ids.max(initial=-1)), np.empty(len(rows)))

    for i in range(len(y)):
        if (i + 1) % every == 0:
            held_m.append(ref.margins(*row(i))[0])
            held_y.append(float(y[i] > 0))
        else:
            step.append(i)
            if len(step) == batch_size:
                learn(step)
                step = []
    if step:
        learn(step)
    assert model.state == ref.state
    assert log.evals[0].rows == len(held_m)
    assert log.evals[0].logloss == metrics.logloss(np.array(held_m), np.array(held_y))
