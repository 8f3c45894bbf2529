"""Writing files and folders so that nothing is ever half-written.

Every write goes to a temporary sibling and is renamed into place; an interrupted write leaves the
old file (or none), never a truncated one. Temporary names carry the writer's process id, so a
later write removes what a killed writer left behind. Files and folders get the permissions the
umask allows (``mkstemp`` alone would make them private).

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.json"
    >>> atomic_write_json(p, {"x": 1}).read_text()
    '{\\n  "x": 1\\n}\\n'
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_write_text", "atomic_write_json", "atomic_folder", "remove_stale_temporaries"]

_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.(tmp|partial)$")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(folder: str | Path, name: str | None = None) -> list[Path]:
    """Remove temporary files/folders in ``folder`` left by writers that no longer run; returns them."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        m = _TMP.match(p.name)
        if not m or (name is not None and m["name"] != name) or _alive(int(m["pid"])):
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_json(path: str | Path, obj: Any, **dump_kwargs: Any) -> Path:
    """``atomic_write_text`` of ``json.dumps(obj, indent=2)`` plus a newline."""
    dump_kwargs.setdefault("indent", 2)
    return atomic_write_text(path, json.dumps(obj, **dump_kwargs) + "\n")


@contextlib.contextmanager
def atomic_folder(path: str | Path, last: str | None = None) -> Iterator[Path]:
    """Build a folder's content in a temporary sibling, then move it into ``path``.

    Yields the temporary folder to write into. On success its entries replace the same names in
    ``path``; the entry named ``last`` (a file that marks the folder complete, e.g.
    ``causal_config.json``) is removed from ``path`` first and moved in last, so a crash in between
    never leaves a folder that looks complete. Entries of ``path`` that are not written stay (Trainer
    checkpoints, say). On failure nothing in ``path`` changes.
    """
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out.parent, out.name)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.{os.getpid()}.", suffix=".partial"))
    try:
        yield tmp
        mode = 0o777 & ~_umask()
        for f in tmp.rglob("*"):
            os.chmod(f, (mode if f.is_dir() else 0o666 & ~_umask()))
        if last is not None:
            (out / last).unlink(missing_ok=True)
        for f in sorted(tmp.iterdir()):
            if f.name == last:
                continue
            dest = out / f.name
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            os.replace(f, dest)
        if last is not None and (tmp / last).exists():
            os.replace(tmp / last, out / last)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
