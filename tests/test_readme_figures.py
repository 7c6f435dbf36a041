"""README's figures are read from the files that produced them.

Every performance or quality figure in README.md is a link into its source,
`[81.0 mm](metrics/eval.json#overall.mpjpe_mm)` or `[139×](benchmarks/results/fk.json#figures.speedup)`:
the link's target is the file (a benchmark's result file, or a metrics file the pipeline writes) and
the fragment a dotted key path in it. This test reads the *current* files: re-running a benchmark
or the pipeline without updating README makes it fail. A figure matches when its file's value,
rounded to the precision README shows, is the number shown (139,000 means the nearest thousand;
81.0 the nearest tenth; integers below 1,000 exactly).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
LINK = re.compile(r"\[([^\]]*)\]\(((?:benchmarks/results|metrics)/[\w.-]+\.json)#([\w.-]+)\)")
NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?")
# A number followed by a unit of speed, memory, time or error: a figure that must come from a file.
BARE_FIGURE = re.compile(r"\d[\d,.]*\s*(?:k\s*)?(?:frames/s|seqs/s|sequences/s|steps/s|windows/s|GFLOP|MB\b|mm\b|"
                         r"minutes\b|min\b|×(?!\s*\d)|x faster)")
RESULT_KEYS = {"benchmark", "command", "date", "machine", "versions", "threads", "load_before", "load_after",
               "config", "repeats", "summary", "figures", "targets"}


def figure_links(text: str) -> list[tuple[str, str, str]]:
    """(shown text, file, key path) of every figure link in `text`."""
    return LINK.findall(text)


def lookup(doc: Any, key_path: str) -> Any:
    """`doc` followed along `key_path` (dict keys; list indices as numbers, e.g. `load_before.0`)."""
    for part in key_path.split("."):
        if isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        elif isinstance(doc, dict) and part in doc:
            doc = doc[part]
        else:
            raise KeyError(f"no key {part!r} on the path {key_path!r}")
    return doc


def shown_number(text: str) -> tuple[float, float]:
    """The first number in `text` and half the unit of its last shown digit (the rounding tolerance)."""
    m = NUMBER.search(text)
    if not m:
        raise ValueError(f"no number in figure text {text!r}")
    s = m.group().replace(",", "")
    mantissa, _, exp = s.lower().partition("e")
    scale = 10.0 ** int(exp) if exp else 1.0
    if "." in mantissa:
        unit = 10.0 ** -len(mantissa.split(".")[1])
    else:
        digits = mantissa.lstrip("+-")
        zeros = len(digits) - len(digits.rstrip("0")) if abs(int(digits)) >= 1000 else 0
        unit = 10.0 ** zeros
    return float(s), 0.5 * unit * scale


def check_figure(text: str, file: str, key_path: str, root: Path = REPO) -> str | None:
    """None when the figure matches its file, else what is wrong."""
    path = root / file
    if not path.is_file():
        return f"{file} does not exist"
    try:
        value = lookup(json.loads(path.read_text(encoding="utf-8")), key_path)
        shown, tol = shown_number(text)
    except (KeyError, ValueError) as e:
        return f"[{text}]({file}#{key_path}): {e}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"[{text}]({file}#{key_path}): the file holds {value!r}, not a number"
    if abs(value - shown) > tol * (1 + 1e-9):
        return f"[{text}]({file}#{key_path}): README shows {shown:g}, the file holds {value!r}"
    return None


def section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else len(text)]


def table_cells(md: str, column: str) -> list[str]:
    """The cells of the column named `column` in every markdown table of `md`."""
    cells, header = [], None
    for line in md.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        row = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = row
        elif not set(line) <= set("|-: ") and column in header and len(row) == len(header):
            cells.append(row[header.index(column)])
    return cells


# ----------------------------------------------------------------------------- the checker itself


@pytest.mark.parametrize("text, value, ok", [
    ("139,000 frames/s", 139_412, True), ("139,000 frames/s", 139_612, False),
    ("81.0 mm", 81.04, True), ("81.0 mm", 81.06, False), ("0.729", 0.7292, True), ("0.73", 0.7292, True),
    ("118 s", 118.4, True), ("118 s", 119, False), ("139×", 139.4, True), ("4.8e-7 m", 4.77e-7, True),
    ("4.8e-7 m", 5.0e-7, False), ("x", 1.0, False),
])
def test_checker_rounds_to_the_shown_precision(tmp_path, text, value, ok):
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "m.json").write_text(json.dumps({"a": {"b": value}, "flag": True}))
    assert (check_figure(text, "metrics/m.json", "a.b", tmp_path) is None) == ok
    assert check_figure("1", "metrics/m.json", "flag", tmp_path) is not None          # not a number
    assert check_figure("1", "metrics/m.json", "a.c", tmp_path) is not None           # no such key
    assert check_figure("1", "metrics/none.json", "a", tmp_path) is not None          # no such file


def test_checker_finds_links_and_bare_figures():
    md = "| what | figure |\n|---|---|\n| fk | [139×](benchmarks/results/fk.json#figures.speedup) |\n| x | 5 MB |\n"
    assert figure_links(md) == [("139×", "benchmarks/results/fk.json", "figures.speedup")]
    assert table_cells(md, "figure") == ["[139×](benchmarks/results/fk.json#figures.speedup)", "5 MB"]
    assert BARE_FIGURE.search(LINK.sub("", md)).group() == "5 MB"


# ----------------------------------------------------------------------------- README


def test_every_linked_figure_matches_its_file():
    text = README.read_text(encoding="utf-8")
    links = figure_links(text)
    assert len(links) >= 20, "README's figures are expected as links into result / metrics files"
    files = {f for _, f, _ in links}
    assert any(f.startswith("metrics/") for f in files) and any(f.startswith("benchmarks/") for f in files)
    problems = [p for link in links if (p := check_figure(*link))]
    assert not problems, "README figures that differ from their files:\n" + "\n".join(problems)


def test_no_figure_outside_a_link():
    """Outside links README carries no speed, memory, time or error figure, and the performance
    table's figure and target columns hold no number at all."""
    text = README.read_text(encoding="utf-8")
    bare = [m.group() for m in BARE_FIGURE.finditer(LINK.sub("", text))]
    assert not bare, f"figures in README that no file backs: {bare}"
    perf = section(text, "Performance")
    cells = table_cells(perf, "figure") + table_cells(perf, "target")
    assert len(cells) >= 8
    unlinked = [c for c in cells if re.search(r"\d", LINK.sub("", c))]
    assert not unlinked, f"numbers in the performance table that are not links: {unlinked}"


