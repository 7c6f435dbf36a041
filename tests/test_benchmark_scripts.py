"""Every quick benchmark script still runs, on tiny settings, and writes a result file.

The scripts call the library as the pipeline does; when the library changes under them (a new
required argument, a renamed field) they break silently until someone re-measures. bench_train did
exactly that once the joint loss came in. Results go to a temp folder: the committed ones are never
touched. The long ones (cache, scale, pipeline: minutes of work) are left to their own runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

TINY = {
    "train": ["--steps", "1", "--max-seconds", "1", "--full-steps", "1", "--full-batch", "1"],
    "overfit": ["--windows", "1", "--max-steps", "1", "--eval-every", "1"],
    "generate": ["--seconds", "3", "--samples", "1", "--sample-seconds", "3", "--repeats", "1"],
    "prior": ["--samples", "1", "--repeats", "1"],
    "export": ["--seconds", "1", "--repeats", "1"],
    "loader": ["--repeats", "1", "--epochs", "1", "--workers", "0"],
    "read": ["--frames", "5", "--repeats", "1"],
    "features": ["--sequences", "2", "--frames", "40", "--repeats", "1"],
    "fk": ["--sequences", "2", "--frames", "20", "--repeats", "1"],
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_the_benchmark_runs_and_writes_its_result_file(name: str, tmp_path: Path) -> None:
    out = tmp_path / f"{name}.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / f"bench_{name}.py"), *TINY[name], "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["benchmark"] == name and doc["figures"], doc
    assert str(out) in doc["command"]                   # the file says how it was made
