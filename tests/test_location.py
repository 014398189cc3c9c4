"""Inputs at fsspec URLs (issue 15 item 4): a URL reads exactly as the same bytes at a local
path (libsvm, sparse Parquet, CSV; train, predict, eval, --resume's fingerprint, globs), in
parallel runs each partition is read where it is trained (the tasks carry positions, not
bytes), and what cannot be reached is one line. memory:// is per process, so everything
here runs in this process (Dask with processes=False)."""

import io
import os
import pickle

import pytest

from ftrl_cli import api, checkpoint
from ftrl_cli.cli import main
from ftrl_cli.config import Config
from ftrl_cli.errors import ConfigError, DataError
from ftrl_cli.readers import convert_to_parquet, location, open_batches
from ftrl_cli.readers.fingerprint import fingerprint

fsspec = pytest.importorskip("fsspec")
from click.testing import CliRunner  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "data")
A9A = os.path.join(DATA, "a9a_head2000.svm")
A9A_T = os.path.join(DATA, "a9a_t_head500.svm")
AVAZU = os.path.join(DATA, "ctr", "avazu_train_head1000.csv")


@pytest.fixture
def mem():
    """A fresh memory:// directory; the URL of a copy of a local file in it."""
    root = f"memory://t{os.getpid()}_{id(object())}"
    fs = fsspec.filesystem("memory")

    def put(local, name=None, data=None):
        url = f"{root}/{name or os.path.basename(local)}"
        with fsspec.open(url, "wb") as f:
            f.write(data if data is not None else open(local, "rb").read())
        return url

    yield put
    fs.rm(root.replace("memory://", "/"), recursive=True)


def _state(d):
    return checkpoint.load(d)[0].state


@pytest.mark.parametrize("kind", ["libsvm", "parquet", "csv"])
def test_a_url_trains_the_model_its_bytes_train_at_a_local_path(tmp_path, mem, kind):
    over = {"passes": 2}
    if kind == "libsvm":
        local = A9A
    elif kind == "parquet":
        local = str(tmp_path / "a9a.parquet")
        api.convert([A9A], local)
    else:
        local, over = AVAZU, {"label_column": "click", "ignore": ["id"], "bits": 14}
    url = mem(local)
    s_local = api.train([local], tmp_path / "local", overrides={**over, "validation": A9A_T if kind != "csv" else None})
    s_url = api.train([url], tmp_path / "url", overrides={**over, "validation": mem(A9A_T) if kind != "csv" else None})
    assert _state(tmp_path / "local") == _state(tmp_path / "url")
    assert s_local["progressive_logloss"] == s_url["progressive_logloss"] and s_url["examples"] > 0


def test_predict_and_eval_read_urls(tmp_path, mem):
    api.train([A9A], tmp_path / "m")
    url = mem(A9A_T)
    out_local, out_url = io.StringIO(), io.StringIO()
    api.predict(tmp_path / "m", [A9A_T], out_local)
    api.predict(tmp_path / "m", [url], out_url)
    assert out_url.getvalue() == out_local.getvalue() and out_url.getvalue().count("\n") == 500
    assert api.evaluate(tmp_path / "m", [url]) == api.evaluate(tmp_path / "m", [A9A_T])


def test_a_glob_url_expands_sorted(tmp_path, mem):
    data = open(A9A, "rb").read().splitlines(keepends=True)
    urls = [mem(None, f"part-{i}.svm", b"".join(data[i * 500:(i + 1) * 500])) for i in (2, 0, 1)]
    pattern = urls[0].rsplit("/", 1)[0] + "/part-*.svm"
    got = location.expand(pattern)  # (in the filesystem's own spelling: memory:///t... here)
    assert [u.rsplit("/", 1)[1] for u in got] == ["part-0.svm", "part-1.svm", "part-2.svm"]
    assert all(location.is_url(u) and location.exists(u) for u in got) and len(urls) == 3
    s = api.train([pattern], tmp_path / "g")
    local = tmp_path / "ordered.svm"
    local.write_bytes(b"".join(data[:1500]))
    api.train([str(local)], tmp_path / "l")
    assert s["examples"] == 1500 and _state(tmp_path / "g") == _state(tmp_path / "l")


def test_resume_knows_a_url_it_trained_on_and_notices_a_change(tmp_path, mem):
    url = mem(A9A)
    before = fingerprint(url)
    assert before == fingerprint(A9A)  # (the same bytes: the same fingerprint, wherever they are)
    api.train([url], tmp_path / "m")
    again = api.train([url], tmp_path / "m", resume=True)
    assert again["up_to_date"] is True
    data = bytearray(open(A9A, "rb").read())
    data[10] = ord("1") if data[10] != ord("1") else ord("0")  # (same size, a sampled byte changed)
    mem(None, os.path.basename(A9A), bytes(data))
    assert fingerprint(url) != before


