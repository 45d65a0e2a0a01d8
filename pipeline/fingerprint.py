"""What a published stage output was made from, so ``wwm run`` redoes only what is out of date.

After ``run_all`` publishes a stage it writes ``OUTPUT/<stage>/fingerprint.json``:

- ``made_from``: the stage, the package version, the stage's own settings (its section of the config) and
  its inputs.  Ingest's inputs are the input specs and every input file's path, size and modification time
  (``st_mtime_ns``; by default contents are not hashed: a 30 GB corpus would take minutes to read).  With
  ``--up-to-date content`` (``up_to_date: content``) the SHA-256 of each file's bytes takes the place of its
  modification time, here and for the other files below: an input edited in place with its size and time
  unchanged is seen, and a file touched or copied anew with the same bytes is not a change.  A later stage's
  inputs are the ``digest`` of the stage it reads (so a change anywhere upstream changes every digest after
  it), plus the files it reads besides: the segmenter's model and user dictionary, a given vocab or reference
  vocab, the shards' ``--shards-vocab``.
- ``digest``: the SHA-256 of ``made_from`` (canonical JSON).
- ``outputs``: every file of the published directory with its size.

At the start of each stage ``run_all`` computes ``made_from`` again; the stage is skipped when the published
fingerprint has the same digest and the directory still holds exactly the listed files.  A stage whose
fingerprint is missing (a run killed between publishing and recording it, a stage run alone with ``wwm
<stage>``) or whose upstream has none is redone.  The engine and its options are not part of the
fingerprint: both engines write the same bytes.  The package version is, but code changed without a version
bump is not seen: ``wwm run --force`` redoes everything.

A killed run leaves ``.tmp-<stage>-*`` directories (unpublished outputs) and, if it died between the two
renames of a publication on a filesystem without an atomic exchange, an ``.old-<stage>-*`` directory with no
``<stage>`` beside it, and ``.progress-<stage>-*`` (its workers' progress reports).  :func:`recover` (called by
``run_all`` under the output directory's lock) deletes the first and the last and puts the ``.old-`` one
back, so the previous complete output is published again.

On an object-store output (``gs://...``, see :mod:`pipeline.outputs` for its publication, where ``stats.json``
written last commits a stage): the input files' "modification time" is the object's update time (from its
metadata, as pyarrow reports it); the fingerprint, its listing and the stats are read and written through
:mod:`pipeline.storage`; :func:`recover` deletes every ``.tmp-<stage>-*`` prefix and every stage directory
without ``stats.json`` (a publication cut short: the stage is redone); and there is **no lock**
(:func:`run_lock` does nothing there: object stores have no ``flock``, and a lock object would outlive a killed
run).  Do not start two runs on one object-store output at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

from pipeline import __version__, storage
from pipeline.config import Config, source_weights

FINGERPRINT = "fingerprint.json"
LOCK = ".lock"
FORMAT = 1
UPSTREAM = {"clean": ("ingest",), "dedup": ("clean",), "segment": ("dedup",), "vocab": ("segment",),
            "shards": ("segment", "vocab")}
LEFTOVER = re.compile(r"^\.(tmp|old|progress)-([a-z]+)-[0-9a-f]{12}$")


class OutputBusy(RuntimeError):
    """Another run holds the output directory's lock."""


@contextlib.contextmanager
def run_lock(output: str | Path):
    """Hold ``OUTPUT/.lock`` (``flock``, released by the kernel when the process dies, even by SIGKILL) so two
    runs never write (or clean up) the same output directory at once.  Nothing on an object store (see the
    module's docstring)."""
    if storage.is_remote(output):
        yield
        return
    root = Path(output)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputBusy(f"{root}: another run is writing this output directory ({root / LOCK} is locked)")
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def recover(output: str | Path, log=print) -> list[str]:
    """Clean up what a killed run left in ``output``; returns what was done, one line per directory."""
    if storage.is_remote(output):
        return _recover_remote(str(output).rstrip("/"), log)
    root = Path(output)
    done = []
    if not root.is_dir():
        return done
    for path in sorted(root.iterdir()):
        match = LEFTOVER.match(path.name)
        if not match or not path.is_dir():
            continue
        kind, stage = match.groups()
        final = root / stage
        if kind == "old" and not final.exists() and not final.is_symlink():
            os.replace(path, final)      # died between the two renames of a publication: the old one is whole
            done.append(f"restored {final} from {path.name}")
        else:
            shutil.rmtree(path, ignore_errors=True)
            done.append(f"removed {path.name}")
    for line in done:
        log(f"recover: {line} (left by an interrupted run)")
    return done


def _recover_remote(root: str, log) -> list[str]:
    done = []
    for name in storage.listdir(root):
        path = storage.join(root, name)
        if LEFTOVER.match(name):
            storage.delete_dir(path)
            done.append(f"removed {name}")
        elif name in UPSTREAM or name == "ingest":
            if not storage.is_file(storage.join(path, "stats.json")) and storage.walk(path):
                storage.delete_dir(path)       # a publication cut short: not committed, redone
                done.append(f"removed {path} (no stats.json: its publication did not finish)")
    for line in done:
        log(f"recover: {line} (left by an interrupted run)")
    return done


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _json(value, **how) -> str:
    """``value`` as JSON text that UTF-8 can hold: a lone surrogate (a file name that is not UTF-8, kept by
    ``os.fsdecode``) is written as its ``\\uXXXX`` escape, which ``json.loads`` reads back unchanged."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, **how)
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _canonical(value) -> bytes:
    return _json(value, separators=(",", ":")).encode("utf-8")


def content_sha256(path: str | Path) -> str:
    """``sha256:<hex>`` of a file's bytes (local or on an object store), read in 1 MiB blocks."""
    h = hashlib.sha256()
    with storage.open_input_stream(str(path)) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def _stamp(path: str | Path, content: bool, mtime_ns: int | None = None):
    """What tells a file changed: its modification time, or with ``content`` the hash of its bytes."""
    if content:
        return content_sha256(path)
    return storage.mtime_ns(str(path)) if mtime_ns is None else mtime_ns


