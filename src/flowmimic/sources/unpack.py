"""Unpack MVHumanNet's per-outfit `.tar.gz` archives into the dataset root (the seed's decompress script).

Parallel (one process per archive, `workers` at a time), resumable (a marker per finished archive
records its size and mtime; finished archives are skipped), verified (extraction reads every byte,
so a truncated or corrupted archive fails its gzip/tar checks; members that would escape the
destination are refused by tarfile's 'data' filter), and never leaves half a folder: each archive is
extracted into `<dest>/.partial/<archive>/` and only then moved into place, entry by entry with
renames; a crash leaves only `.partial/`, cleaned on the next run.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)
MARKERS = ".unpacked"
PARTIAL = ".partial"


@dataclass
class UnpackReport:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)          # finished in an earlier run
    failed: dict[str, str] = field(default_factory=dict)      # archive -> reason

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        lines = [f"unpacked {len(self.done)}, already done {len(self.skipped)}, failed {len(self.failed)}"]
        lines += [f"  FAILED {name}: {why}" for name, why in sorted(self.failed.items())]
        return "\n".join(lines)


def _stamp(archive: Path) -> str:
    st = archive.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def _marker(dest: Path, archive: Path) -> Path:
    return dest / MARKERS / f"{archive.name}.done"


def _merge_into(src: Path, dst: Path) -> None:
    """Move every entry of `src` into `dst` by rename, merging folders that already exist."""
    for entry in sorted(src.iterdir()):
        target = dst / entry.name
        if entry.is_dir() and target.is_dir():
            _merge_into(entry, target)
        else:
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(entry, target)


def unpack_one(archive: Path, dest: Path) -> None:
    """Extract one archive (raises on any corruption) and move it into `dest`, then mark it done."""
    work = dest / PARTIAL / archive.name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()                 # reads the whole archive: truncation fails here
            tar.extractall(work, filter="data")
        n_files = sum(1 for p in work.rglob("*") if p.is_file())
        expected = sum(1 for m in members if m.isfile())
        if n_files != expected:
            raise OSError(f"extracted {n_files} files, the archive lists {expected}")
        _merge_into(work, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    marker = _marker(dest, archive)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(_stamp(archive))


def _worker(args: tuple[Path, Path]) -> tuple[str, str | None]:
    archive, dest = args
    try:
        unpack_one(archive, dest)
        return archive.name, None
    except (OSError, tarfile.TarError, EOFError) as e:
        return archive.name, f"{type(e).__name__}: {e}"


def unpack_archives(archives_dir: str | Path, dest: str | Path, workers: int = 2) -> UnpackReport:
    """Unpack every `*.tar.gz` in `archives_dir` into `dest` (see the module docstring)."""
    archives_dir, dest = Path(archives_dir), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(dest / PARTIAL, ignore_errors=True)  # leftovers of a crashed run
    report = UnpackReport()
    todo = []
    for archive in sorted(archives_dir.glob("*.tar.gz")):
        marker = _marker(dest, archive)
        if marker.is_file() and marker.read_text() == _stamp(archive):
            report.skipped.append(archive.name)
        else:
            todo.append((archive, dest))
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        for name, error in pool.map(_worker, todo):
            if error is None:
                report.done.append(name)
                log.info("unpacked %s", name)
            else:
                report.failed[name] = error
                log.error("failed to unpack %s: %s", name, error)
    shutil.rmtree(dest / PARTIAL, ignore_errors=True)
    return report
