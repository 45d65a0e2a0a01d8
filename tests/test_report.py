"""The run report: figures gathered from a real run (sample corpus, jieba), the HTML they render to,
and the page as headless Chromium shows it."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.report import write_report
from pipeline.report.collect import EXAMPLE_CHARS, collect
from pipeline.report.html import SECTIONS, render
from pipeline.stages import run_all
from conftest import make_config

PLOTTED = ("funnel", "rejections", "duplicates", "conversion", "segmentation", "vocab", "shards", "timing")


@pytest.fixture(scope="module")
def run_dir(sample_inputs, tmp_path_factory) -> Path:
    """A whole ``wwm run`` of the sample (the command line, in process): it writes the report itself."""
    from pipeline import config as cfg

    out = tmp_path_factory.mktemp("report-run")
    config_file = out.parent / f"{out.name}.yaml"
    config_file.write_text(cfg.dump(make_config(out, sample_inputs, segment={"segmenter": "jieba"})), encoding="utf-8")
    assert main(["run", "--config", str(config_file), "--output", str(out)]) == 0
    assert (out / "report.html").is_file() and (out / "report.json").is_file()     # issue 19.5: written by the run
    return out


class _Sections(HTMLParser):
    """Per <section id=...>: its figures (id, svg elements drawn inside), images, and every URL-bearing attribute."""

    def __init__(self):
        super().__init__()
        self.sections: dict[str, list[dict]] = {}
        self.current = None
        self.figure = None
        self.urls: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        for key in ("src", "href", "xlink:href", "action", "data"):
            if attrs.get(key):
                self.urls.append(attrs[key])
        if tag == "section":
            self.current = attrs["id"]
            self.sections[self.current] = []
        elif tag == "figure" and "plot" in (attrs.get("class") or ""):
            self.figure = {"id": attrs.get("id"), "svg": 0, "drawn": 0, "png": 0}
            self.sections[self.current].append(self.figure)
        elif self.figure is not None:
            if tag == "svg":
                self.figure["svg"] += 1
            elif tag in ("path", "use", "rect", "text"):
                self.figure["drawn"] += 1
            elif tag == "img" and (attrs.get("src") or "").startswith("data:image/png;base64,"):
                self.figure["png"] += len(attrs["src"]) > 100

    def handle_endtag(self, tag):
        if tag == "figure":
            self.figure = None
        elif tag == "section":
            self.current = None


def _parse(text: str) -> _Sections:
    parser = _Sections()
    parser.feed(text)
    return parser


def test_report_figures_agree_with_the_stage_stats(run_dir):
    data = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    stats = data["stages"]
    assert data["stages_run"] == ["ingest", "clean", "dedup", "segment", "vocab", "shards"]
    # the funnel's documents are what each stage kept, per source and in total
    for stage in ("ingest", "clean", "dedup", "segment"):
        assert data["funnel"]["totals"][stage]["documents"] == stats[stage]["accounting"]["kept"]
        assert {s: per[stage]["documents"] for s, per in data["funnel"]["by_source"].items()
                if per[stage]["documents"]} == stats[stage]["documents_by_source"]
    assert data["funnel"]["totals"]["segment"]["characters"] == stats["segment"]["counters"]["segment.chars"]
    totals = [data["funnel"]["totals"][s]["characters"] for s in ("ingest", "clean", "dedup")]
    assert totals[0] > totals[2] and totals[1] > totals[2]
    # every rule that rejected something has its examples, cut to EXAMPLE_CHARS
    clean = data["rejections"]["stages"]["clean"]
    assert clean["by_rule"] == stats["clean"]["rejected_by_rule"] and set(clean["examples"]) == set(clean["by_rule"])
    assert all(len(ex["text"]) <= EXAMPLE_CHARS + 1 and ex["detail"] for exs in clean["examples"].values() for ex in exs)
    # duplicates: both texts of every pair found; exact pairs have the same text
    dup = data["duplicates"]
    assert dup["total"] == stats["dedup"]["accounting"]["duplicate"] == len(dup["examples"])
    assert all(ex["dropped"]["text"] and ex["kept"]["text"] for ex in dup["examples"])
    assert any(ex["method"] == "minhash" and ex["similarity"] < 1 for ex in dup["examples"])
    # conversion per source sums to the clean stage's counters
    conv = data["conversion"]
    assert conv["characters_converted"] == stats["clean"]["counters"]["clean.chars_converted"] > 0
    assert sum(v["characters_converted"] for v in conv["by_source"].values()) == conv["characters_converted"]
    assert sum(v["documents_converted"] for v in conv["by_source"].values()) == conv["documents_converted"]
    # length distributions count every sentence the segment stage counted
    seg = data["segmentation"]
    assert seg["segmenter"]["segmenter"] == "jieba" and seg["chars_per_s"] > 0
    assert sum(seg["sentence_length"]["counts"]) == seg["sentence_length"]["count"] == seg["sentences"]
    assert 1 <= seg["word_length"]["median"] <= 4 < seg["sentence_length"]["median"]
    # shards: per-shard figures add up to the manifest's
    shards = data["shards"]
    assert sum(p["instances"] for p in shards["per_shard"]) == shards["instances"] == stats["shards"]["instances"]
    assert shards["masked_share"] == round(shards["masked_tokens"] / shards["tokens"], 4)
    assert 0.1 < shards["masked_share"] < 0.2 and 0.4 < shards["next_sentence"]["random_share"] < 0.6
    assert data["vocab"]["size"] == stats["vocab"]["size"]
    assert [t["stage"] for t in data["timing"]] == data["stages_run"] and all(t["seconds"] > 0 for t in data["timing"])


def test_every_section_renders_with_non_empty_plots_and_nothing_external(run_dir):
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    parsed = _parse(text)
    assert list(parsed.sections) == [s for s, _ in SECTIONS]
    for section in PLOTTED:
        figures = parsed.sections[section]
        assert figures, f"section {section} has no plot"
        for figure in figures:
            assert figure["svg"] + figure["png"] >= 1 and figure["drawn"] > 10, (section, figure)
    # self-contained: the only links are to the page's own sections; no external loads at all
    assert all(url.startswith("#") for url in parsed.urls), [u for u in parsed.urls if not u.startswith("#")]
    assert "link" not in parsed.tags and "iframe" not in parsed.tags
    assert not re.search(r"url\(\s*['\"]?(https?:)?//|@import", text)
    # the figures' ids are unique across the inlined SVGs (matplotlib's clip paths would clash otherwise)
    ids = re.findall(r'\sid="([^"]+)"', text)
    assert len(ids) == len(set(ids))
    # the examples are there, escaped
    data = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    example = data["duplicates"]["examples"][0]["dropped"]["text"]
    assert html.escape(example.splitlines()[0]) in text


def test_document_text_is_escaped(run_dir):
    data = collect(run_dir)
    rule = next(iter(data["rejections"]["stages"]["clean"]["examples"]))
    data["rejections"]["stages"]["clean"]["examples"][rule][0]["text"] = '<script>alert("x")</script><img src=x>'
    text = render(data)
    assert "<script>alert" not in text and "<img src=x>" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text


def test_report_of_a_partial_run_says_what_is_missing(sample_inputs, tmp_path, capsys):
    run_all(make_config(tmp_path, sample_inputs), stages=("ingest", "clean"), log=lambda *_: None)
    assert main(["report", str(tmp_path)]) == 0
    assert "clean" in capsys.readouterr().out
    data = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert data["stages_run"] == ["ingest", "clean"]
    assert data["duplicates"] is data["segmentation"] is data["vocab"] is data["shards"] is None
    parsed = _parse((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert list(parsed.sections) == [s for s, _ in SECTIONS]
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    for stage in ("dedup", "segment", "vocab", "shards"):
        assert f"The {stage} stage was not run." in page
    assert parsed.sections["funnel"] and parsed.sections["conversion"] and parsed.sections["timing"]


# --- headless Chromium ------------------------------------------------------------------------------------

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
_INSTALL_TRIED: list[str] = []


def _browser() -> str:
    """A Chromium on PATH; installs Debian's ``chromium`` once when missing (as root), else skips with why."""
    for name in BROWSERS:
        if shutil.which(name):
            return shutil.which(name)
    if not _INSTALL_TRIED:
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            _INSTALL_TRIED.append("no chromium on PATH, and apt-get is missing or this is not root")
        else:
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            done = subprocess.run("apt-get update && apt-get install -y chromium", shell=True, env=env,
                                  capture_output=True, text=True, timeout=900)
            _INSTALL_TRIED.append("" if done.returncode == 0 else
                                  f"apt-get install chromium failed: {(done.stderr or done.stdout)[-300:]}")
    for name in BROWSERS:
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip(f"no headless Chromium: {_INSTALL_TRIED[0] or 'installed, but not on PATH'}")


