"""The output folder: atomic writes that respect the umask, a full disk reported without partial files, claims
that let two runs share one folder, and skipped.txt."""
from __future__ import annotations

import errno
import os
import stat

import pytest
from PIL import Image

from stylex.data import outputs
from stylex.data.outputs import OutputStore, atomic_write_bytes, write_skipped
from stylex.errors import WriteError


@pytest.fixture
def umask():
    before = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(before)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_get_the_permissions_of_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    atomic_write_bytes(tmp_path / "a.json", b"{}")
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == mode


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the umask from Linux's /proc")
def test_the_umask_is_read_without_changing_it(umask, monkeypatch):
    """Setting the umask to read it would briefly change it for every thread of the process."""
    umask(0o027)
    monkeypatch.setattr(os, "umask", lambda mask: pytest.fail("the umask was changed to be read"))
    assert outputs.current_umask() == 0o027 and outputs.new_file_mode() == 0o640


def test_a_full_disk_leaves_finished_files_intact_and_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "images" / "a__b.png"
    atomic_write_bytes(target, b"finished")

    def disk_full(fd, data):
        os.write(fd, data[:3])  # part of the bytes made it before the disk filled
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs, "write_all", disk_full)
    full = rf"no space left on the disk holding {tmp_path / 'images'} \(writing a__b.png\)"
    with pytest.raises(WriteError, match=full):
        atomic_write_bytes(target, b"a newer version")
    with pytest.raises(WriteError, match="run the same command again"):
        atomic_write_bytes(tmp_path / "images" / "c__d.png", b"new")
    assert target.read_bytes() == b"finished"
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["a__b.png"]


def test_a_folder_that_cannot_be_created_is_a_write_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(WriteError, match=r"file/images/x.png cannot be written"):
        atomic_write_bytes(tmp_path / "file" / "images" / "x.png", b"")


def test_outputs_and_overlays_go_to_their_own_folders(tmp_path):
    store = OutputStore(tmp_path)
    store.write("g0__s0", Image.new("RGB", (8, 8)), {"item_hash": "h"}, {"regions-content": Image.new("RGB", (8, 8))})
    assert sorted(p.name for p in store.images.iterdir()) == ["g0__s0.json", "g0__s0.png"]
    assert sorted(p.name for p in store.overlays.iterdir()) == ["g0__s0.regions-content.png"]
    assert store.is_done("g0__s0", "h") and not store.is_done("g0__s0", "other")


def test_a_claim_is_held_until_the_output_is_written(tmp_path):
    mine, theirs = OutputStore(tmp_path), OutputStore(tmp_path)
    assert mine.claim("a__b", "h") and not theirs.claim("a__b", "h")
    mine.write("a__b", Image.new("RGB", (4, 4)), {"item_hash": "h"})
    assert not theirs.claim("a__b", "h")  # free again, but done: nothing to make
    assert theirs.claim("a__b", "changed-settings")


def test_skipped_list(tmp_path):
    assert write_skipped(tmp_path, [("/in/bad.png", "is not an image")]) == tmp_path / "skipped.txt"
    assert (tmp_path / "skipped.txt").read_text() == "/in/bad.png\tis not an image\n"
    assert write_skipped(tmp_path, []) is None and not (tmp_path / "skipped.txt").exists()  # a stale list goes
