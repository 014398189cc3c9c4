import os
import pathlib

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SAMPLE_TRAIN = ROOT / "sample_data" / "agaricus.txt.train"
SAMPLE_TEST = ROOT / "sample_data" / "agaricus.txt.test"
DATA = ROOT / "tests" / "data"


@pytest.fixture
def sample_train():
    return str(SAMPLE_TRAIN)


@pytest.fixture
def sample_test():
    return str(SAMPLE_TEST)


def state_arrays(model_dir):
    """The newest checkpoint's arrays, for bit-for-bit comparisons."""
    from ftrl_cli import checkpoint

    model, log = checkpoint.load(os.fspath(model_dir), resume=True)  # (a killed run: its newest)
    return {"st": model.st, "bst": model.bst, "ls": model.ls, "alias": model.alias,
            "iterations": np.array(model.iterations)}, log.to_json()


def assert_same_state(dir_a, dir_b):
    a, meta_a = state_arrays(dir_a)
    b, meta_b = state_arrays(dir_b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert np.array_equal(a[k], b[k]), f"{k} differs"
    assert meta_a["examples_seen"] == meta_b["examples_seen"]
