"""What keeps a run from harming what is around it: a user's own folders in ``--output``, Beam's scratch space
in the system's temporary directory, and Beam's import-time noise.

- :func:`refuse_foreign_output`: ``wwm`` replaces ``OUTPUT/<stage>`` when it publishes that stage.  It only
  ever replaces a directory it wrote itself, which it knows by the ``stats.json`` (with ``"stage"`` naming that
  stage) or the ``fingerprint.json`` every published stage holds; anything else there (a user's ``clean/``
  folder) makes the run stop with :class:`ForeignOutput` before anything is written, and nothing is deleted.
- :func:`beam_local_temp`: ``apache_beam.Pipeline`` makes a ``beam-pipeline-temp*`` directory with
  ``tempfile.mkdtemp`` and removes it when the pipeline's ``run`` ends, which a killed run never reaches, so
  each killed run left one in ``/tmp``.  While a pipeline is built this points ``tempfile`` at
  ``OUTPUT/.tmp-beam-<token>/`` instead, a name :func:`pipeline.fingerprint.recover` removes at the start of
  the next ``wwm run`` like every other leftover ``.tmp-*`` (an object-store output keeps the system's
  temporary directory: Beam still removes its directory whenever the run ends without being killed).
- :func:`import_beam_quietly`: ``import apache_beam`` logs ``WARNING:root:apitools not found ...`` (its
  BigQuery client, which nothing here uses) through the root logger, which also installs a root handler as a
  side effect; this imports that module with the warning dropped and no handler installed.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import shutil
import tempfile
import uuid
from pathlib import Path

from pipeline import storage

MARKERS = ("stats.json", "fingerprint.json")


class ForeignOutput(RuntimeError):
    """``OUTPUT/<stage>`` exists and was not written by wwm: it is never replaced."""


def is_own_output(directory, stage: str) -> bool:
    """Whether ``directory`` is a stage output wwm published (its ``stats.json`` names ``stage``, or it has the
    fingerprint ``wwm run`` records)."""
    if storage.is_file(storage.join(str(directory), "fingerprint.json")):
        return True
    try:
        stats = json.loads(storage.read_text(storage.join(str(directory), "stats.json")))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(stats, dict) and stats.get("stage", stage) == stage    # another stage's: not this one


def _exists(directory) -> bool:
    if storage.is_remote(directory):
        return bool(storage.walk(str(directory)))
    path = Path(directory)
    return path.exists() or path.is_symlink()


def refuse_foreign_output(directory, stage: str) -> None:
    """Raise :class:`ForeignOutput` when ``directory`` (``OUTPUT/<stage>``) holds something wwm did not write."""
    if _exists(directory) and not is_own_output(directory, stage):
        raise ForeignOutput(
            f"{directory} exists and was not written by wwm (no {' or '.join(MARKERS)} of a {stage} stage in it): "
            f"wwm would replace it with the {stage} stage's output, so it stops here and changes nothing. "
            f"Move that folder away or choose another --output")


def refuse_foreign_outputs(config, stages) -> None:
    """:func:`refuse_foreign_output` for each stage a run is about to publish (before the first one runs)."""
    for stage in stages:
        refuse_foreign_output(storage.join(config.output, stage), stage)


_BEAM_TEMP: dict[str, Path] = {}


def beam_temp_dir(output) -> Path | None:
    """This process's ``OUTPUT/.tmp-beam-<token>`` (made on first use, removed at exit), or None for an
    object-store output."""
    if storage.is_remote(output):
        return None
    root = Path(output).resolve()
    path = _BEAM_TEMP.get(str(root))
    if path is None or not path.is_dir():
        path = root / f".tmp-beam-{uuid.uuid4().hex[:12]}"
        path.mkdir(parents=True, exist_ok=True)
        _BEAM_TEMP[str(root)] = path
        atexit.register(shutil.rmtree, path, True)
    return path


def release_beam_temp(output) -> None:
    """Remove this process's ``OUTPUT/.tmp-beam-<token>`` once a pipeline has finished (a killed run leaves it
    to the next run's recovery)."""
    if storage.is_remote(output):
        return
    path = _BEAM_TEMP.pop(str(Path(output).resolve()), None)
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def beam_local_temp(output):
    """While a ``beam.Pipeline`` is built: ``tempfile.mkdtemp`` makes its directory under the output."""
    path = beam_temp_dir(output)
    if path is None:
        yield None
        return
    before = tempfile.tempdir
    tempfile.tempdir = str(path)
    try:
        yield path
    finally:
        tempfile.tempdir = before


class _DropApitools(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("apitools not found")


def import_beam_quietly() -> None:
    """Import Beam's BigQuery client package (imported by ``import apache_beam``) without its warning."""
    root = logging.getLogger()
    drop, placeholder = _DropApitools(), None
    root.addFilter(drop)
    if not root.handlers:                  # else logging.warning() would call basicConfig() and add one
        placeholder = logging.NullHandler()
        root.addHandler(placeholder)
    try:
        import apache_beam.io.gcp.internal.clients.bigquery  # noqa: F401
    except ImportError:
        pass
    finally:
        root.removeFilter(drop)
        if placeholder is not None:
            root.removeHandler(placeholder)
