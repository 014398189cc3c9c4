"""PNG plots: drawn when matplotlib is installed, a clear ConfigError when it is not."""

import sys

import numpy as np
import pytest

from ftrl_cli import plots
from ftrl_cli.errors import ConfigError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def data(seed=0, n=3000):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(float)
    m = 1.5 * rng.normal(size=n) + 2 * y - 1
    return m, y, rng.exponential(size=n)


@pytest.fixture
def mpl():
    return pytest.importorskip("matplotlib")


@pytest.mark.parametrize("weighted", [False, True])
def test_plot_eval_writes_png(mpl, tmp_path, weighted):
    m, y, w = data()
    out = tmp_path / "eval.png"
    assert plots.plot_eval(m, y, out, weights=w if weighted else None) == str(out)
    width, height = png_size(out)
    assert width > 2 * height  # three panels side by side


def test_plot_eval_large_and_one_class(mpl, tmp_path):
    m, y, _ = data(1, n=50_000)  # curves are thinned before drawing
    plots.plot_eval(m, y, tmp_path / "big.png")
    png_size(tmp_path / "big.png")
    plots.plot_eval(m, np.zeros_like(y), tmp_path / "neg.png")  # ROC and PR undefined
    png_size(tmp_path / "neg.png")
    plots.plot_eval(np.empty(0), np.empty(0), tmp_path / "empty.png")
    png_size(tmp_path / "empty.png")


def test_plot_history_writes_png(mpl, tmp_path):
    history = [{"examples": 128 * 2**i, "pass": 1, "train_logloss": 0.7 - 0.02 * i,
                "validation_logloss": (0.72 - 0.02 * i) if i % 3 == 0 else None}
               for i in range(12)]
    out = tmp_path / "history.png"
    assert plots.plot_history(history, str(out)) == str(out)
    png_size(out)


def test_plot_history_tolerates_missing_keys(mpl, tmp_path):
    history = [{"train_logloss": 0.6}, {"examples": 10, "validation_logloss": float("nan")},
               {"examples": 20, "train_logloss": "x"}, {}, "not a dict",
               {"examples": 30, "progressive_logloss": 0.5, "val_logloss": 0.55}]
    plots.plot_history(history, tmp_path / "h.png")
    png_size(tmp_path / "h.png")
    plots.plot_history([], tmp_path / "empty.png")
    png_size(tmp_path / "empty.png")
    plots.plot_history(None, tmp_path / "none.png")
    png_size(tmp_path / "none.png")


def test_missing_matplotlib_says_how_to_install(monkeypatch, tmp_path):
    # None in sys.modules makes `import matplotlib` (and its submodules) raise ImportError,
    # even when another test already imported them
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    m, y, _ = data(n=10)
    for call in (lambda: plots.plot_eval(m, y, tmp_path / "e.png"),
                 lambda: plots.plot_history([{"examples": 1, "train_logloss": 0.5}], tmp_path / "h.png")):
        with pytest.raises(ConfigError) as exc:
            call()
        assert str(exc.value) == "--plot needs matplotlib: pip install 'ftrl-cli[plot]'"
        assert exc.value.exit_code == 2
    assert not list(tmp_path.iterdir())


def test_importing_plots_does_not_import_matplotlib():
    import subprocess

    code = "import sys, ftrl_cli.plots, ftrl_cli.metrics; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
