"""params.yaml loading: the committed file is valid; typos, missing keys and bad values fail clearly."""

from __future__ import annotations

import copy

import pytest
import yaml

from flowmimic.errors import ConfigError
from flowmimic.params import load_params, params_from_dict, read_yaml

from raw_fixtures import REPO

RAW = read_yaml(REPO / "params.yaml")


def _with(change):
    raw = copy.deepcopy(RAW)
    change(raw)
    return raw


def test_committed_params_load():
    p = load_params(REPO / "params.yaml")
    assert p.data.fps == 20 and p.features.feet_threshold == 0.002 and p.validate_.metrics == "metrics/data.json"
    with pytest.raises(Exception):
        p.train.d_z = 3                         # frozen


@pytest.mark.parametrize("change, message", [
    (lambda r: r["train"].update(dz=128), r"train\.dz: unknown key"),
    (lambda r: r["stats"].pop("min_std"), r"stats\.min_std: missing key"),
    (lambda r: r["train"].update(d_z=0), r"train\.d_z: Input should be greater than 0"),
    (lambda r: r["train"].update(d_z="big"), r"train\.d_z: Input should be a valid integer"),
    (lambda r: r["train"].update(n_heads=5), r"divisible by train\.n_heads"),
    (lambda r: r["data"]["aist"].update(axis_remap=[[-1, 0, 0], [0, 1, 0], [0, 0, 1]]), r"mirrors the body"),
    (lambda r: r["data"]["mvh"].update(performer_regex="(?P<x>.+)"), r"named group"),
    (lambda r: r["data"].update(joints_backend="smplx"), r"needs data\.smpl_model_dir"),
    (lambda r: r.update(extra_section={}), r"extra_section: unknown key"),
])
def test_bad_params_name_file_and_key(change, message):
    with pytest.raises(ConfigError, match=message) as e:
        params_from_dict(_with(change), "params.yaml")
    assert str(e.value).startswith("params.yaml: ")


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "p.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)


def test_cli_reports_config_errors_without_traceback(tmp_path, caplog):
    from flowmimic.cli import main

    bad = tmp_path / "p.yaml"
    bad.write_text(yaml.safe_dump(_with(lambda r: r["split"].update(seed=-1))))
    assert main(["split", "--params", str(bad)]) == 2
    assert "split.seed" in caplog.text
