import json
import pickle

import pytest

from conftest import shared_file
from pipeline.cli import main
from pipeline.config import SegmentOptions
from pipeline.counters import Counters
from pipeline.records import Document, Quarantined, Segmented
from pipeline.segment.gold import evaluate, read_gold, score, split_dev, train_legacy
from pipeline.segment.segmenters import (JiebaSegmenter, LtpLegacySegmenter, LtpNeuralSegmenter, SegmenterError,
                                         make_segmenter)
from pipeline.segment.stage import Segmentation

HARD = [
    "",
    "北京大学的学生在图书馆里学习自然语言处理。",
    "他說：「今天天氣很好。」",                                  # traditional script
    "iPhone 15 Pro 售价 7999 元 😀 还有 ABC-123 型号",            # Latin, digits, emoji, spaces
    "  两头有空格  \t中间也有  ",
    "孤立的代理项\ud800在这里",                                   # a lone surrogate
    "无标点的长句" * 16_667,                                       # 100,002 characters, no punctuation
]


@pytest.fixture(scope="module", params=["ltp", "jieba"])
def segmenter(request, sample_ltp_model):
    if request.param == "ltp":
        return LtpLegacySegmenter(str(sample_ltp_model))
    return JiebaSegmenter()


def test_words_always_join_back_to_the_sentence(segmenter):
    count = Counters()
    words = segmenter.segment(HARD, count)
    assert len(words) == len(HARD)
    for sentence, ws in zip(HARD, words):
        assert "".join(ws) == sentence
        assert all(ws)
    assert words[0] == []
    assert "\t" in "".join(words[4]) and any(w.isspace() for w in words[4])
    assert count["segment.repaired"] == 1          # the surrogate chunk, split into characters
    assert len(words[6]) > 1000                     # the long line really was segmented


def test_segmenters_find_words(segmenter):
    words = segmenter.segment(["我们在北京学习中文。"])[0]
    assert "北京" in words and "我们" in words and words[-1] == "。"


def test_segmenters_pickle_as_settings_and_reload(segmenter):
    segmenter.segment(["预热一下模型。"])
    again = pickle.loads(pickle.dumps(segmenter))
    assert not any(k.startswith("_engine") for k in again.__dict__)
    assert again.segment(["预热一下模型。"]) == segmenter.segment(["预热一下模型。"])


def test_model_errors_are_clear(tmp_path):
    with pytest.raises(SegmenterError, match="needs a model"):
        make_segmenter(SegmentOptions(segmenter="ltp", model=""))
    with pytest.raises(SegmenterError, match="does not exist"):
        make_segmenter(SegmentOptions(model=str(tmp_path / "missing.bin")))
    with pytest.raises(SegmenterError, match="no config.json"):
        make_segmenter(SegmentOptions(model=str(tmp_path)))
    (tmp_path / "config.json").write_text('{"tasks": {}}')
    with pytest.raises(SegmenterError, match="says neither"):
        make_segmenter(SegmentOptions(model=str(tmp_path)))
    (tmp_path / "config.json").write_text('{"nerual": true}')
    assert isinstance(make_segmenter(SegmentOptions(model=str(tmp_path))), LtpNeuralSegmenter)
    assert isinstance(make_segmenter(SegmentOptions(segmenter="jieba")), JiebaSegmenter)


def test_trained_model_directory_has_the_ltp_layout(sample_ltp_model):
    config = json.loads((sample_ltp_model / "config.json").read_text())
    assert config == {"nerual": False, "tasks": {"cws": "cws_model.bin"}}
    assert (sample_ltp_model / "cws_model.bin").read_bytes()[:4] == b"Obj\x01"   # Avro container


def test_training_needs_an_evaluation_set(tmp_path):
    with pytest.raises(ValueError, match="evaluation set"):
        train_legacy([["今天", "好"]], [], tmp_path)


def test_score_follows_sighan_spans():
    gold = [["北京", "大学", "的", "学生"]]
    assert score(gold, [["北京大学", "的", "学生"]]) == {
        "sentences": 1, "gold_words": 4, "predicted_words": 3, "correct": 2,
        "precision": 0.6667, "recall": 0.5, "f1": 0.5714}
    with pytest.raises(ValueError):
        score(gold, [["北京", "大"]])


def test_stage_segments_a_documents_sentences(sample_ltp_model):
    doc = Document(id="s:1", source="s", format="jsonl", text="今天天气很好。\n我们去公园。", file="f", position=1,
                   sentences=["今天天气很好。", "我们去公园。"])
    count = Counters()
    result = Segmentation(SegmentOptions(model=str(sample_ltp_model))).process(doc, count)
    assert isinstance(result, Segmented) and result.sentences == doc.sentences
    assert ["".join(w) for w in result.words] == doc.sentences
    assert count["segment.kept"] == 1 and count["segment.sentences"] == 2
    assert count["segment.chars"] == sum(len(s) for s in doc.sentences)


def test_a_segmenter_failure_quarantines_the_document():
    class Broken(JiebaSegmenter):
        def _segment_chunks(self, chunks):
            raise RuntimeError("engine exploded")

    doc = Document(id="s:2", source="s", format="jsonl", text="好", file="f", position=3, sentences=["好的。"])
    result = Segmentation(segmenter=Broken()).process(doc)
    assert isinstance(result, Quarantined) and "engine exploded" in result.error and result.position == 3


