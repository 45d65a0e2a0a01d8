"""Load the versioned table schemas kept as JSON under ``schemas/``.

The JSON files are the one definition of every table; this module turns them
into ``pyarrow`` schemas (engine adapters convert those further).  Installed,
the files live in the ``pipeline._schemas`` package data; in a source checkout
they are read from the top-level ``schemas/`` directory.
"""

from __future__ import annotations

import functools
import json
import re
import zipfile
from pathlib import Path

import pyarrow as pa

_SOURCE_DIR = Path(__file__).resolve().parent.parent / "schemas"
_FILE = re.compile(r"^(?P<name>[a-z_]+)\.v(?P<version>\d+)\.json$")
_SCALARS = {
    "string": pa.string(),
    "int64": pa.int64(),
    "int32": pa.int32(),
    "double": pa.float64(),
    "float": pa.float32(),
    "bool": pa.bool_(),
}


def _zipped_schemas():
    """``pipeline/_schemas`` inside the zip this package was imported from (Spark's ``--py-files``), or None."""
    archive = getattr(__loader__, "archive", None)   # set by zipimport only
    if not archive:
        return None
    inner = Path(__file__).parent.relative_to(archive).as_posix()
    found = zipfile.Path(archive, f"{inner}/_schemas/")
    return found if found.is_dir() else None


def schema_dir():
    """Directory holding the schema JSON files (a ``zipfile.Path`` when the package is imported from a zip)."""
    zipped = _zipped_schemas()
    if zipped is not None:
        return zipped
    installed = Path(__file__).resolve().parent / "_schemas"
    if installed.is_dir() and any(installed.glob("*.json")):
        return installed
    if _SOURCE_DIR.is_dir():
        return _SOURCE_DIR
    raise FileNotFoundError("schema files not found (looked in pipeline/_schemas and schemas/)")


@functools.lru_cache(maxsize=None)
def spec(name: str, version: int | None = None) -> dict:
    """The raw JSON spec of a schema, newest version unless one is asked for."""
    found = {}
    for path in schema_dir().iterdir():
        match = _FILE.match(path.name)
        if match and match["name"] == name:
            found[int(match["version"])] = path
    if not found:
        raise KeyError(f"no schema named {name!r} in {schema_dir()}")
    chosen = max(found) if version is None else version
    if chosen not in found:
        raise KeyError(f"schema {name!r} has no version {chosen} (have {sorted(found)})")
    return json.loads(found[chosen].read_text(encoding="utf-8"))


def arrow_type(type_name: str) -> pa.DataType:
    """Arrow type for a schema type string such as ``int64`` or ``list<string>``."""
    if type_name.startswith("list<") and type_name.endswith(">"):
        return pa.list_(arrow_type(type_name[5:-1]))
    try:
        return _SCALARS[type_name]
    except KeyError:
        raise ValueError(f"unknown schema type {type_name!r}") from None


@functools.lru_cache(maxsize=None)
def load(name: str, version: int | None = None) -> pa.Schema:
    """The Arrow schema of table ``name``."""
    table = spec(name, version)
    fields = [
        pa.field(f["name"], arrow_type(f["type"]), nullable=f.get("nullable", True),
                 metadata={"doc": f.get("doc", "")})
        for f in table["fields"]
    ]
    return pa.schema(fields, metadata={
        "wwm.schema": table["name"],
        "wwm.schema_version": str(table["version"]),
    })


def field_names(name: str) -> list[str]:
    """Column names of table ``name`` in schema order."""
    return load(name).names