def _chromium(browser: str, page: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                           "--v=0", *args, page.resolve().as_uri()], capture_output=True, text=True, timeout=180)


def _console(stderr: str) -> list[str]:
    """Page console messages (Chromium logs every level, errors and uncaught exceptions included, as CONSOLE)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def test_the_checks_catch_a_broken_page(tmp_path):
    """The console and plot checks below do fail on a page with an empty plot and a script error."""
    browser = _browser()
    page = tmp_path / "broken.html"
    scripts = re.search(r"<script>.*</script>", render(collect_stub()), re.S).group(0)
    page.write_text(f'<!DOCTYPE html><html><body><figure class="plot" id="plot-empty"><svg></svg></figure>'
                    f'{scripts}<script>undefinedFunction()</script></body></html>', encoding="utf-8")
    done = _chromium(browser, page, "--dump-dom")
    assert 'data-plots-rendered="0/1"' in done.stdout
    messages = _console(done.stderr)
    assert any("plot not rendered: plot-empty" in m for m in messages)
    assert any("undefinedFunction" in m for m in messages)


def collect_stub() -> dict:
    """The smallest data ``render`` accepts: one stage's stats, every section empty (used for its script)."""
    stats = {"engine": "beam", "seconds": 0.1, "engine_startup_seconds": 0.0, "throughput": {},
             "accounting": {"read": 0, "kept": 0, "rejected": 0, "duplicate": 0, "quarantined": 0, "balanced": True}}
    return {"run_dir": "/nowhere", "stages_run": ["ingest"], "accounting": None, "funnel": None, "rejections": None,
            "duplicates": None, "conversion": None, "segmentation": None, "vocab": None, "shards": None,
            "timing": [{"stage": "ingest", "engine": "beam", "seconds": 0.1, "engine_startup_seconds": 0.0,
                        "read": 0, "docs_per_s": None, "mb_per_s": None, "throughput": {}}],
            "stages": {"ingest": stats}}


