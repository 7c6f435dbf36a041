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
    (lambda r: r["prior"].update(n_heads=5), r"prior\.d_model \(96\) must be divisible by prior\.n_heads \(5\)"),
    (lambda r: r["classifier"].update(d_model=6, n_heads=2), r"classifier\.d_model \(6\) .* into even head sizes"),
    (lambda r: r["prior"].update(kernel=2), r"prior\.kernel and prior\.out_kernel must be odd"),
    (lambda r: r["prior"].pop("live_dir"), r"prior\.live_dir: missing key"),
    (lambda r: r["classifier"].update(resume=True), r"classifier\.resume: unknown key"),
    (lambda r: r["data"]["aist"].update(axis_remap=[[-1, 0, 0], [0, 1, 0], [0, 0, 1]]), r"mirrors the body"),
    (lambda r: r["data"]["mvh"].update(performer_regex="(?P<x>.+)"), r"named group"),
    (lambda r: r["data"].update(joints_backend="smplx"), r"needs data\.smpl_model_dir"),
    (lambda r: r.update(extra_section={}), r"extra_section: unknown key"),
])
def test_bad_params_name_file_and_key(change, message):
    with pytest.raises(ConfigError, match=message) as e:
        params_from_dict(_with(change), "params.yaml")
    assert str(e.value).startswith("params.yaml: ")


@pytest.mark.parametrize("change, message", [
    (lambda r: r["train"].update(lr="0.001"), r"train\.lr: Input should be a valid number \(got '0\.001'\)"),
    (lambda r: r["train"].update(epochs=True), r"train\.epochs: Input should be a valid integer \(got True\)"),
    (lambda r: r["train"].update(epochs=2.0), r"train\.epochs: Input should be a valid integer"),
    (lambda r: r["train"].update(style_head="yes"), r"train\.style_head: Input should be a valid boolean"),
    (lambda r: r["train"].update(style_head=1), r"train\.style_head: Input should be a valid boolean \(got 1\)"),
    (lambda r: r["train"].update(lr=float("inf")), r"train\.lr: Input should be a finite number"),
    (lambda r: r["stats"].update(min_std=float("nan")), r"stats\.min_std: Input should be a finite number"),
    (lambda r: r["data"].update(zup_to_yup=[[-1, 0, 0], [0, 0, "1"], [0, 1, 0]]), r"data\.zup_to_yup\.1\.2: "),
    (lambda r: r["cache"].update(workers="2"), r"cache\.workers: Input should be a valid integer"),
    (lambda r: r["data"].update(aist_root=3), r"data\.aist_root: Input should be a valid string"),
    (lambda r: r["train"].update(nproc_per_node=0), r"train\.nproc_per_node: Input should be greater than 0"),
    (lambda r: r["train"].update(threads=0), r"train\.threads: Input should be greater than 0"),
])
def test_strict_types(change, message):
    with pytest.raises(ConfigError, match=message) as e:
        params_from_dict(_with(change), "params.yaml")
    assert str(e.value).startswith("params.yaml: ") and "\n" not in str(e.value)


def test_int_accepted_where_a_float_is_expected():
    p = params_from_dict(_with(lambda r: r["train"].update(lr=1)), "params.yaml")
    assert p.train.lr == 1.0 and isinstance(p.train.lr, float)


# train.lr's line as written in params.yaml (the first `  lr:` after `train:`).
_TEXT = (REPO / "params.yaml").read_text()
TRAIN_LR = f"  lr: {read_yaml(REPO / 'params.yaml')['train']['lr']}"
assert _TEXT.find(TRAIN_LR, _TEXT.index("\ntrain:")) >= 0


def _load_text(tmp_path, old: str, new: str):
    text = (REPO / "params.yaml").read_text()
    assert old in text
    start = text.index("\ntrain:") if old.split(":")[0].strip() in RAW["train"] else 0     # the train section's key
    at = text.index(old, start)
    path = tmp_path / "params.yaml"
    path.write_text(text[:at] + new + text[at + len(old):])
    return load_params(path)


@pytest.mark.parametrize("value, expected", [("1e-3", 0.001), ("1.5E+2", 150.0), ("2", 2.0), (".5", 0.5)])
def test_yaml_12_floats(tmp_path, value, expected):
    # PyYAML's YAML 1.1 reads `1e-3` (no dot) as a string; DVC writes such values on `exp run -S`
    assert _load_text(tmp_path, TRAIN_LR, f"  lr: {value}").train.lr == expected


@pytest.mark.parametrize("old, new, message", [
    (TRAIN_LR, '  lr: "0.001"', r"train\.lr: Input should be a valid number"),
    (TRAIN_LR, "  lr: .inf", r"train\.lr: Input should be a finite number"),
    (TRAIN_LR, "  lr: .NaN", r"train\.lr: Input should be a finite number"),
    (f"  epochs: {RAW['train']['epochs']}", "  epochs: true", r"train\.epochs: Input should be a valid integer"),
    ("  style_head: true", "  style_head: yes", r"train\.style_head: Input should be a valid boolean \(got 'yes'\)"),
    ("  style_head: true", "  style_head: 1", r"train\.style_head: Input should be a valid boolean"),
    ("  nproc_per_node: 1", "  nproc_per_node: 0", r"train\.nproc_per_node: Input should be greater than 0"),
    (TRAIN_LR, "  lr: 0.001\n  lr: 0.002", r"train\.lr: duplicate key \(lines \d+ and \d+\)"),
    ("cache:\n", "cache:\n  workers: 4\n", r"cache\.workers: duplicate key"),
])
def test_file_values_checked_before_work(tmp_path, old, new, message):
    with pytest.raises(ConfigError, match=message) as e:
        _load_text(tmp_path, old, new)
    assert str(e.value).startswith(f"{tmp_path / 'params.yaml'}: ") and "\n" not in str(e.value)


def test_yaml_12_ints_and_strings(tmp_path):
    p = _load_text(tmp_path, "  seed: 0\n  device", "  seed: 010\n  device")     # YAML 1.1: octal 8
    assert p.train.seed == 10


def test_cli_bad_params_exit_nonzero_before_any_work(tmp_path, caplog):
    from flowmimic.cli import main

    text = (REPO / "params.yaml").read_text().replace("  nproc_per_node: 1", "  nproc_per_node: 0", 1)
    path = tmp_path / "params.yaml"
    path.write_text(text)
    assert main(["train", "--params", str(path)]) == 2
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "train.nproc_per_node" in errors[0].getMessage()
    assert "\n" not in errors[0].getMessage()
    assert not (tmp_path / "models").exists() and not (tmp_path / "dvclive").exists()


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
