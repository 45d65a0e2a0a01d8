"""Issue 9, bad input at the unit level: the fixes the bad-input run needed, and the safety rules.

- format detection survives a malformed first line and a truncated compressed stream;
- a record that is not UTF-8 is quarantined with "not UTF-8", and GBK/GB18030 is named with the fix;
- a directory that cannot be listed is quarantined, never skipped; an empty file is counted;
- clean rejects a huge document as ``too_long`` before normalising it;
- a config is plain YAML: a Python tag is a clear error, on the command line too;
- nothing in the package evaluates code or unpickles data from a user's path.
"""

from __future__ import annotations

import ast
import bz2
import json
import os
from pathlib import Path

import pytest

from pipeline import config as cfg
from pipeline.clean.stage import Cleaner
from pipeline.cli import main
from pipeline.config import CleanOptions
from pipeline.counters import Counters
from pipeline.ingest.files import expand
from pipeline.ingest.formats import FormatError, detect
from pipeline.ingest.readers import read_file
from pipeline.records import Document, Quarantined, Rejected

PACKAGE = Path(__file__).resolve().parents[2] / "pipeline"


def read_all(path, fmt="auto"):
    count = Counters()
    records = [r for f in expand(str(path), "src", fmt) for r in read_file(f, 64 << 20, count)]
    return ([r for r in records if isinstance(r, Document)], [r for r in records if isinstance(r, Quarantined)],
            count)


def line(record: dict) -> bytes:
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


def test_a_malformed_first_line_does_not_hide_the_format(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"id": "1", "text": "a\x00b"}\n' + line({"id": "2", "title": "t", "text": "第二行的文字。"}))
    assert detect(str(path)) == "wiki2019zh"
    docs, bad, _ = read_all(path)
    assert [d.id for d in docs] == ["src:2"]
    assert [b.position for b in bad] == [1] and "Invalid control character" in bad[0].error


