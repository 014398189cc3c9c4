"""Other libraries' optimizer configs: what maps where, and what is refused (and how)."""

import json

import pytest
from click.testing import CliRunner
from conftest import SAMPLE_TRAIN

from ftrl_cli.cli import main
from ftrl_cli.errors import ConfigError
from ftrl_cli.external import from_keras, from_mxnet, from_novograd

KERAS = {"name": "ftrl", "learning_rate": 0.05000000074505806, "learning_rate_power": -0.5,
         "initial_accumulator_value": 0.1, "l1_regularization_strength": 0.01,
         "l2_regularization_strength": 0.02, "l2_shrinkage_regularization_strength": 0.0, "beta": 0.0,
         "weight_decay": None, "clipnorm": None, "global_clipnorm": None, "clipvalue": None,
         "use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
         "loss_scale_factor": None, "gradient_accumulation_steps": None}


def test_keras_mapping():
    s = from_keras(KERAS)
    assert s["l2"] == 0.04  # paper l2 = 2 x Keras l2
    assert s["alpha"] == KERAS["learning_rate"] and s["update"] == "dense"
    assert s["initial_accumulator"] == float(__import__("numpy").float32(0.1))
    assert from_keras({"class_name": "Ftrl", "config": KERAS}) == s


@pytest.mark.parametrize("key,value,words", [
    ("l1_regularization_strength", -1, "`l1_regularization_strength` needs to be positive or zero"),
    ("learning_rate_power", 0.5, "`learning_rate_power` needs to be negative or zero"),
    ("initial_accumulator_value", -0.1, "needs to be positive or zero"),
    ("gradient_accumulation_steps", 1, "must be an integer >= 2"),
    ("momentum", 0.9, "unknown key(s) momentum"),
    ("decay", 0.01, "legacy 'decay'"),
])
def test_keras_refusals(key, value, words):
    with pytest.raises(ConfigError) as e:
        from_keras(dict(KERAS, **{key: value}))
    assert words in str(e.value)


def test_keras_two_clips_refused():
    with pytest.raises(ConfigError, match="only one of"):
        from_keras(dict(KERAS, clipnorm=1.0, clipvalue=0.5))


def test_keras_ema():
    s = from_keras(dict(KERAS, use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=3))
    assert (s["ema_momentum"], s["ema_overwrite_frequency"]) == (0.9, 3)
    with pytest.raises(ConfigError, match="ema_momentum"):
        from_keras(dict(KERAS, use_ema=True, ema_momentum=1.5))


def test_other_class_refused():
    with pytest.raises(ConfigError, match="'Adam' is not"):
        from_keras({"class_name": "Adam", "config": {}})


def test_mxnet_and_novograd_mapping():
    m = from_mxnet({"learning_rate": 0.1, "lamda1": 0.01, "beta": 1.0, "wd": 0.001, "rescale_grad": 1.0,
                    "clip_gradient": 5.0})
    assert m["update"] == "lazy" and m["clipvalue"] == 5.0 and m["lr_power"] == -0.5
    assert abs(m["l2"] - 0.001) < 1e-10
    assert from_mxnet({"clip_gradient": -1.0})["clipvalue"] is None
    with pytest.raises(ConfigError, match="unknown key"):
        from_mxnet({"momentum": 0.9})
    n = from_novograd({"learning_rate": 0.01, "beta_1": 0.95, "amsgrad": True, "epsilon": 0})
    assert n["optimizer"] == "novograd" and n["amsgrad"] and n["epsilon"] == 1e-7
    with pytest.raises(ConfigError, match="Weight decay rate cannot be negative"):
        from_novograd({"weight_decay": -1})


def test_cli_flags_override_the_file(tmp_path):
    f = tmp_path / "keras.json"
    f.write_text(json.dumps(KERAS))
    r = CliRunner().invoke(main, ["train", str(SAMPLE_TRAIN), "-m", str(tmp_path / "m"), "-q",
                                  "--keras-optimizer", str(f), "--batch-size", "32", "--l1", "0"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["update"] == "dense" and cfg["batch_size"] == 32 and cfg["l1"] == 0.0 and cfg["l2"] == 0.04
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dict(KERAS, l2_regularization_strength=-2)))
    r = CliRunner().invoke(main, ["train", str(SAMPLE_TRAIN), "-m", str(tmp_path / "b"),
                                  "--keras-optimizer", str(bad)])
    assert r.exit_code == 2 and "needs to be positive or zero" in r.stderr
