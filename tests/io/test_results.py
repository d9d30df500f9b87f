"""Writing output files atomically: a failure leaves the previous files, and no temporary one."""

from __future__ import annotations

from pathlib import Path

import pytest

from taxopost.errors import InputError
from taxopost.io.results import write_files_atomically


def test_write_files_atomically_writes_all_or_none(tmp_path, monkeypatch):
    a, b = tmp_path / "a.json", tmp_path / "b.png"
    a.write_text("old a")
    (tmp_path / "c").mkdir()
    with pytest.raises(InputError, match=r"--output-dir=.*c': is a folder"):
        write_files_atomically({a: "new a", tmp_path / "c": b"x"}, field="--output-dir")
    write_bytes = Path.write_bytes

    def full_disk(path, data):
        if path.name.startswith(".b.png."):
            raise OSError(28, "No space left on device")
        return write_bytes(path, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    with pytest.raises(InputError, match=r"b\.png': cannot be written \(No space left on device\)"):
        write_files_atomically({a: "new a", b: b"png"}, field="--output-dir")
    assert a.read_text() == "old a" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "c"]
    monkeypatch.undo()
    write_files_atomically({a: "new a", b: b"png"})
    assert a.read_text() == "new a" and b.read_bytes() == b"png"
