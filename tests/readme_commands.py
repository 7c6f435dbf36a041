"""params.yaml as one of README's `dvc exp run -S section.key=value ...` commands would make it.

Tests build the model such a command trains (its size is what README promises), so a command that
drifts from params.yaml (an unknown key, a value of the wrong type) fails a test.
"""

from __future__ import annotations

import re
from pathlib import Path

from flowmimic.params import Params, params_from_dict, read_yaml

REPO = Path(__file__).resolve().parents[1]


def readme_command_params(heading: str) -> tuple[Params, list[tuple[str, str]]]:
    """The params of the first ```bash block after `heading` in README, and the (section, key) pairs it set.

    Each override takes the type of the value it replaces in params.yaml (a string stays a string,
    "true"/"false" become booleans, numbers become the old value's int or float).
    """
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split(heading, 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    raw = read_yaml(REPO / "params.yaml")
    overrides = re.findall(r"-S (\w+)\.(\w+)=(\S+)", block)
    for section, key, value in overrides:
        assert key in raw[section], f"README's command sets {section}.{key}, which params.yaml lacks"
        old = raw[section][key]
        if isinstance(old, bool):
            assert value in ("true", "false"), f"{section}.{key}={value}"
            raw[section][key] = value == "true"
        else:
            raw[section][key] = value if isinstance(old, str) else type(old)(float(value))
    return params_from_dict(raw), [(s, k) for s, k, _ in overrides]