@pytest.mark.parametrize("kind", ["libsvm", "parquet"])
def test_threads_on_a_url_give_the_local_model(tmp_path, mem, kind):
    local = A9A
    if kind == "parquet":
        local = str(tmp_path / "a9a.parquet")
        convert_to_parquet(open_batches(A9A, Config()), local, row_group_rows=300)
    url = mem(local)
    over = {"partitions": 3, "merge_every": 300, "passes": 2}
    api.train([local], tmp_path / "local", overrides=over, threads=2)
    api.train([url], tmp_path / "url", overrides=over, threads=2)
    assert _state(tmp_path / "local") == _state(tmp_path / "url")


def test_dask_workers_read_their_own_partitions_of_a_url(tmp_path, mem, monkeypatch):
    distributed = pytest.importorskip("distributed")
    big = open(A9A, "rb").read() * 8  # (2 MB: were bytes funnelled through the driver, tasks would show it)
    url = mem(None, "big.svm", big)
    local = tmp_path / "big.svm"
    local.write_bytes(big)
    sizes = []
    submit = distributed.Client.submit

    def spy(self, fn, task, *args, **kw):
        sizes.append(len(pickle.dumps(task)))
        return submit(self, fn, task, *args, **kw)

    monkeypatch.setattr(distributed.Client, "submit", spy)
    over = {"partitions": 2, "merge_every": 4000}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") \
            as cluster, distributed.Client(cluster) as c:
        api.train([url], tmp_path / "dask", overrides=over, cluster=c)
    api.train([str(local)], tmp_path / "threads", overrides=over, threads=2)
    assert _state(tmp_path / "dask") == _state(tmp_path / "threads")
    assert sizes and max(sizes) < 64 << 10 < len(big), sizes


def test_a_missing_url_is_one_line_exit_1(tmp_path, mem):
    url = mem(A9A).rsplit("/", 1)[0] + "/nothing.svm"
    with pytest.raises(DataError, match=r"nothing\.svm: no such file$"):
        api.train([url], tmp_path / "m")
    r = CliRunner().invoke(main, ["train", url, "-m", str(tmp_path / "m2")])
    assert r.exit_code == 1 and r.output.strip() == f"ftrl: error: {url}: no such file"


def test_an_unknown_protocol_is_one_line_exit_2(tmp_path):
    with pytest.raises(ConfigError, match="nosuchfs:// is not a filesystem fsspec knows"):
        api.train(["nosuchfs://bucket/a.svm"], tmp_path / "m")
    r = CliRunner().invoke(main, ["train", "nosuchfs://bucket/a.svm", "-m", str(tmp_path / "m2")])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1


def test_a_filesystem_whose_package_is_missing_names_it(tmp_path):
    try:
        import s3fs  # noqa: F401
        pytest.skip("s3fs is installed here")
    except ImportError:
        pass
    with pytest.raises(ConfigError, match=r"s3://bucket/a\.svm: .*s3fs"):
        api.train(["s3://bucket/a.svm"], tmp_path / "m")


def test_local_paths_are_not_urls():
    assert location.is_url("s3://b/k") and location.is_url("memory://x") and location.is_url("file:///tmp/x")
    assert not location.is_url("/tmp/x") and not location.is_url("-") and not location.is_url("c:/x")
    assert not location.is_url("data/s3:/x") and not location.is_url("./s3://x")


@pytest.mark.parametrize("args", [
    ["train", A9A, "-m", "s3://bucket/model"],
    ["train", A9A, "-m", "file:///tmp/ftrl-url-model"],
    ["convert", A9A, "file:///tmp/ftrl-url-out.parquet"],
    ["predict", "-m", "MODEL", A9A, "-o", "s3://bucket/p.txt"],
    ["export", "-m", "MODEL", "-o", "gs://bucket/w.tsv"],
    ["eval", "-m", "MODEL", A9A, "--plot", "s3://bucket/p.png"],
])
def test_a_url_as_an_output_is_refused_and_nothing_is_written(tmp_path, monkeypatch, args):
    """Outputs are local: a URL there was written to a local directory named `s3:` (exit 0)."""
    api.train([A9A], tmp_path / "m")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, [str(tmp_path / "m") if a == "MODEL" else a for a in args])
    assert r.exit_code == 2, r.output
    assert "is a local path, not a URL" in r.output or "is written to a local path, not a URL" in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert sorted(os.listdir(tmp_path)) == ["m"]  # (no s3:/, file:/ or gs:/ directory)


def test_a_file_url_is_the_local_path_it_names(tmp_path):
    spaced = tmp_path / "a 9%a.svm"
    spaced.write_bytes(open(A9A, "rb").read())
    url = "file://" + str(spaced).replace("%", "%25").replace(" ", "%20")
    assert location.local_path(url) == str(spaced)
    assert location.local_path("file://localhost" + str(spaced)) == str(spaced)
    assert location.local_path("s3://b/k%20") == "s3://b/k%20" and location.local_path("/tmp/x%20") == "/tmp/x%20"
    api.train([str(spaced)], tmp_path / "local")
    api.train([url], tmp_path / "url")
    assert _state(tmp_path / "local") == _state(tmp_path / "url")
    r = CliRunner().invoke(main, ["eval", "-m", str(tmp_path / "local"), "--per-file", str(spaced), url])
    assert r.exit_code == 2 and "give each file once" in r.stderr, r.stderr
