"""scripts/slurm_cache.sh, simulated locally: a 2-task array and the merge give what one run gives."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flowmimic.cache.jobs import manifest_name
from flowmimic.stages import cache, split

from raw_fixtures import REPO, make_tiny_tree, write_params_file

SCRIPT = REPO / "scripts" / "slurm_cache.sh"


def _files(folder: Path) -> dict[str, bytes]:
    out = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    out.pop(manifest_name(None))          # machine state (file mtimes), outside DVC's hash
    return out


def _run(function: str, params_file: Path, **env: str) -> None:
    """Source the script (functions only) and call one of its functions, as SLURM would run it."""
    full = {**os.environ, "FLOWMIMIC_PARAMS": str(params_file), "PYTHONPATH": str(REPO / "src"), **env,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["bash", "-c", f'source "{SCRIPT}" && {function}'], cwd=REPO, env=full,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_two_task_array_then_merge_equals_one_run(tmp_path):
    params = make_tiny_tree(tmp_path, **{"cache.workers": 1})
    params_file = write_params_file(tmp_path, **{"cache.workers": 1})
    split.main(params)
    for task in ("0", "1"):
        _run("cache_shard", params_file, SLURM_ARRAY_TASK_ID=task, SLURM_ARRAY_TASK_COUNT="2")
    assert sorted(p.name for p in Path(params.cache.dir).glob("index.shard-*")) == [
        "index.shard-0-of-2.json", "index.shard-1-of-2.json"]
    _run("cache_merge", params_file)
    one = params.model_copy(update={"cache": params.cache.model_copy(update={"dir": str(tmp_path / "one")})})
    cache.main(one)
    sharded, single = _files(Path(params.cache.dir)), _files(tmp_path / "one")
    assert sharded == single and len(single) == 1 + 9


def test_a_task_outside_an_array_refuses_to_run(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    proc = subprocess.run(["bash", "-c", f'source "{SCRIPT}" && cache_shard'], cwd=REPO, env=env,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "not an array task" in proc.stderr