def test_train_and_eval_from_the_command_line(sample_dir, tmp_path, capsys):
    from pipeline.cli import write_sample_segmentation

    gold = write_sample_segmentation(str(sample_dir))
    assert main(["train-segmenter", str(gold), "--out", str(tmp_path / "m"), "--epochs", "3"]) == 0
    assert (tmp_path / "m" / "config.json").exists()
    capsys.readouterr()
    assert main(["segment-eval", "--gold", str(gold), "--sentences=-30:", "--segment-model",
                 str(tmp_path / "m")]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["sentences"] == 30 and result["f1"] > 0.8    # it learned its own training text's style


def test_pku_gold_small_ltp_model_reaches_the_target_and_jieba_its_published_f1(tmp_path):
    gold = read_gold(shared_file("segmentation", "pku_test_gold.utf8"))
    assert len(gold) == 1944
    train, dev = split_dev(gold[:1700], 0.1)
    train_legacy(train, dev, tmp_path / "pku", epochs=10)
    held_out = gold[1700:]
    ltp = evaluate(LtpLegacySegmenter(str(tmp_path / "pku")), held_out)
    jieba = evaluate(JiebaSegmenter(), held_out)
    print(json.dumps({"ltp_legacy_small": ltp, "jieba": jieba}, ensure_ascii=False))
    assert ltp["f1"] >= 0.88
    assert 0.78 <= jieba["f1"] <= 0.86          # published jieba F1 on PKU: 0.818


def _documents_table(docs):
    import pyarrow as pa

    from pipeline import schema
    from pipeline.records import to_row

    return pa.Table.from_pylist([to_row(d) for d in docs], schema=schema.load("documents"))


def _docs():
    texts = [["今天天气很好。", "我们去公园。"], ["北京大学的学生在图书馆里学习。"], [], ["  两头有空格  ", "孤单"]]
    docs = [Document(id=f"s:{i}", source="s", format="jsonl", text="\n".join(t), file="f", position=i + 1,
                     sentences=t, title=None if i % 2 else f"题{i}") for i, t in enumerate(texts)]
    # before clean: no sentence list, the text's non-empty lines are the sentences
    docs.append(Document(id="s:9", source="s", format="jsonl", text="第一行。\n\n第二行有，逗号。", file="g", position=9))
    return docs


def test_a_table_of_documents_gives_the_rows_and_counts_of_one_document_at_a_time(segmenter):
    from pipeline.records import to_row
    from pipeline.segment.stage import COLUMNS, slices

    docs = _docs()
    one, batch = Counters(), Counters()
    segmentation = Segmentation(segmenter=segmenter)
    expected = [to_row(segmentation.process(d, one)) for d in docs]
    table = _documents_table(docs).select(COLUMNS)
    pieces = list(slices(table, limit=20))          # small slices: several segmenter calls
    assert 1 < len(pieces) < len(docs) + 1 and sum(p.num_rows for p in pieces) == len(docs)
    rows = []
    for piece in pieces:
        segmented, quarantined = segmentation.process_table(piece, batch)
        assert quarantined == []
        rows += segmented.to_pylist()
    assert rows == expected
    assert rows[-1]["sentences"] == ["第一行。", "第二行有，逗号。"]
    assert batch.as_dict() == one.as_dict() and batch["segment.read"] == len(docs)


def test_a_failure_in_a_table_quarantines_only_its_document():
    from pipeline.segment.stage import COLUMNS

    class BrokenOnBeijing(JiebaSegmenter):
        def _segment_chunks(self, chunks):
            if any("北京" in c for c in chunks):
                raise RuntimeError("engine exploded")
            return super()._segment_chunks(chunks)

    docs = _docs()
    count = Counters()
    segmented, quarantined = Segmentation(segmenter=BrokenOnBeijing()).process_table(
        _documents_table(docs).select(COLUMNS), count)
    assert [q.id for q in quarantined] == ["s:1"] and "engine exploded" in quarantined[0].error
    assert quarantined[0].position == 2 and quarantined[0].excerpt.startswith("北京大学")
    assert segmented.column("id").to_pylist() == [d.id for d in docs if d.id != "s:1"]
    for row in segmented.to_pylist():
        assert ["".join(w) for w in row["words"]] == row["sentences"]
    assert count["segment.read"] == 5 and count["segment.kept"] == 4 and count["segment.quarantined"] == 1


def test_arrow_rows_and_records_go_into_one_part_in_order(tmp_path):
    import pyarrow as pa

    from pipeline.outputs import TableWriter, read_table

    rows = [Segmented(id=f"s:{i}", source="s", sentences=["好。"], words=[["好", "。"]], file="f", position=i)
            for i in range(3)]
    writer = TableWriter(tmp_path / "segmented", "segmented", "part-00000")
    writer.add(rows[0])
    arrow = pa.Table.from_pylist([{"position": r.position, "id": r.id, "source": r.source, "title": None,
                                   "sentences": r.sentences, "words": r.words, "file": r.file} for r in rows[1:]])
    writer.add_table(arrow)                         # columns in another order, types inferred: conformed
    writer.add_table(arrow.slice(0, 0))             # nothing
    assert writer.close() == 3
    assert read_table(tmp_path / "segmented", "segmented").column("id").to_pylist() == ["s:0", "s:1", "s:2"]
