"""Export of a run for researchers: the run folder as one zip archive, built in memory.

A run folder is ``config.json``, ``weights.safetensors`` and ``metrics.json`` (``core.runs``);
the archive holds exactly those three files under a folder named after the run, so unpacking it
anywhere gives a folder that ``core.runs.load_run`` and ``python -m core eval`` open as they
are. Only a folder that passes ``core.runs.check_run`` is exported, and nothing else in it:

- the folder and the three files must be real (no symbolic link anywhere, each a regular file);
- the folder must hold nothing else (a file or folder more is refused, not skipped);
- the three files together must fit ``max_bytes`` (default ``MAX_ARCHIVE_BYTES``).

Files are opened without following links (``O_NOFOLLOW``) and read at most to their checked
size, so a file swapped for a link or grown after the checks is refused too. The archive is
deterministic: same files, same bytes (fixed timestamps and order).
"""
from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

from .runs import RunError, check_run

RUN_FILES = ("config.json", "weights.safetensors", "metrics.json")
MAX_ARCHIVE_BYTES = 256 * 2**20  # a paper-size run is ~11 MB of weights; metrics are at most 64 MiB
_EPOCH = (1980, 1, 1, 0, 0, 0)   # zip's earliest timestamp: the archive does not depend on when it was made


class ExportError(RunError):
    """A folder that is not exported: not a valid run, a link, an extra entry, or too large."""


def archive_name(path: str | Path) -> str:
    """The archive's file name: ``<run folder name>.zip``."""
    return f"{Path(path).name}.zip"


def check_exportable(path: str | Path, max_bytes: int = MAX_ARCHIVE_BYTES, validate: bool = True) -> int:
    """Check that ``path`` may be exported, reading no file content but the run's own checks
    (``validate=False`` skips those: the layout, links and sizes only, for a page that loaded
    the run already and shows a button; ``run_archive`` always validates).

    Returns:
        The total size in bytes of the three files.

    Raises:
        ExportError: the folder or one of its files is a symbolic link or not a regular file or
            folder, the folder holds any other entry, the files exceed ``max_bytes``, or
            ``core.runs.check_run`` refuses the run (its message is kept).
    """
    path = Path(path)
    try:
        st = os.lstat(path)
    except OSError as e:
        raise ExportError(f"run folder {path.name} cannot be read: {e.strerror or e}") from None
    if stat.S_ISLNK(st.st_mode):
        raise ExportError(f"{path.name} is a symbolic link, not a run folder: not exported")
    if not stat.S_ISDIR(st.st_mode):
        raise ExportError(f"{path.name} is not a folder: not exported")
    try:
        entries = sorted(os.listdir(path))
    except OSError as e:
        raise ExportError(f"run folder {path.name} cannot be listed: {e.strerror or e}") from None
    extra = [e for e in entries if e not in RUN_FILES]
    if extra:
        shown = ", ".join(extra[:5]) + (", ..." if len(extra) > 5 else "")
        raise ExportError(f"{path.name} holds more than a run ({shown}): only a folder with exactly "
                          f"{', '.join(RUN_FILES)} is exported")
    total = 0
    for name in RUN_FILES:
        try:
            fst = os.lstat(path / name)
        except FileNotFoundError:
            raise ExportError(f"{path.name} has no {name}: not a complete run") from None
        except OSError as e:
            raise ExportError(f"{path.name}/{name} cannot be read: {e.strerror or e}") from None
        if stat.S_ISLNK(fst.st_mode):
            raise ExportError(f"{path.name}/{name} is a symbolic link: not exported")
        if not stat.S_ISREG(fst.st_mode):
            raise ExportError(f"{path.name}/{name} is not a regular file: not exported")
        total += fst.st_size
    if total > max_bytes:
        raise ExportError(f"{path.name} is {total / 2**20:.1f} MiB, more than the {max_bytes / 2**20:.0f} MiB an "
                          "archive may hold: not exported")
    if not validate:
        return total
    try:
        check_run(path)
    except ExportError:
        raise
    except RunError as e:
        raise ExportError(f"{path.name} is not a valid run: {e}") from None
    return total


def stored_dtype(path: str | Path) -> str:
    """The dtype the run's weights are stored in (``"F32"``, or ``"F16"`` for ``--half`` runs), read
    from the safetensors header alone.

    Raises:
        ExportError: no readable weights file.
    """
    from safetensors import SafetensorError, safe_open
    try:
        with safe_open(str(Path(path) / "weights.safetensors"), framework="pt") as f:
            dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ExportError(f"{Path(path).name}/weights.safetensors cannot be read: {e}") from None
    return "F16" if dtypes == {"F16"} else "F32"


def _read_bounded(file: Path, limit: int) -> bytes:
    """The bytes of a regular file, opened without following a link, at most ``limit`` of them."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(file, flags)
    except OSError as e:
        raise ExportError(f"{file.parent.name}/{file.name} cannot be opened safely: {e.strerror or e}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise ExportError(f"{file.parent.name}/{file.name} is not a regular file: not exported")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ExportError(f"{file.parent.name}/{file.name} grew while it was exported: not exported")
    return data


def run_archive(path: str | Path, max_bytes: int = MAX_ARCHIVE_BYTES) -> bytes:
    """The run folder ``path`` as a zip archive in memory (deflated).

    Args:
        path: a run folder (``core.runs.save_run``'s layout).
        max_bytes: the most the three files may hold together (bytes, before compression).

    Returns:
        The archive's bytes: ``<name>/config.json``, ``<name>/weights.safetensors``,
        ``<name>/metrics.json`` and nothing else, ``<name>`` being the folder's name.

    Raises:
        ExportError: see ``check_exportable``; also a file that changes into a link or grows
            beyond ``max_bytes`` while it is read.
    """
    path = Path(path)
    check_exportable(path, max_bytes)
    buf = io.BytesIO()
    left = max_bytes
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        for name in RUN_FILES:
            data = _read_bounded(path / name, left)
            left -= len(data)
            info = zipfile.ZipInfo(f"{path.name}/{name}", date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    return buf.getvalue()
