"""``python -m jobs.pack zip OUT.zip``: the ``pipeline`` package as one zip for Spark's ``--py-files``.

The schema JSON files go in as ``pipeline/_schemas/`` (where the installed package has them), so the
package works imported from the zip. Entries are sorted and dated 1980-01-01: the same sources give the
same bytes.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EPOCH = (1980, 1, 1, 0, 0, 0)


def package_files(root: Path = ROOT) -> list[tuple[str, Path]]:
    """(name in the zip, file) for every module of ``pipeline`` and every schema file, sorted by name."""
    files = [(p.relative_to(root).as_posix(), p) for p in (root / "pipeline").rglob("*.py")
             if "__pycache__" not in p.parts]
    files += [(f"pipeline/_schemas/{p.name}", p) for p in (root / "schemas").iterdir()
              if p.suffix == ".json" or p.name in ("README.md", "__init__.py")]
    return sorted(files)


def build_zip(out: str | Path, root: Path = ROOT) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, path in package_files(root):
            info = zipfile.ZipInfo(name, EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "zip":
        print("usage: python -m jobs.pack zip OUT.zip", file=sys.stderr)
        return 2
    print(build_zip(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
