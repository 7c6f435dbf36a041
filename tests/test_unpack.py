"""The MVHumanNet archive unpacker: verified, resumable, never half a folder."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from flowmimic.cli import main
from flowmimic.sources.unpack import unpack_archives


def _archive(path: Path, files: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_unpack_verifies_resumes_and_merges(tmp_path):
    arch, dest = tmp_path / "archives", tmp_path / "mvh"
    big = bytes(range(256)) * 400
    _archive(arch / "a.tar.gz", {"part_01/100001_01/smpl_param/0000.pkl": big, "part_01/100001_01/smpl_param/0005.pkl": b"y"})
    _archive(arch / "b.tar.gz", {"part_01/100002_01/smpl_param/0000.pkl": b"z"})
    broken = _archive(arch / "c.tar.gz", {"part_02/100003_01/smpl_param/0000.pkl": big})
    broken.write_bytes(broken.read_bytes()[: len(broken.read_bytes()) // 2])
    _archive(arch / "evil.tar.gz", {"../escape.txt": b"x"})

    report = unpack_archives(arch, dest, workers=2)
    assert sorted(report.done) == ["a.tar.gz", "b.tar.gz"] and set(report.failed) == {"c.tar.gz", "evil.tar.gz"}
    assert (dest / "part_01/100001_01/smpl_param/0000.pkl").read_bytes() == big      # merged into one part folder
    assert (dest / "part_01/100002_01/smpl_param/0000.pkl").read_bytes() == b"z"
    assert not (dest / "part_02").exists() and not (tmp_path / "escape.txt").exists()
    assert not (dest / ".partial").exists()

    _archive(arch / "c.tar.gz", {"part_02/100003_01/smpl_param/0000.pkl": big})      # re-downloaded
    (arch / "evil.tar.gz").unlink()
    again = unpack_archives(arch, dest, workers=1)
    assert again.ok and again.done == ["c.tar.gz"] and sorted(again.skipped) == ["a.tar.gz", "b.tar.gz"]
    assert (dest / "part_02/100003_01/smpl_param/0000.pkl").read_bytes() == big


def test_unpack_cli_exit_code(tmp_path, capsys):
    arch = tmp_path / "archives"
    bad = _archive(arch / "x.tar.gz", {"p/s/smpl_param/0000.pkl": b"1" * 5000})
    bad.write_bytes(bad.read_bytes()[:20])
    assert main(["unpack-mvh", str(arch), str(tmp_path / "out")]) == 1
    assert "FAILED x.tar.gz" in capsys.readouterr().out