def test_a_truncated_stream_is_detected_from_what_was_read(tmp_path):
    first = b"".join(line({"id": str(i), "title": "t", "text": "一段文字。" * 20}) for i in range(5))
    second = bz2.compress(b"".join(line({"id": str(i), "title": "t", "text": "另一段。" * 20}) for i in range(5, 9)))
    path = tmp_path / "x.jsonl.bz2"
    path.write_bytes(bz2.compress(first) + second[: len(second) // 2])
    assert detect(str(path)) == "wiki2019zh"
    docs, bad, _ = read_all(path)
    assert [d.id for d in docs] == [f"src:{i}" for i in range(5)]
    assert [b.position for b in bad] == [6] and "file ended early" in bad[0].error


def test_a_first_record_longer_than_the_sniff_is_detected_from_its_keys(tmp_path):
    wiki = tmp_path / "long.jsonl"
    wiki.write_bytes(line({"id": "1", "title": "长", "text": "长" * 100_000}) + line({"id": "2", "text": "短"}))
    assert detect(str(wiki)) == "wiki2019zh"
    web = tmp_path / "web.json"            # webtext2019zh's answer_id comes after the long content
    web.write_bytes(line({"qid": "q", "title": "t", "desc": "", "topic": "x", "star": 1,
                          "content": "长\"引号\\" * 30_000, "answer_id": "a1", "answerer_tags": ["t"]}))
    assert detect(str(web)) == "webtext2019zh"
    odd = tmp_path / "odd.jsonl"
    odd.write_bytes(line({"foo": "长" * 100_000}))
    with pytest.raises(FormatError, match=r"first record is longer than the 64 KB .* fields \['foo'\]"):
        detect(str(odd))
    docs, bad, _ = read_all(wiki)
    assert [len(d.text) for d in docs] == [100_000, 1] and not bad


@pytest.mark.parametrize("encoding, text, gbk", [
    ("gbk", "中文语料库的一个段落，保存时没有用统一码。", True),
    ("gb18030", "中文语料库的一个段落，保存时没有用统一码。", True),
    ("latin-1", "un café, très bien", False),
    ("utf-16-le", "中文语料库的一个段落。", False),
])
def test_text_that_is_not_utf8_is_quarantined_and_gbk_is_named(tmp_path, encoding, text, gbk):
    """Big5 is not told apart from GBK (its bytes are valid GBK, read as other Han characters): the hint says
    'looks like', and the record is quarantined either way, never decoded by guessing."""
    path = tmp_path / "x.txt"
    path.write_bytes(text.encode(encoding) + b"\n\n" + "好的文字。\n".encode())
    docs, bad, _ = read_all(path, fmt="text")
    assert [d.text for d in docs] == ["好的文字。"]
    assert len(bad) == 1 and bad[0].position == 1 and bad[0].error.startswith("not UTF-8")
    assert ("looks like GBK/GB18030" in bad[0].error) == gbk


def test_empty_files_are_counted(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "empty.txt").write_bytes(b"")
    (tmp_path / "in" / "one.txt").write_text("一句话。\n", encoding="utf-8")
    docs, bad, count = read_all(tmp_path / "in")
    assert len(docs) == 1 and not bad
    assert count["ingest.files"] == 2 and count["ingest.files.no_records"] == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="running as root: chmod 000 does not stop root from listing a "
                    "directory (the bad-input run uses a symlink loop for an unreadable file instead)")
def test_a_directory_that_cannot_be_listed_is_quarantined(tmp_path):
    root = tmp_path / "in"
    (root / "locked").mkdir(parents=True)
    (root / "locked" / "a.txt").write_text("一句话。\n", encoding="utf-8")
    (root / "ok.txt").write_text("另一句话。\n", encoding="utf-8")
    os.chmod(root / "locked", 0)
    try:
        docs, bad, _ = read_all(root)
    finally:
        os.chmod(root / "locked", 0o755)
    assert len(docs) == 1
    assert len(bad) == 1 and bad[0].position == 0 and "cannot list directory" in bad[0].error


def test_a_huge_document_is_rejected_before_normalising():
    options = CleanOptions(max_chars=1000)
    huge = Document(id="s:1", source="s", format="text", text="长" * 5000, file="f", position=1)
    count = Counters()
    result = Cleaner(options).process(huge, count)
    assert isinstance(result, Rejected) and result.rule == "too_long" and "before normalisation" in result.detail
    assert result.text == huge.text and count["clean.rejected.too_long"] == 1
    spaced = Document(id="s:2", source="s", format="text", text="长。 \n" * 400, file="f", position=1)
    kept = Cleaner(CleanOptions(max_chars=1000, max_duplicate_line_ratio=1, max_repeated_ngram_ratio=1)).process(
        spaced)
    assert isinstance(kept, Document)     # 1,600 raw characters, 800 of them non-space: not too long


def test_a_python_tag_in_a_config_is_a_clear_error(tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(f"engine: beam\ninputs: !!python/object/apply:os.system ['touch {marker}']\n", encoding="utf-8")
    with pytest.raises(cfg.ConfigError, match=r"evil.yaml \(line 2, column 9\): only plain YAML"):
        cfg.load(path)
    assert main(["config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "no language-specific tags" in err and "python/object/apply:os.system" in err
    assert not marker.exists()


# calls that run code or rebuild objects from bytes; the allowed ones name the files they read
UNSAFE_CALLS = {"eval", "exec", "compile", "yaml.load", "yaml.unsafe_load", "yaml.full_load", "pickle.load",
                "pickle.loads", "cloudpickle.load", "cloudpickle.loads", "marshal.load", "marshal.loads",
                "dill.load", "dill.loads", "shelve.open", "torch.load", "numpy.load", "np.load", "jsonpickle.decode"}
ALLOWED: set[tuple[str, str]] = set()    # (file, call) pairs that would need a reason; none today


def _call_name(node: ast.Call) -> str:
    parts, func = [], node.func
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def _weights_only(node: ast.Call) -> bool:
    return any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
               for k in node.keywords)


def test_no_code_is_evaluated_and_nothing_is_unpickled_from_user_paths():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(PACKAGE))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = _call_name(node)
                if name == "torch.load" and _weights_only(node):
                    continue        # tensors and plain containers only: torch refuses any other object
                if name in UNSAFE_CALLS and (rel, name) not in ALLOWED:
                    found.append(f"{rel}:{node.lineno} {name}")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if getattr(node, "module", None) else [])
                if any(n.split(".")[0] in ("marshal", "shelve", "dill", "jsonpickle") for n in names):
                    found.append(f"{rel}:{node.lineno} import {names}")
    assert not found, found


def test_a_long_unpunctuated_run_is_cut_before_the_segmenter_holds_it():
    from pipeline.segment.segmenters import MAX_CHUNK_CHARS, JiebaSegmenter, cut_long

    text = "".join(chr(0x4E00 + (i * 7919) % 3000) for i in range(3 * MAX_CHUNK_CHARS + 123))
    pieces = cut_long(text)
    assert "".join(pieces) == text and len(pieces) == 4 and max(map(len, pieces)) <= MAX_CHUNK_CHARS
    marked = text[:MAX_CHUNK_CHARS - 50] + "，" + text[MAX_CHUNK_CHARS - 50:]
    assert cut_long(marked)[0] == text[:MAX_CHUNK_CHARS - 50] + "，"     # cut after the comma in the last tenth
    count = Counters()
    sentence = "开头 " + text
    words = JiebaSegmenter().segment([sentence, "短句。"], count)
    assert "".join(words[0]) == sentence and words[1] and count["segment.long_chunks_cut"] == 1
    assert max(map(len, words[0])) <= MAX_CHUNK_CHARS


def test_jieba_never_reads_a_dictionary_cache_planted_in_the_shared_temp_dir(tmp_path):
    """jieba's default cache is ``$TMPDIR/jieba.cache``, read with marshal: a planted one must be ignored."""
    import marshal
    import subprocess
    import sys

    shared, cache = tmp_path / "shared-tmp", tmp_path / "cache"
    shared.mkdir()
    (shared / "jieba.cache").write_bytes(marshal.dumps(({"中": 1, "中文": 0, "中文分": 0, "中文分词": 0,
                                                                  "中文分词是": 10**9}, 10**9 + 1)))
    os.utime(shared / "jieba.cache", (2**31, 2**31))          # newer than jieba's dictionary
    code = ("from pipeline.segment.segmenters import JiebaSegmenter\n"
            "print(JiebaSegmenter().segment(['中文分词是'])[0])\n")
    env = dict(os.environ, TMPDIR=str(shared), XDG_CACHE_HOME=str(cache),
               PYTHONPATH=str(PACKAGE.parent))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['中文', '分词', '是']"          # jieba's own dictionary, not the planted one
    private = cache / "wwm" / "jieba"
    assert (private / "jieba.cache").is_file() and private.stat().st_mode & 0o077 == 0