def _files(path: str | Path, content: bool = False) -> dict:
    """Name, size and modification time (or content hash) of a file, or of every file under a directory."""
    key = "sha256" if content else "mtime_ns"
    if storage.is_remote(path):
        if storage.is_file(path):
            return {"path": str(path), "size": storage.size(path), key: _stamp(path, content)}
        found = [[rel, size, _stamp(storage.join(str(path), rel), content, mtime) if content else mtime]
                 for rel, size, mtime in storage.walk(path)]
        return {"path": str(path), "files": found} if found else {"path": str(path), "missing": True}
    path = Path(path)
    if path.is_file():
        st = path.stat()
        return {"path": str(path.resolve()), "size": st.st_size, key: _stamp(path, content, st.st_mtime_ns)}
    if path.is_dir():
        found = []
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            st = item.stat()
            found.append([str(item.relative_to(path)), st.st_size, _stamp(item, content, st.st_mtime_ns)])
        return {"path": str(path.resolve()), "files": found}
    return {"path": str(path), "missing": True}


def published_digest(config: Config, stage: str) -> str | None:
    """The digest of a stage's published fingerprint, or None."""
    try:
        return json.loads(storage.read_text(storage.join(config.output, stage, FINGERPRINT)))["digest"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def made_from(config: Config, stage: str) -> dict | None:
    """What ``stage`` would be made from now; None when it cannot be known (an input missing, an upstream stage
    without a fingerprint): such a stage is always run."""
    from pipeline.ingest.files import expand

    settings = dataclasses.asdict(getattr(config, stage))
    if stage == "shards":
        settings["weights"] = source_weights(config)       # the inputs' weights are shards settings too
    what = {"format": FORMAT, "stage": stage, "version": __version__, "settings": settings}
    content = getattr(config, "up_to_date", "stat") == "content"
    try:
        if stage == "ingest":
            what["inputs"] = [{"spec": {k: v for k, v in vars(spec).items() if k != "weight"},   # shards' setting
                               "files": [[f.path, f.relpath, f.source, f.format, f.size,
                                          _stamp(f.path, content)]
                                         for f in expand(spec.path, spec.source, spec.format, config.output)]}
                              for spec in config.input_specs()]
            return what
    except OSError:
        return None
    upstream = {}
    for previous in UPSTREAM[stage]:
        if previous == "vocab" and config.shards.vocab:
            upstream["vocab_file"] = _files(config.shards.vocab, content)
            continue
        upstream[previous] = published_digest(config, previous)
        if upstream[previous] is None:
            return None
    if stage == "segment":
        upstream.update({"model": _files(settings["model"], content) if settings["model"] else None,
                         "user_dict": _files(settings["user_dict"], content) if settings["user_dict"] else None})
    if stage == "vocab":
        upstream.update({key: _files(settings[key], content) if settings[key] else None
                         for key in ("vocab", "reference")})
    what["inputs"] = upstream
    return what


def skip_hint(config: Config, skipped) -> str:
    """The line ``wwm run`` prints after skipping stages: what it compared, and the ways to make them run."""
    if getattr(config, "up_to_date", "stat") == "content":
        how = "the same settings, package version and input contents (SHA-256)"
    else:
        how = ("the same settings, package version and input files by path, size and modification time "
               "(--up-to-date content compares their bytes)")
    return f"skipped {', '.join(skipped)}: made from {how}; --force reruns every stage"


def digest(what: dict) -> str:
    return hashlib.sha256(_canonical(what)).hexdigest()


def _listing(directory: str) -> dict[str, int]:
    return {rel: size for rel, size, _ in storage.walk(directory) if rel != FINGERPRINT}


def up_to_date(config: Config, stage: str, what: dict | None) -> dict | None:
    """The published stage's stats when its output was made from ``what`` and is whole; else None."""
    if what is None:
        return None
    directory = storage.join(config.output, stage)
    try:
        recorded = json.loads(storage.read_text(storage.join(directory, FINGERPRINT)))
        if recorded.get("digest") != digest(what) or recorded.get("outputs") != _listing(directory):
            return None
        return json.loads(storage.read_text(storage.join(directory, "stats.json")))
    except (OSError, ValueError, AttributeError):
        return None


def record(config: Config, stage: str, what: dict | None) -> None:
    """Write the fingerprint into the published output (under a temporary name, then renamed)."""
    if what is None:
        return
    directory = storage.join(config.output, stage)
    body = {"digest": digest(what), "made_from": what, "outputs": _listing(directory)}
    with storage.atomic_output(storage.join(directory, FINGERPRINT)) as f:
        f.write((_json(body, indent=2) + "\n").encode("utf-8"))
