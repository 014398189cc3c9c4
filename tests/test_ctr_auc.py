"""Raw CTR columns (CSV/TSV and wide Parquet) reach the AUC of the hashed libsvm made from
the same rows (Criteo and Avazu samples, train -> test)."""

import gzip
import json

import pytest
from click.testing import CliRunner
from conftest import DATA

from ftrl_cli.cli import main

CTR = DATA / "ctr_full"


def run(*args):
    r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r


def auc(model, path, *extra):
    return json.loads(run("eval", "-m", model, path, "--json", *extra).stdout)["auc"]


def to_parquet(src, dst, **csv_kw):
    pa_csv = pytest.importorskip("pyarrow.csv")
    import pyarrow.parquet as pq

    with gzip.open(src, "rb") as f:
        table = pa_csv.read_csv(f, **csv_kw)
    pq.write_table(table, dst)


CRITEO_NUM = ",".join(f"f{i}" for i in range(1, 14))
CRITEO = ["--no-header", "--label", "f0", "--numeric", CRITEO_NUM, "--categorical", "*", "--numeric-as", "logsq"]


def test_criteo_raw_tsv_and_parquet_match_the_hashed_libsvm(tmp_path):
    pa_csv = pytest.importorskip("pyarrow.csv")
    run("train", CTR / "criteo_train.hashed.libsvm.gz", "-m", tmp_path / "svm", "-q", "--bits", "20")
    ref = auc(tmp_path / "svm", CTR / "criteo_test.hashed.libsvm.gz")
    run("train", CTR / "criteo_train.tsv.gz", "-m", tmp_path / "tsv", "-q", "--bits", "20", *CRITEO)
    raw = auc(tmp_path / "tsv", CTR / "criteo_test.tsv.gz")
    assert abs(raw - ref) <= 0.01, (raw, ref)
    opts = dict(read_options=pa_csv.ReadOptions(autogenerate_column_names=True),
                parse_options=pa_csv.ParseOptions(delimiter="\t"))
    to_parquet(CTR / "criteo_train.tsv.gz", tmp_path / "train.parquet", **opts)
    to_parquet(CTR / "criteo_test.tsv.gz", tmp_path / "test.parquet", **opts)
    run("train", tmp_path / "train.parquet", "-m", tmp_path / "pq", "-q", "--bits", "20", *CRITEO[1:])
    wide = auc(tmp_path / "pq", tmp_path / "test.parquet")
    assert abs(wide - ref) <= 0.01, (wide, ref)
    assert ref > 0.70


def test_avazu_raw_csv_and_parquet_match_the_hashed_libsvm(tmp_path):
    run("train", CTR / "avazu_train.hashed.libsvm.gz", "-m", tmp_path / "svm", "-q", "--bits", "20")
    ref = auc(tmp_path / "svm", CTR / "avazu_test.hashed.libsvm.gz")
    common = ["--label", "click", "--ignore", "id", "--bits", "20"]
    run("train", CTR / "avazu_train.csv.gz", "-m", tmp_path / "csv", "-q", *common)
    with gzip.open(CTR / "avazu_train.csv.gz", "rt") as f:
        header = f.readline().strip()
    raw = auc(tmp_path / "csv", CTR / "avazu_test.csv.gz", "--no-header", "--columns", header)
    assert abs(raw - ref) <= 0.01, (raw, ref)
    to_parquet(CTR / "avazu_train.csv.gz", tmp_path / "train.parquet")
    run("train", tmp_path / "train.parquet", "-m", tmp_path / "pq", "-q", *common)
    pa_csv = pytest.importorskip("pyarrow.csv")
    to_parquet(CTR / "avazu_test.csv.gz", tmp_path / "test.parquet",
               read_options=pa_csv.ReadOptions(column_names=header.split(",")))
    wide = auc(tmp_path / "pq", tmp_path / "test.parquet")
    assert abs(wide - ref) <= 0.01, (wide, ref)
    assert ref > 0.70
