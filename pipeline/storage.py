"""One file-system layer for the stages: local paths and object-store URIs (``gs://``, ``s3://``, ...).

Every path is a string, and every one goes through ``pyarrow.fs``: a local path (or a ``file://`` URI) is a
path of ``pyarrow.fs.LocalFileSystem``, a URI one of its scheme's file system.  ``gs://`` uses
:class:`pyarrow.fs.GcsFileSystem`; with ``STORAGE_EMULATOR_HOST`` set (the variable Google's own clients
honour, e.g. ``http://127.0.0.1:9023``) it talks to that endpoint, anonymously, which is how the tests run
every stage against a GCS emulator.  Other schemes are whatever ``pyarrow.fs.FileSystem.from_uri``
understands.

Where the file systems differ it is said here, once (:func:`is_local`): object stores have no directories
and no rename: a "directory" is a prefix that has objects under it, and an object appears whole when its
writer is closed.  A file that a retried task may rewrite goes through :func:`atomic_output` (a hidden
temporary file, then :func:`commit`: a rename locally, a server-side copy on an object store).  How a stage is
published is in :mod:`pipeline.outputs`.

Every function takes a local path or a URI and returns plain ``str`` paths of the same kind.
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import os
import shutil
import uuid
from typing import NamedTuple

import pyarrow.fs as pafs

_FILESYSTEMS: dict[str, pafs.FileSystem] = {}


def is_remote(path) -> bool:
    """Whether ``path`` is an object-store URI (``scheme://...``, not ``file://``)."""
    text = str(path)
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.isidentifier() and scheme.lower() != "file"


def _gcs() -> pafs.FileSystem:
    host = os.environ.get("STORAGE_EMULATOR_HOST")
    if not host:
        return pafs.GcsFileSystem()
    scheme, sep, rest = host.partition("://")
    endpoint = rest if sep else host
    return pafs.GcsFileSystem(anonymous=True, endpoint_override=endpoint.rstrip("/"),
                              scheme=scheme if sep else "http")


def resolve(path) -> tuple[pafs.FileSystem, str]:
    """(file system, path inside it) for a local path or a URI; one file system object per scheme and process
    (the emulator's endpoint is read from the environment when it is first made)."""
    text = str(path)
    if not is_remote(text):
        fs = _FILESYSTEMS.get("") or _FILESYSTEMS.setdefault("", pafs.LocalFileSystem())
        if text[:7].lower() == "file://":
            text = text[7:]
        return fs, os.path.abspath(text)
    scheme, _, rest = text.partition("://")
    scheme = scheme.lower()
    if scheme in ("gs", "gcs"):
        key = f"gs|{os.environ.get('STORAGE_EMULATOR_HOST', '')}"
        fs = _FILESYSTEMS.get(key)
        if fs is None:
            fs = _FILESYSTEMS[key] = _gcs()
        return fs, rest.rstrip("/")
    fs, inner = pafs.FileSystem.from_uri(text)
    return fs, inner.rstrip("/")


def join(base, *names: str) -> str:
    """``base/name/...`` as a string (``/``-joined for URIs, ``os.path.join`` locally)."""
    base = str(base)
    if is_remote(base):
        return "/".join([base.rstrip("/"), *(n.strip("/") for n in names)])
    return os.path.join(base, *names)


def name(path) -> str:
    """The last component of a path or URI."""
    return str(path).rstrip("/").rsplit("/", 1)[-1]


def parent(path) -> str:
    text = str(path).rstrip("/")
    if is_remote(text):
        return text.rsplit("/", 1)[0]
    return os.path.dirname(text)


def info(path) -> pafs.FileInfo | _LocalInfo:
    fs, inner = resolve(path)
    if isinstance(fs, pafs.LocalFileSystem) and not _utf8(inner):
        return _stat(inner)
    return fs.get_file_info(inner)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


class _LocalInfo(NamedTuple):
    """The fields of ``pafs.FileInfo`` this module reads, for a name pyarrow cannot hold."""
    path: str
    type: pafs.FileType
    size: int | None = None
    mtime_ns: int | None = None


def _stat(local: str) -> _LocalInfo:
    """What ``get_file_info`` gives, for a local name that is not UTF-8 (``os.fsdecode`` keeps its bytes as
    lone surrogates, which pyarrow cannot encode): ingest lists such a file and quarantines it by name."""
    try:
        st = os.stat(local)
    except FileNotFoundError:
        return _LocalInfo(local, pafs.FileType.NotFound)
    kind = pafs.FileType.Directory if os.path.isdir(local) else pafs.FileType.File
    return _LocalInfo(local, kind, st.st_size, st.st_mtime_ns)


def is_local(path) -> bool:
    """Whether ``path`` is on the local file system: one with directories and an atomic rename (what
    :func:`commit`, :func:`makedirs` and the stages' publication in :mod:`pipeline.outputs` rely on)."""
    return isinstance(resolve(path)[0], pafs.LocalFileSystem)


def absolute(path) -> str:
    """``path`` as it is recorded in stats and manifests: an absolute local path, or the URI."""
    return os.path.abspath(path) if is_local(path) else str(path)


def exists(path) -> bool:
    return info(path).type != pafs.FileType.NotFound


def is_dir(path) -> bool:
    return info(path).type == pafs.FileType.Directory


def is_file(path) -> bool:
    return info(path).type == pafs.FileType.File


def size(path) -> int:
    return info(path).size


def mtime_ns(path) -> int:
    """Modification time in nanoseconds (an object's update time on an object store)."""
    return info(path).mtime_ns or 0


def _selected(path, recursive: bool) -> list[pafs.FileInfo]:
    fs, inner = resolve(path)
    try:
        return fs.get_file_info(pafs.FileSelector(inner, recursive=recursive, allow_not_found=True))
    except (FileNotFoundError, NotADirectoryError):
        return []


def walk(path) -> list[tuple[str, int, int]]:
    """(path relative to ``path``, size, mtime_ns) of every file under a directory, sorted; [] if none."""
    prefix = resolve(path)[1].rstrip("/") + "/"
    return sorted((i.path[len(prefix):], i.size, i.mtime_ns or 0) for i in _selected(path, True)
                  if i.type == pafs.FileType.File and i.path.startswith(prefix))


def listdir(path) -> list[str]:
    """Names directly under a directory (files and sub-directories), sorted; [] if it does not exist.  (An
    object store's emulator lists no sub-prefixes: the names of the prefixes holding objects are added.)"""
    names = {i.base_name for i in _selected(path, False)}
    if not is_local(path):
        names.update(rel.split("/", 1)[0] for rel, _, _ in walk(path))
    return sorted(names)


def glob(pattern: str) -> list[str]:
    """URIs of the objects matching a wildcard pattern (``fnmatch`` rules: ``*`` also matches ``/``); the
    listing starts at the last ``/`` before the first wildcard."""
    cut = min((pattern.find(c) for c in "*?[" if c in pattern), default=len(pattern))
    head = pattern[:cut].rsplit("/", 1)[0]
    return [join(head, rel) for rel, _, _ in walk(head) if fnmatch.fnmatchcase(join(head, rel), pattern)]


def makedirs(path) -> None:
    """Create a local directory (and its parents); nothing on object stores, where prefixes need no marker."""
    if is_local(path):
        fs, inner = resolve(path)
        fs.create_dir(inner, recursive=True)


class _RawStream(io.RawIOBase):
    """A pyarrow input stream as a Python raw stream, so ``io.BufferedReader`` gives it ``readline``,
    ``read1`` and ``peek`` (which pyarrow's streams lack) and ``bz2``/``gzip``/``lzma`` and lxml can read it."""

    def __init__(self, native) -> None:
        super().__init__()
        self._native = native
        self._position = 0          # a stream has no tell() of its own: the bytes read so far

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._native.read(len(buffer))
        buffer[:len(data)] = data
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        if not self.closed:
            self._native.close()
        super().close()


def open_input_stream(path, buffer_size: int = 1 << 20):
    """A sequential, buffered, file-like binary reader (``read``, ``read1``, ``readline``, ``tell``)."""
    fs, inner = resolve(path)
    return io.BufferedReader(_RawStream(fs.open_input_stream(inner, compression=None)), buffer_size)


def open_input_file(path):
    """A random-access binary reader (``seek``, ``read``, ``size``), e.g. for Parquet footers and row groups."""
    fs, inner = resolve(path)
    return fs.open_input_file(inner)


def open_output_stream(path):
    """A binary writer (its local directory made first).  On an object store the object appears, whole, when
    it is closed."""
    makedirs(parent(path) or ".")
    fs, inner = resolve(path)
    return fs.open_output_stream(inner, compression=None)


def read_bytes(path) -> bytes:
    fs, inner = resolve(path)
    with fs.open_input_stream(inner, compression=None) as f:
        return f.read()


def read_text(path) -> str:
    return read_bytes(path).decode("utf-8")


def read_range(path, offset: int, nbytes: int) -> bytes:
    with open_input_file(path) as f:
        f.seek(offset)
        return f.read(nbytes)


def temporary_name(path) -> str:
    """A hidden, unique name beside ``path`` (``.NAME.<token>.tmp``): readers skip such names."""
    return join(parent(path), f".{name(path)}.{uuid.uuid4().hex[:12]}.tmp")


def commit(tmp, path) -> None:
    """Put a finished temporary file in place: a rename locally; on an object store (no rename) a server-side
    copy (the destination appears whole) and the temporary deleted."""
    fs, inner = resolve(path)
    if is_local(path):
        fs.move(resolve(tmp)[1], inner)
        return
    fs.copy_file(resolve(tmp)[1], inner)
    delete_file(tmp)


@contextlib.contextmanager
def atomic_output(path):
    """A binary writer whose file appears at ``path`` whole, or not at all: written under a temporary name
    beside it, then put in place (:func:`commit`); the temporary is deleted when the block raises.

    On an object store an object appears whole when its writer closes anyway, but a task attempt that fails
    (or a speculative copy that is killed) closes its stream too: writing the final name directly would
    replace a whole file, written by an attempt that succeeded, with a part of one."""
    tmp = temporary_name(path)
    stream = open_output_stream(tmp)
    try:
        yield stream
    except BaseException:
        stream.close()
        delete_file(tmp)
        raise
    stream.close()
    commit(tmp, path)


def write_bytes(path, data: bytes) -> None:
    """Write a whole file.  Locally it is written in place (callers that need atomicity rename a temporary);
    on an object store the object is replaced whole."""
    with open_output_stream(path) as f:
        f.write(data)


def write_text(path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def delete_file(path) -> None:
    """Delete a file; no error when it is not there."""
    fs, inner = resolve(path)
    try:
        fs.delete_file(inner)
    except FileNotFoundError:
        pass


def delete_dir(path) -> None:
    """Delete a directory and everything under it; no error when it is not there."""
    fs, inner = resolve(path)
    if is_local(path):
        shutil.rmtree(inner, ignore_errors=True)     # (a symlink's target is left alone)
        return
    for rel, _, _ in walk(path):      # object by object: a prefix has no directory object to delete
        try:
            fs.delete_file(f"{inner}/{rel}")
        except FileNotFoundError:
            pass


def copy_tree(source, destination, skip=lambda rel: False) -> list[str]:
    """Copy every file under ``source`` to the same relative path under ``destination`` (server-side copies
    on an object store); returns the relative paths copied."""
    fs, src = resolve(source)
    _, dst = resolve(destination)
    copied = []
    for rel, _, _ in walk(source):
        if skip(rel):
            continue
        makedirs(parent(join(destination, rel)))
        fs.copy_file(f"{src}/{rel}", f"{dst}/{rel}")
        copied.append(rel)
    return copied
