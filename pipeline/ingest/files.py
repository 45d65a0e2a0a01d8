"""Finding input files and opening them as (decompressed) byte streams."""

from __future__ import annotations

import bz2
import glob
import gzip
import lzma
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pipeline import storage

COMPRESSED = {".bz2": bz2.BZ2File, ".gz": gzip.GzipFile, ".xz": lzma.LZMAFile}


@dataclass(frozen=True)
class InputFile:
    """One file to read, with the input it belongs to."""

    path: str        # where to open it
    relpath: str     # path inside its input (used in ids of formats without native ids)
    source: str      # the input's source name
    format: str      # format name, or "auto"
    size: int        # bytes on disk (compressed size for compressed files)
    error: str | None = None   # why it cannot be read, found while listing (an unreadable directory)


class OpenedFile:
    """A file opened for reading as decompressed bytes.

    ``stream`` yields the decompressed bytes; ``raw_position()`` tells how far
    into the file on disk reading has got (for progress on compressed input).
    """

    def __init__(self, path: str) -> None:
        self.raw = storage.open_input_stream(path)    # local: open(); gs:// etc.: a pyarrow input stream
        wrapper = COMPRESSED.get(Path(path).suffix.lower())
        self.stream: BinaryIO = wrapper(self.raw) if wrapper else self.raw

    def raw_position(self) -> int:
        try:
            return self.raw.tell()
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        if self.stream is not self.raw:
            self.stream.close()
        self.raw.close()

    def __enter__(self) -> "OpenedFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def default_source(path: str) -> str:
    """Source name for an input path: its name without directory and extensions."""
    name = Path(path.rstrip("/")).name or "input"
    for suffix in (".bz2", ".gz", ".xz", ".jsonl", ".json", ".xml", ".txt"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return name


def _is_hidden(rel: str) -> bool:
    return any(part.startswith((".", "_")) for part in Path(rel).parts)


def _inside(path: str, root: str) -> bool:
    """Whether ``path`` is ``root`` or under it (local paths, symlinks resolved; URIs by prefix)."""
    if storage.is_remote(root) or storage.is_remote(path):
        root = root.rstrip("/")
        return path.rstrip("/") == root or path.startswith(root + "/")
    path, root = os.path.realpath(path), os.path.realpath(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def expand(path: str, source: str | None = None, fmt: str = "auto", exclude: str | None = None) -> list[InputFile]:
    """The files of one input (file, directory read recursively, or glob), sorted.

    Hidden files and names starting with '_' are skipped inside directories.  So is ``exclude`` (the run's own
    output directory) when it lies inside a directory or under a glob being expanded: a run's outputs are never
    read back as its input (an input that names a file or directory inside it explicitly is read).
    A directory that cannot be listed comes as an ``InputFile`` with ``error``
    set (the reader quarantines it).  An input that matches nothing raises
    ``FileNotFoundError``.
    """
    source = source or default_source(path)
    if exclude and _inside(path, exclude):
        exclude = None                       # asked for explicitly
    if storage.is_remote(path):
        return _expand_remote(path, source, fmt, exclude)
    found: list[tuple[str, str]] = []
    unlisted: list[tuple[str, str, str]] = []

    def unreadable(exc: OSError) -> None:    # a directory os.walk cannot list is reported, never skipped silently
        full = exc.filename or path
        unlisted.append((full, os.path.relpath(full, path), f"cannot list directory: {type(exc).__name__}: {exc}"))

    if os.path.isdir(path):
        for dirpath, dirnames, filenames in os.walk(path, onerror=unreadable):
            if exclude:
                dirnames[:] = [d for d in dirnames if not _inside(os.path.join(dirpath, d), exclude)]
            dirnames.sort()
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, path)
                if not _is_hidden(rel):
                    found.append((full, rel))
    elif os.path.exists(path) or os.path.islink(path):
        found.append((path, os.path.basename(path)))
    else:
        matches = sorted(glob.glob(path, recursive=True))
        base = os.path.dirname(path.split("*")[0]) if "*" in path else os.path.dirname(path)
        for full in matches:
            if os.path.isfile(full) and not (exclude and _inside(full, exclude)):
                found.append((full, os.path.relpath(full, base or ".")))
    if not found and not unlisted:
        raise FileNotFoundError(f"input {path!r} matches no file")
    files = []
    for full, rel in found:
        try:
            size = os.path.getsize(full)
        except OSError:
            size = 0
        files.append(InputFile(path=full, relpath=rel.replace(os.sep, "/"), source=source,
                               format=fmt, size=size))
    files += [InputFile(path=full, relpath=rel.replace(os.sep, "/"), source=source, format=fmt, size=0, error=error)
              for full, rel, error in unlisted if not _is_hidden(rel)]
    return files


def _expand_remote(path: str, source: str, fmt: str, exclude: str | None = None) -> list[InputFile]:
    """``expand`` for an object-store URI: one object, every object under a prefix (hidden names skipped), or
    a wildcard pattern (``fnmatch``: ``*`` also matches ``/``)."""
    found: list[tuple[str, str, int]] = []
    if any(c in path for c in "*?["):
        cut = min(path.find(c) for c in "*?[" if c in path)
        base = path[:cut].rsplit("/", 1)[0]
        found = [(full, full[len(base) + 1:], storage.size(full)) for full in storage.glob(path)]
    elif storage.is_file(path):
        found = [(path, storage.name(path), storage.size(path))]
    else:
        found = [(storage.join(path, rel), rel, size) for rel, size, _ in storage.walk(path) if not _is_hidden(rel)]
    if exclude:
        found = [item for item in found if not _inside(item[0], exclude)]
    if not found:
        raise FileNotFoundError(f"input {path!r} matches no file")
    return [InputFile(path=full, relpath=rel, source=source, format=fmt, size=size) for full, rel, size in found]
