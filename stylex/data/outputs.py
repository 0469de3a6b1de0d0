"""The output folder of a run, written atomically:

    images/{content stem}__{style stem}.png + .json   the outputs and their sidecars, nothing else
    overlays/{name}.{kind}.png                         region maps, attention maps, candidate strips, previews
    skipped.txt                                        inputs left out with data.on_bad_image=skip, and why

An output counts as done when both its files exist and the sidecar's `item_hash` (config + input bytes) matches,
so rerunning into the same folder resumes an interrupted run and recomputes only what changed. Two runs into one
folder share the work: each output is claimed (a file lock in `.claims/`) by the run that makes it.
"""
from __future__ import annotations

import csv
import errno
import io
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from stylex.errors import WriteError

log = logging.getLogger(__name__)

SKIPPED_FILE = "skipped.txt"
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def current_umask() -> int:
    """The process's umask. Linux shows it in /proc; elsewhere `os.umask` reads it only by setting it, which for
    that instant changes it for every thread (a file another thread creates then would be world-writable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The permissions `open()` gives a new file under the current umask (mkstemp's own are owner-only)."""
    return 0o666 & ~current_umask()


def write_error(path: Path, exc: OSError) -> WriteError:
    if exc.errno in NO_SPACE:
        return WriteError(f"no space left on the disk holding {path.parent} (writing {path.name}). Free some space "
                          f"there, or move the folder, and run the same command again: the files already finished "
                          f"are intact, nothing half-written was left, and the work resumes where it stopped.")
    return WriteError(f"{path} cannot be written ({exc.strerror or exc}). Check that its folder is writable, or "
                      f"move it with the setting that names it; nothing half-written was left.")


def write_all(fd: int, data: bytes) -> None:
    """The one place bytes reach the disk (tests make it fail as a full disk would)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see a partial file, and a failed
    write (full disk, read-only folder) leaves no file behind and raises a `WriteError` naming the folder."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        try:
            os.fchmod(fd, new_file_mode())
            write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise write_error(path, exc) from None
        raise


def atomic_write_csv(path: Path, rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> Path:
    """A CSV with these columns (keys beyond them ignored), written whole or not at all (`atomic_write_bytes`)."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, text.getvalue().encode("utf-8"))
    return Path(path)


def atomic_save_image(path: Path, image: Image.Image) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def write_skipped(folder: str | Path, skipped: list[tuple[str, str]]) -> Path | None:
    """`skipped.txt` in `folder`: one `path<TAB>reason` line per input left out; a stale list is removed."""
    path = Path(folder) / SKIPPED_FILE
    if not skipped:
        path.unlink(missing_ok=True)
        return None
    atomic_write_bytes(path, "".join(f"{file}\t{reason}\n" for file, reason in skipped).encode("utf-8"))
    return path


class OutputStore:
    """Where a run's outputs, sidecars and overlays live, and which outputs this process is making."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.images = self.root / "images"
        self.overlays = self.root / "overlays"
        self.claims: dict[str, Any] = {}  # name -> the lock this process holds while it makes the output

    def image_path(self, name: str) -> Path:
        return self.images / f"{name}.png"

    def sidecar_path(self, name: str) -> Path:
        return self.images / f"{name}.json"

    def overlay_path(self, name: str, kind: str) -> Path:
        return self.overlays / f"{name}.{kind}.png"

    def read_sidecar(self, name: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.sidecar_path(name).read_text())
        except (OSError, ValueError):
            return None

    def is_done(self, name: str, item_hash: str) -> bool:
        sidecar = self.read_sidecar(name)
        return bool(sidecar) and sidecar.get("item_hash") == item_hash and self.image_path(name).exists()

    def claim(self, name: str, item_hash: str) -> bool:
        """Whether this process makes output `name` now: False when another run holds it or has just made it."""
        from filelock import FileLock, Timeout

        if name in self.claims:
            return True
        folder = self.root / ".claims"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(folder / f"{name}.lock", exc) from None
        lock = FileLock(str(folder / f"{name}.lock"), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            return False
        if self.is_done(name, item_hash):
            lock.release()
            return False
        self.claims[name] = lock
        return True

    def release(self, name: str | None = None) -> None:
        """Let other runs have output `name` (every claim when None)."""
        for key in [name] if name is not None else list(self.claims):
            lock = self.claims.pop(key, None)
            if lock is not None:
                lock.release()

    def write(self, name: str, image: Image.Image, sidecar: dict[str, Any],
              overlays: dict[str, Image.Image] | None = None) -> Path:
        """Image and overlays first, sidecar last: the sidecar marks completion."""
        atomic_save_image(self.image_path(name), image)
        for kind, overlay in (overlays or {}).items():
            atomic_save_image(self.overlay_path(name, kind), overlay)
        atomic_write_bytes(self.sidecar_path(name), json.dumps(sidecar, indent=2, default=str).encode())
        self.release(name)
        return self.image_path(name)
