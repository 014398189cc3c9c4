"""Every input format through the CLI: converted Parquet is bit-identical to libsvm, raw
CSV and Parquet give the same hashed model, names reach export, globs and shuffling."""

import gzip
import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DATA, SAMPLE_TRAIN, assert_same_state, state_arrays

from ftrl_cli.cli import main

CTR = DATA / "ctr"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_converted_parquet_trains_the_same_model(tmp_path):
    gz = tmp_path / "train.svm.gz"
    gz.write_bytes(gzip.compress(SAMPLE_TRAIN.read_bytes()))
    pq = tmp_path / "train.parquet"
    r = run("convert", gz, pq)
    assert r.exit_code == 0, r.output
    for src, d in ((SAMPLE_TRAIN, "svm"), (pq, "pq")):
        assert run("train", src, "-m", tmp_path / d, "-q", "--passes", "2", "--l1", "0.3").exit_code == 0
    assert_same_state(tmp_path / "svm", tmp_path / "pq")
    # and predictions read the Parquet the same way
    a = run("predict", "-m", tmp_path / "svm", SAMPLE_TRAIN).stdout
    b = run("predict", "-m", tmp_path / "svm", pq).stdout
    assert a == b


@pytest.mark.parametrize("codec", ["lz4", "zstd", "snappy", "none"])
def test_convert_compression_codecs(tmp_path, codec):
    import pyarrow.parquet as papq

    pq = tmp_path / "train.parquet"
    args = [] if codec == "lz4" else ["--compression", codec]  # lz4 is the default
    assert run("convert", SAMPLE_TRAIN, pq, *args).exit_code == 0
    md = papq.ParquetFile(pq).metadata
    want = {"lz4": "LZ4", "zstd": "ZSTD", "snappy": "SNAPPY", "none": "UNCOMPRESSED"}[codec]
    assert {md.row_group(0).column(i).compression for i in range(md.num_columns)} == {want}
    for src, d in ((SAMPLE_TRAIN, "svm"), (pq, "pq")):
        assert run("train", src, "-m", tmp_path / d, "-q").exit_code == 0
    assert_same_state(tmp_path / "svm", tmp_path / "pq")


def test_converted_minibatch_resume_also_identical(tmp_path):
    pq = tmp_path / "train.parquet"
    run("convert", SAMPLE_TRAIN, pq)
    common = ["-q", "--batch-size", "16", "--update", "dense", "--checkpoint-every", "1000"]
    run("train", SAMPLE_TRAIN, "-m", tmp_path / "svm", *common)
    run("train", pq, "-m", tmp_path / "pq", *common)
    assert_same_state(tmp_path / "svm", tmp_path / "pq")


@pytest.mark.parametrize("name,label,extra", [
    ("avazu_train_head1000", "click", ["--ignore", "id"]),
    ("talkingdata_head1000", "is_attributed", ["--ignore", "click_time,attributed_time",
                                               "--interactions", "app:channel,app:os"]),
])
def test_csv_and_parquet_give_the_same_hashed_model(tmp_path, name, label, extra):
    csv, pq = CTR / f"{name}.csv", CTR / f"{name}.parquet"
    for src, d in ((csv, "csv"), (pq, "pq")):
        r = run("train", src, "-m", tmp_path / d, "-q", "--label", label, "--bits", "20", *extra)
        assert r.exit_code == 0, r.output
    assert_same_state(tmp_path / "csv", tmp_path / "pq")
    cfg = json.loads((tmp_path / "csv" / "config.json").read_text())
    assert cfg["label_column"] == label and cfg["bits"] == 20
    # predict applies the stored column and hashing settings
    p_csv = run("predict", "-m", tmp_path / "csv", csv).stdout.split()
    p_pq = run("predict", "-m", tmp_path / "csv", pq).stdout.split()
    assert p_csv == p_pq and len(p_csv) == 1000
    # export names hashed features column=value
    names = [line.split("\t")[0] for line in run("export", "-m", tmp_path / "csv").stdout.splitlines()]
    assert names[-1] == "bias"
    assert sum("=" in n for n in names) >= len(names) // 2
    if "--interactions" in extra:
        assert any("^" in n for n in names)


def test_wide_table_beats_nothing(tmp_path):
    """The hashed raw columns learn something real (AUC on the training rows)."""
    csv = CTR / "avazu_train_head1000.csv"
    run("train", csv, "-m", tmp_path / "m", "-q", "--label", "click", "--ignore", "id", "--passes", "3")
    r = json.loads(run("eval", "-m", tmp_path / "m", csv, "--json").stdout)
    assert r["n"] == 1000 and r["auc"] > 0.75


def test_globs_expand_in_order(tmp_path):
    lines = SAMPLE_TRAIN.read_text().splitlines(keepends=True)
    for i in range(3):
        (tmp_path / f"part-{i}.svm").write_text("".join(lines[i * 2000:(i + 1) * 2000]))
    run("train", tmp_path / "part-*.svm", "-m", tmp_path / "glob", "-q")
    run("train", *[tmp_path / f"part-{i}.svm" for i in range(3)], "-m", tmp_path / "list", "-q")
    assert_same_state(tmp_path / "glob", tmp_path / "list")
    r = run("train", tmp_path / "nothing-*.svm", "-m", tmp_path / "x")
    assert r.exit_code == 1 and "no file matches" in r.stderr


