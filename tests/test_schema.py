import dataclasses
import json

import pyarrow as pa
import pytest

from pipeline import schema
from pipeline.records import RECORD_TYPES, Document, from_row, to_row


@pytest.mark.parametrize("record_type", RECORD_TYPES, ids=lambda c: c.__name__)
def test_record_fields_match_their_schema(record_type):
    table = schema.load(record_type.TABLE)
    assert sorted(f.name for f in dataclasses.fields(record_type)) == sorted(table.names)
    for f in table:
        hinted = {x.name: x.type for x in dataclasses.fields(record_type)}[f.name]
        # a non-nullable column has no None default in the record
        assert f.nullable == ("None" in hinted), f"{record_type.__name__}.{f.name}"


def test_schema_metadata_carries_name_and_version():
    docs = schema.load("documents")
    assert docs.metadata[b"wwm.schema"] == b"documents"
    assert docs.metadata[b"wwm.schema_version"] == b"1"
    assert docs.field("sentences").type == pa.list_(pa.string())
    assert docs.field("position").type == pa.int64()
    assert not docs.field("id").nullable


def test_every_schema_file_loads_and_names_itself(tmp_path):
    names = set()
    for path in schema.schema_dir().glob("*.json"):
        spec = json.loads(path.read_text(encoding="utf-8"))
        assert path.name == f"{spec['name']}.v{spec['version']}.json"
        names.add(spec["name"])
        if "fields" in spec:
            assert schema.load(spec["name"], spec["version"]).names == [f["name"] for f in spec["fields"]]
    assert {"documents", "rejected", "duplicates", "quarantined", "segmented", "tfrecord_features",
            "manifest"} <= names


def test_unknown_schema_and_version_are_errors():
    with pytest.raises(KeyError):
        schema.load("nope")
    with pytest.raises(KeyError):
        schema.load("documents", 99)
    with pytest.raises(ValueError):
        schema.arrow_type("list<decimal>")


def test_row_round_trip_keeps_every_field():
    doc = Document(id="a:1", source="a", format="jsonl", text="一\n二", file="f", position=3, title="t",
                   url=None, sentences=["一", "二"], chars_converted=2, meta='{"k": 1}')
    row = to_row(doc)
    assert list(row) == [f.name for f in dataclasses.fields(Document)]
    table = pa.Table.from_pylist([row], schema=schema.load("documents"))
    assert from_row(Document, table.to_pylist()[0]) == doc