def test_targets_say_whether_they_were_met():
    """A target cell says "met" or "missed", as its result file records for the linked target."""
    perf = section(README.read_text(encoding="utf-8"), "Performance")
    targets = [c for c in table_cells(perf, "target") if LINK.search(c)]
    assert targets
    for cell in targets:
        _, file, key = LINK.search(cell).groups()
        met = lookup(json.loads((REPO / file).read_text(encoding="utf-8")), key.rsplit(".", 1)[0] + ".met")
        said = re.search(r"\b(met|missed)\b", LINK.sub("", cell))
        assert said and (said.group(1) == "met") == met, (cell, met)


def test_result_files_say_where_and_how_they_were_measured():
    results = sorted((REPO / "benchmarks" / "results").glob("*.json"))
    assert results
    for path in results:
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert RESULT_KEYS <= set(doc), (path.name, RESULT_KEYS - set(doc))
        assert doc["machine"]["cpu_model"] and doc["machine"]["cores"] >= 1 and doc["versions"]["torch"]
        assert len(doc["load_before"]) == len(doc["load_after"]) == 3
        for name, runs in doc["repeats"].items():
            assert runs and doc["summary"][name] == {"min": min(runs), "median": sorted(runs)[(len(runs) - 1) // 2]
                                                     if len(runs) % 2 else (sorted(runs)[len(runs) // 2 - 1]
                                                                            + sorted(runs)[len(runs) // 2]) / 2}
        for name, t in doc["targets"].items():
            value = doc["figures"][name]
            assert t["met"] == ((value >= t.get("min", -math.inf)) and (value <= t.get("max", math.inf))), (path.name, name)