def test_shuffle_is_reproducible(tmp_path):
    lines = SAMPLE_TRAIN.read_text().splitlines(keepends=True)
    parts = []
    for i in range(4):
        p = tmp_path / f"p{i}.svm"
        p.write_text("".join(lines[i * 1500:(i + 1) * 1500]))
        parts.append(p)
    for d, seed in (("a", 1), ("b", 1), ("c", 2)):
        run("train", *parts, "-m", tmp_path / d, "-q", "--shuffle", "--seed", seed, "--passes", "2")
    assert_same_state(tmp_path / "a", tmp_path / "b")
    sa, _ = state_arrays(tmp_path / "a")
    sc, _ = state_arrays(tmp_path / "c")
    assert not np.array_equal(sa["st"], sc["st"])


def test_format_mismatch_is_a_clear_error(tmp_path):
    r = run("train", CTR / "avazu_train_head1000.parquet", "-m", tmp_path / "m", "--format", "libsvm")
    assert r.exit_code == 1 and "Parquet" in r.stderr
    r = run("train", CTR / "avazu_train_head1000.parquet", "-m", tmp_path / "m2", "--label", "nope")
    assert r.exit_code == 1 and "nope" in r.stderr and "Traceback" not in r.output


def test_cost_weights_in_text(tmp_path):
    """cost:0 rows teach nothing; cost:W reaches the kernel as the row's weight."""
    lines = SAMPLE_TRAIN.read_text().splitlines()
    weighted = tmp_path / "w.svm"
    weighted.write_text("".join(
        (ln.replace(" ", " cost:0 ", 1) if i % 3 == 0 else ln) + "\n" for i, ln in enumerate(lines)))
    kept = tmp_path / "kept.svm"
    kept.write_text("".join(ln + "\n" for i, ln in enumerate(lines) if i % 3))
    run("train", weighted, "-m", tmp_path / "w", "-q")
    run("train", kept, "-m", tmp_path / "k", "-q")
    sw, _ = state_arrays(tmp_path / "w")
    sk, _ = state_arrays(tmp_path / "k")
    assert np.array_equal(sw["st"], sk["st"]) and np.array_equal(sw["bst"], sk["bst"])
    doubled = tmp_path / "d.svm"
    doubled.write_text("".join(ln.replace(" ", " cost:2 ", 1) + "\n" for ln in lines))
    run("train", doubled, "-m", tmp_path / "d", "-q")
    run("train", SAMPLE_TRAIN, "-m", tmp_path / "one", "-q")
    sd, _ = state_arrays(tmp_path / "d")
    so, _ = state_arrays(tmp_path / "one")
    assert not np.array_equal(sd["st"], so["st"])


def test_shuffled_row_groups_are_reproducible_and_resumable(tmp_path, monkeypatch):
    from ftrl_cli import api, checkpoint
    from ftrl_cli.readers import convert_to_parquet, iter_libsvm

    pq = tmp_path / "rg.parquet"
    convert_to_parquet(iter_libsvm(str(SAMPLE_TRAIN)), str(pq), row_group_rows=500)  # 14 row groups
    over = {"shuffle": True, "seed": 3, "passes": 2, "checkpoint_every": 1000}
    api.train([str(pq)], tmp_path / "a", overrides=over)
    api.train([str(pq)], tmp_path / "b", overrides=over)
    assert_same_state(tmp_path / "a", tmp_path / "b")
    api.train([str(pq)], tmp_path / "plain", overrides={"passes": 2})
    sa, _ = state_arrays(tmp_path / "a")
    sp, _ = state_arrays(tmp_path / "plain")
    assert not np.array_equal(sa["st"], sp["st"])  # the row groups really were reordered
    real, calls = checkpoint.save, []

    def dying(*a, **k):
        calls.append(real(*a, **k))
        if len(calls) == 9:  # in the second pass
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "save", dying)
    with pytest.raises(KeyboardInterrupt):
        api.train([str(pq)], tmp_path / "crash", overrides=over)
    monkeypatch.setattr(checkpoint, "save", real)
    api.train([str(pq)], tmp_path / "crash", resume=True)
    assert_same_state(tmp_path / "crash", tmp_path / "a")


def test_force_replaces_every_file_of_the_old_model(tmp_path):
    csv = CTR / "avazu_train_head1000.csv"
    run("train", csv, "-m", tmp_path / "m", "-q", "--label", "click", "--ignore", "id")
    assert (tmp_path / "m" / "names.tsv").exists()
    (tmp_path / "m" / "notes.txt").write_text("mine")
    run("train", SAMPLE_TRAIN, "-m", tmp_path / "m", "-q", "--force")
    assert not (tmp_path / "m" / "names.tsv").exists()
    assert (tmp_path / "m" / "notes.txt").read_text() == "mine"
    names = [line.split("\t")[0] for line in run("export", "-m", tmp_path / "m").stdout.splitlines()]
    assert all(n.isdigit() for n in names[:-1])
