"""Results appear whole or not at all (hypnerf_ns/files.py, used by every writer)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hypnerf_ns.files import atomic_output, write_text_atomic


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out" / "mesh.ply"
    write_text_atomic(target, "first")
    with pytest.raises(RuntimeError), atomic_output(target) as temporary:
        assert temporary.parent == target.parent and temporary.suffix == ".ply" and temporary != target
        temporary.write_text("half of the sec")
        raise RuntimeError("the writer fails halfway")
    assert target.read_text() == "first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["mesh.ply"]

    with atomic_output(target) as temporary:
        temporary.write_text("second")
        assert target.read_text() == "first", "the target changes only when the write is complete"
    assert target.read_text() == "second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["mesh.ply"]
