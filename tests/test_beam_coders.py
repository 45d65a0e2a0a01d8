import pyarrow as pa

from pipeline import schema


def test_arrow_table_coder_round_trips_a_slice_and_sizes_it_by_its_buffers():
    from pipeline.beam.io import ArrowTableCoder

    target = schema.load("segmented")
    rows = [{"id": f"d{i}", "source": "s", "title": None if i % 2 else "标题", "sentences": ["一。", "二"],
             "words": [["一", "。"], ["二"]], "file": "f", "position": i} for i in range(5)]
    table = pa.Table.from_pylist(rows, schema=target).slice(1, 3)
    coder = ArrowTableCoder()
    back = coder.decode(coder.encode(table))
    assert back.schema == table.schema and back.to_pylist() == table.to_pylist()
    impl = coder.get_impl()
    assert impl.estimate_size(table) == table.get_total_buffer_size()
