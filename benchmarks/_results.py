"""The result file every benchmark writes: `benchmarks/results/<name>.json`.

README's performance figures are links into these files (`[figure](benchmarks/results/<name>.json#figures.<key>)`)
and `tests/test_readme_figures.py` checks each link against its file, so a figure cannot drift from
the run that produced it. A file records when and where it was measured and how busy the machine was:

    benchmark, command, date (UTC, ISO 8601), machine {cpu_model, cores, platform, gpu}, versions
    {python, torch, numpy}, threads (torch intra-op threads of the timed process), load_before /
    load_after (1/5/15-minute load averages), config (the script's options), repeats {name: [every
    run]}, summary {name: {min, median}}, figures {key: the numbers README quotes}, targets {key:
    {min or max, met}}.

This module imports neither torch nor flowmimic (`bench_cache.py` measures its children's peak
memory and must not inherit torch's): versions come from the installed package metadata.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Sequence

RESULTS = Path(__file__).resolve().parent / "results"
REPO = RESULTS.parents[1]


def load_average() -> list[float]:
    """The 1, 5 and 15-minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def machine(gpu: str | None = None) -> dict[str, Any]:
    """CPU model, logical cores, platform and (when the benchmark used one) the GPU's name."""
    return {"cpu_model": _cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(), "gpu": gpu}


def _plain(value: Any) -> Any:
    """Paths inside the repository as relative paths (the file must not depend on the checkout's location)."""
    if isinstance(value, Path):
        return value.resolve().relative_to(REPO).as_posix() if value.resolve().is_relative_to(REPO) else str(value)
    return value


def summary(values: Sequence[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values)}


def target(value: float, *, min: float | None = None, max: float | None = None) -> dict[str, Any]:
    """A target the benchmark reports against (never asserted in unit tests)."""
    met = (min is None or value >= min) and (max is None or value <= max)
    return {k: v for k, v in (("min", min), ("max", max)) if v is not None} | {"met": bool(met)}


def save(name: str, *, config: dict[str, Any], threads: int | None, load_before: list[float],
         repeats: dict[str, list[float]], figures: dict[str, Any], targets: dict[str, Any] | None = None,
         gpu: str | None = None, out: Path | None = None) -> Path:
    """Write `benchmarks/results/<name>.json` (or `out`) atomically and return its path."""
    doc = {
        "benchmark": name,
        "command": " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(gpu),
        "versions": {"python": platform.python_version(), "torch": _version("torch"), "numpy": _version("numpy")},
        "threads": threads,
        "load_before": load_before,
        "load_after": load_average(),
        "config": {k: _plain(v) for k, v in config.items()},
        "repeats": repeats,
        "summary": {k: summary(v) for k, v in repeats.items() if v},
        "figures": figures,
        "targets": targets or {},
    }
    path = out or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=1, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    print(f"results: {path}")
    return path
