"""Spark's Python worker daemon, with pyspark and py4j imported from their installed packages, not from zips.

Spark puts ``$SPARK_HOME/python/lib/pyspark.zip``, py4j's source zip and the
``spark-core`` jar first on its Python workers' path, and every task begins
with ``importlib.invalidate_caches()``.  Python 3.11's zip importer answers
that by reading the archive's whole central directory again, once for the
archive and once for every package directory imported from it: 0.09-0.28 s
a task here (pyspark.zip holds 1,328 files, the jar thousands), whatever the
task does.

``get_session`` names this module as ``spark.python.daemon.module``.  Before
it starts pyspark's own daemon (``pyspark.daemon.manager``, which forks the
workers), it takes off ``sys.path`` each archive the interpreter does not
need: pyspark's and py4j's zips when the same version of the package is
installed outside them (pip's ``pyspark`` ships both, so the code is the
same), and jars that hold no Python file.  Anything else stays, so with no
installed pyspark (a cluster image that only has ``$SPARK_HOME``) the workers
run exactly as Spark starts them.
"""

from __future__ import annotations

import re
import sys
import zipfile
import zipimport
from importlib.machinery import PathFinder
from pathlib import Path

_VERSION = re.compile(r"""^__version__\s*(?::\s*str\s*)?=\s*["']([^"']+)["']""", re.MULTILINE)


def _version_in(text: str) -> str | None:
    match = _VERSION.search(text)
    return match.group(1) if match else None


def _archive_version(archive: str, package: str) -> str | None:
    """``__version__`` of ``package`` inside a zip (its ``version.py``), or None."""
    try:
        with zipfile.ZipFile(archive) as z:
            return _version_in(z.read(f"{package}/version.py").decode("utf-8"))
    except (OSError, KeyError, zipfile.BadZipFile, UnicodeDecodeError):
        return None


def _installed_version(package: str, path: list[str]) -> str | None:
    """``__version__`` of ``package`` as found on ``path`` (directories only), without importing it."""
    spec = PathFinder.find_spec(package, path)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        version = Path(location) / "version.py"
        if version.is_file():
            return _version_in(version.read_text(encoding="utf-8"))
    return None


def _has_python(archive: str) -> bool:
    try:
        with zipfile.ZipFile(archive) as z:
            return any(name.endswith((".py", ".pyc")) for name in z.namelist())
    except (OSError, zipfile.BadZipFile):
        return True          # unreadable: leave it as Spark put it


def needless_archives(path: list[str]) -> list[str]:
    """The zip and jar entries of ``path`` the interpreter can import without (see the module's doc)."""
    archives = [p for p in path if p.endswith((".zip", ".jar")) and Path(p).is_file()]
    directories = [p for p in path if p not in archives]
    drop = []
    for archive in archives:
        name = Path(archive).name
        if name == "pyspark.zip" or name.startswith("py4j-"):
            package = "pyspark" if name == "pyspark.zip" else "py4j"
            inside = _archive_version(archive, package)
            if inside is not None and inside == _installed_version(package, directories):
                drop.append(archive)
        elif name.endswith(".jar") and not _has_python(archive):
            drop.append(archive)
    return drop


def drop_archives(archives: list[str]) -> None:
    """Take ``archives`` off ``sys.path`` and out of the import system's caches."""
    if not archives:
        return
    sys.path[:] = [p for p in sys.path if p not in archives]
    for key in list(sys.path_importer_cache):
        if any(key == a or key.startswith(a + "/") for a in archives):
            del sys.path_importer_cache[key]
    cache = getattr(zipimport, "_zip_directory_cache", {})
    for archive in archives:
        cache.pop(archive, None)


def main() -> None:
    if not any(m == "pyspark" or m.startswith(("pyspark.", "py4j")) for m in sys.modules):
        drop_archives(needless_archives(sys.path))
    from pyspark import daemon

    daemon.manager()


if __name__ == "__main__":
    main()
