"""pipeline.storage and the object-store side of pipeline.outputs, against a GCS emulator (tests/gcs_emulator.py)
and the local file system side by side."""

from __future__ import annotations

import bz2
import json

import pytest

pytest.importorskip("gcp_storage_emulator")

from gcs_emulator import emulator_env  # noqa: E402
from pipeline import storage  # noqa: E402
from pipeline.ingest.files import expand  # noqa: E402
from pipeline.ingest.readers import read_file  # noqa: E402
from pipeline.outputs import StageOutput, TableWriter, committed, read_table, row_groups, table_rows  # noqa: E402
from pipeline.records import Document, Quarantined  # noqa: E402


@pytest.fixture(scope="module")
def gcs():
    with emulator_env() as host:
        yield host


@pytest.fixture(params=["local", "gcs"])
def root(request, tmp_path):
    if request.param == "local":
        return str(tmp_path)
    request.getfixturevalue("gcs")
    return f"gs://bkt/{request.node.name.replace('[', '-').rstrip(']')}"


def test_is_remote():
    assert storage.is_remote("gs://b/x") and storage.is_remote("s3://b/x")
    assert not storage.is_remote("/tmp/x") and not storage.is_remote("x/y") and not storage.is_remote("file:///x")


def test_files_listing_and_ranges(root):
    storage.write_text(storage.join(root, "d", "a.txt"), "hello")
    storage.write_bytes(storage.join(root, "d", "sub", "b.bin"), bytes(range(200)))
    assert storage.is_dir(storage.join(root, "d")) and not storage.exists(storage.join(root, "nothing"))
    assert [(rel, size) for rel, size, _ in storage.walk(storage.join(root, "d"))] == [("a.txt", 5),
                                                                                      ("sub/b.bin", 200)]
    assert storage.listdir(storage.join(root, "d")) == ["a.txt", "sub"]
    assert storage.read_range(storage.join(root, "d", "sub", "b.bin"), 100, 3) == bytes([100, 101, 102])
    with storage.open_input_stream(storage.join(root, "d", "a.txt")) as f:
        assert f.readline(3) == b"hel" and f.read() == b"lo"
    storage.copy_tree(storage.join(root, "d"), storage.join(root, "e"))
    assert [rel for rel, _, _ in storage.walk(storage.join(root, "e"))] == ["a.txt", "sub/b.bin"]
    storage.delete_dir(storage.join(root, "d"))
    storage.delete_dir(storage.join(root, "never-there"))
    assert storage.walk(storage.join(root, "d")) == [] and storage.mtime_ns(storage.join(root, "e", "a.txt")) > 0


def _doc(i: int) -> Document:
    return Document(id=f"s:{i}", source="s", format="text", text=f"第{i}个文档", file="f", position=i)


def test_table_writer_parts_and_abort(root):
    table = storage.join(root, "t")
    writer = TableWriter(table, "documents", "part-00000", row_group_bytes=200)
    for i in range(50):
        writer.add(_doc(i))
    assert writer.close() == 50
    # a later attempt of the same task that fails (or a speculative copy that is killed) mid-write leaves the
    # part the successful attempt wrote as it was, and nothing a reader would take for data
    failed = TableWriter(table, "documents", "part-00000")
    failed.add(_doc(99))
    failed._flush()
    failed.abort()
    assert table_rows(table) == 50 and len(row_groups(table)) > 1
    assert read_table(table, "documents", ["id"]).column("id").to_pylist() == [f"s:{i}" for i in range(50)]
    assert [rel for rel, _, _ in storage.walk(table)] == ["part-00000.parquet"]


def test_stage_output_replaces_the_old_output_and_commits_last(root):
    for generation in (1, 2):
        with StageOutput(root, "clean") as out:
            writer = TableWriter(out.table("documents"), "documents", f"gen-{generation}")
            writer.add(_doc(generation))
            writer.close()
            assert not committed(storage.join(root, "clean")) or generation == 2
            final = out.publish({"generation": generation})
        assert str(final) == storage.join(root, "clean")
        assert json.loads(storage.read_text(storage.join(final, "stats.json"))) == {"generation": generation}
        assert [rel for rel, _, _ in storage.walk(final)] == [f"documents/gen-{generation}.parquet", "stats.json"]
        assert committed(final)
    assert [n for n in storage.listdir(root) if n.startswith(".")] == []   # the temporary tree is gone


def test_failed_stage_publishes_nothing(root):
    with pytest.raises(RuntimeError):
        with StageOutput(root, "dedup") as out:
            writer = TableWriter(out.table("documents"), "documents", "part-0")
            writer.add(_doc(1))
            writer.close()
            raise RuntimeError("the stage failed")
    assert storage.walk(root) == []


def test_ingest_lists_and_reads_remote_inputs(gcs):
    text = "".join(json.dumps({"id": str(i), "title": "t", "text": f"这是第{i}篇文章。"}, ensure_ascii=False) + "\n"
                   for i in range(3))
    storage.write_bytes("gs://bkt/in/wiki/AA/wiki_00.bz2", bz2.compress(text.encode()))
    storage.write_text("gs://bkt/in/wiki/AA/wiki_01", text)
    storage.write_text("gs://bkt/in/wiki/_hidden", "x")
    files = expand("gs://bkt/in/wiki", "wiki", "wiki2019zh")
    assert [(f.relpath, f.size > 0) for f in files] == [("AA/wiki_00.bz2", True), ("AA/wiki_01", True)]
    assert [f.relpath for f in expand("gs://bkt/in/wiki/AA/*.bz2")] == ["wiki_00.bz2"]   # as a local glob
    with pytest.raises(FileNotFoundError):
        expand("gs://bkt/in/none")
    records = [r for f in files for r in read_file(f, 1 << 20, lambda *a: None, None)]
    assert not [r for r in records if isinstance(r, Quarantined)]
    assert [r.id for r in records] == ["wiki:0", "wiki:1", "wiki:2"] * 2


def test_atomic_output_keeps_the_old_file_when_the_writer_fails(root):
    path = storage.join(root, "shard.bin")
    with storage.atomic_output(path) as f:
        f.write(b"whole")
    with pytest.raises(RuntimeError):
        with storage.atomic_output(path) as f:
            f.write(b"half")
            raise RuntimeError("the task failed mid-write")
    assert storage.read_bytes(path) == b"whole"
    assert [rel for rel, _, _ in storage.walk(root)] == ["shard.bin"]
