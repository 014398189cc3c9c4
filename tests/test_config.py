"""Config is data: a frozen dataclass, JSON round trip, unknown keys and bad values are errors."""

import dataclasses
import json

import pytest

from ftrl_cli.config import FORMAT_VERSION, Config
from ftrl_cli.errors import ConfigError


def test_round_trip_through_json(tmp_path):
    c = Config(alpha=0.3, l1=0.0, bits=18, dtype="float32", bias_l2=0.5, passes=3)
    p = tmp_path / "c.json"
    p.write_text(c.to_json())
    assert Config.from_json_file(p) == c
    d = json.loads(p.read_text())
    assert d["format_version"] == FORMAT_VERSION and d["kind"] == "ftrl-config"
    assert set(Config.field_names()) <= set(d)


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().alpha = 1.0


def test_unknown_keys_name_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) lambda1.*valid keys: alpha"):
        Config.from_dict({"lambda1": 1})


@pytest.mark.parametrize("bad", [
    {"alpha": 0}, {"alpha": -1}, {"beta": -0.1}, {"l1": -1}, {"l2": float("nan")},
    {"lr_power": 0.5}, {"bits": 0}, {"bits": 41}, {"dtype": "float16"},
    {"passes": 0}, {"keep_checkpoints": 0}, {"initial_accumulator": -1}, {"bias_l1": -2},
])
def test_invalid_values(bad):
    with pytest.raises(ConfigError):
        Config(**bad)


@pytest.mark.parametrize("bad", [{"alpha": "0.1"}, {"bits": 2.5}, {"bias": 1}, {"passes": True}])
def test_wrong_json_types(bad):
    with pytest.raises(ConfigError, match="must be"):
        Config.from_dict(bad)


def test_ints_stand_for_floats():
    assert Config.from_dict({"alpha": 1}).alpha == 1.0


def test_newer_format_version(tmp_path):
    with pytest.raises(ConfigError, match="newer"):
        Config.from_dict({"format_version": FORMAT_VERSION + 1})


def test_bad_json_names_the_line(tmp_path):
    p = tmp_path / "c.json"
    p.write_text('{\n "alpha": 0.1,\n}')
    with pytest.raises(ConfigError, match=r"c.json:3: not valid JSON"):
        Config.from_json_file(p)


def test_bias_regularization_defaults_to_features():
    c = Config(l1=0.7, l2=0.2)
    assert (c.resolved_bias_l1, c.resolved_bias_l2) == (0.7, 0.2)
    c = Config(l1=0.7, bias_l1=0.0)
    assert c.resolved_bias_l1 == 0.0