def test_report_renders_in_headless_chromium(run_dir, tmp_path):
    browser = _browser()
    page = run_dir / "report.html"
    figures = sum(len(f) for f in _parse(page.read_text(encoding="utf-8")).sections.values())
    # the page's own script measures every plot's drawing (getBBox) once loaded and records how many are non-empty
    done = _chromium(browser, page, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f'data-plots-rendered="{figures}/{figures}"' in done.stdout, done.stdout[-500:]
    assert _console(done.stderr) == []
    shot = tmp_path / "report.png"
    done = _chromium(browser, page, f"--screenshot={shot}", "--window-size=1280,4000", "--hide-scrollbars")
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    assert _console(done.stderr) == []
    assert _png_size(shot) == (1280, 4000)
    assert shot.stat().st_size > 50_000       # a blank 1280x4000 page compresses to a few KB
    print(f"screenshot: {shot}")


def test_figures_do_not_depend_on_the_batch_size(run_dir, monkeypatch):
    """Tables are read batch by batch (big runs are never loaded whole); sums over batches of 3 rows agree."""
    from pipeline.report import collect as collect_module

    whole = collect(run_dir)
    monkeypatch.setattr(collect_module, "BATCH_ROWS", 3)
    small = collect(run_dir)
    for key in ("funnel", "rejections", "conversion"):
        assert small[key] == whole[key]
    assert whole["funnel"]["totals"]["ingest"]["documents"] > 3 * 4


def test_report_shows_quarantine_errors_instances_sources_and_settings(run_dir):
    """Issue 19.5 and 19.13: what a person about to train checks, each figure derived once."""
    data = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    stats = data["stages"]
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    # quarantined records: error, file and line, as the rejected examples are shown
    q = data["rejections"]["quarantined"]["ingest"]
    assert q["total"] == stats["ingest"]["accounting"]["quarantined"] > 0
    for ex in q["examples"]:
        assert ex["error"] and ex["file"] and ex["line"] is not None
        assert html.escape(f"{ex['file']}:{ex['line']}") in page and html.escape(ex["error"]) in page
    # per instance: real tokens and masked positions, from the shards themselves
    per = data["shards"]["per_instance"]
    assert per["instances_read"] == min(data["shards"]["instances"], 20000)
    assert sum(per["real_tokens"]["counts"]) == per["instances_read"] == sum(per["masked_positions"]["counts"])
    assert per["real_tokens"]["max"] <= data["shards"]["max_seq_length"]
    if per["instances_read"] == data["shards"]["instances"]:
        read_masked = sum(i * n for i, n in enumerate(per["masked_positions"]["counts"]))
        assert read_masked == data["shards"]["masked_tokens"]
    example = per["example"]
    assert example["tokens"][0]["token"] == "[CLS]" and example["tokens"][-1]["token"] == "[SEP]"
    marked = [t for t in example["tokens"] if t["masked"] is not None]
    assert len(marked) == example["masked_positions"] > 0 and 'class="instance"' in page
    # tokens by source: the document tokens the shards are cut from
    by_source = data["shards"]["tokens_by_source"]
    assert by_source["tokens"] == stats["shards"]["counters"]["shards.document_tokens"]
    assert set(by_source["by_source"]) == {s for s, per in data["funnel"]["by_source"].items()
                                           if per["segment"]["documents"]}
    # the Jaccard axis stops at 1; every stage has a documents/s bar
    assert all(0 <= x <= 1 for x in data["duplicates"]["near_similarity"])
    assert all(t["docs_per_s"] and t["docs_per_s"] > 0 for t in data["timing"])
    # figures derived once: the conversion headline is its table's sum, shares print in percent
    conv = data["conversion"]
    assert conv["characters_kept"] == sum(v["characters"] for v in conv["by_source"].values())
    assert conv["documents_kept"] == stats["clean"]["accounting"]["kept"]
    assert f"{100 * conv['share']:.2f} %" in page
    seg = data["segmentation"]
    assert seg["words"] == seg["word_length"]["count"] and seg["sentences"] == seg["sentence_length"]["count"]
    assert f"{100 * data['shards']['masked_share']:.2f} %" in page
    # the run's settings and version
    assert data["settings"]["report_version"] and all(v["version"] for v in data["settings"]["stages"].values())
    assert data["settings"]["stages"]["dedup"]["settings"]["containment"] == 0.8
    assert "Settings of each stage" in page
