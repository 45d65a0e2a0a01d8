"""Render the report's data (``collect.collect``) as one self-contained HTML file.

Plots are made with matplotlib and inlined as SVG; nothing is loaded from
elsewhere (no scripts, fonts, styles or images by URL).  One small inline
script checks, once the page is shown, that every plot has a non-empty drawing
and records the result on ``<body data-plots-rendered="N/M">`` (the headless
browser test reads it); a plot without a drawing is reported with
``console.error``.
"""

from __future__ import annotations

import html
import io
import json
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

SECTIONS = (("summary", "Run"), ("funnel", "Documents and characters through the stages"),
            ("rejections", "Rejected documents"), ("duplicates", "Duplicates"),
            ("conversion", "Traditional-script conversion"), ("segmentation", "Segmentation"),
            ("vocab", "Vocabulary"), ("shards", "Shards"), ("timing", "Time and throughput"))

STYLE = """
body{font-family:sans-serif;margin:1.5em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right;vertical-align:top}
th{background:#f3f3f3}td.t,th.t{text-align:left}
figure.plot{margin:.6em 0}figure.plot svg{max-width:100%;height:auto}
.pair{display:flex;gap:1em;margin:.5em 0 1em}.pair>div{flex:1;border:1px solid #ddd;padding:.5em;background:#fafafa}
.text{white-space:pre-wrap;font-size:.9em}.meta{color:#666;font-size:.85em}.none{color:#a33;font-style:italic}
.instance{line-height:2;font-size:.95em}.instance span{padding:0 .15em;margin:0 .05em;border-radius:3px}
.instance .seg1{background:#eef4fb}.instance .masked{background:#f4c7c3;font-weight:bold}
.instance .masked sub{font-weight:normal;color:#555}
"""

CHECK_SCRIPT = """
window.addEventListener('load', function () {
  var figures = document.querySelectorAll('figure.plot');
  var ok = 0;
  figures.forEach(function (f) {
    var svg = f.querySelector('svg');
    var box = svg ? svg.getBBox() : null;
    if (box && box.width > 0 && box.height > 0 && svg.querySelectorAll('path,text,use').length > 0) { ok += 1; }
    else { console.error('plot not rendered: ' + f.id); }
  });
  document.body.setAttribute('data-plots-rendered', ok + '/' + figures.length);
});
"""


class _Plots:
    """Numbered matplotlib figures rendered to inline SVG, with ids that do not collide between figures."""

    def __init__(self):
        self.count = 0

    def svg(self, fig, name: str) -> str:
        self.count += 1
        buffer = io.StringIO()
        with matplotlib.rc_context({"svg.hashsalt": f"wwm-report-{self.count}", "svg.fonttype": "none"}):
            fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
        plt.close(fig)
        text = buffer.getvalue()
        text = text[text.index("<svg"):]                                   # no XML declaration or DOCTYPE
        text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)   # no RDF / licence URLs
        # matplotlib numbers its element ids per figure (figure_1, axes_1, ...): prefix them, and the
        # references to them, so that the page's ids stay unique
        prefix = f"f{self.count}-"
        text = re.sub(r'(\sid="|url\(#|href="#)', lambda m: m.group(1) + prefix, text)
        return f'<figure class="plot" id="plot-{html.escape(name)}">{text}</figure>'


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _n(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return _e(value)


def _pct(share) -> str:
    """A share (0..1) as a percentage, the one way every share is printed."""
    return "–" if share is None else f"{100 * share:.2f} %"


def _table(headers, rows, text_columns=(0,)) -> str:
    head = "".join(f'<th class="{"t" if i in text_columns else ""}">{_e(h)}</th>' for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td class="{"t" if i in text_columns else ""}">{cell}</td>'
                                    for i, cell in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _none(why: str) -> str:
    return f'<p class="none">{_e(why)}</p>'


def _summary(data, plots) -> str:
    parts = [f"<p>Run directory <code>{_e(data['run_dir'])}</code>; stages run: {_e(', '.join(data['stages_run']))}."
             f"</p>"]
    rows = []
    for stage, stats in data["stages"].items():
        a = stats["accounting"]
        rows.append([_e(stage), _e(stats.get("engine")), _n(a["read"]), _n(a["kept"]), _n(a["rejected"]),
                     _n(a["duplicate"]), _n(a["quarantined"]), "yes" if a.get("balanced") else "NO"])
    parts.append(_table(["stage", "engine", "read", "kept", "rejected", "duplicate", "quarantined", "balanced"],
                        rows, (0, 1)))
    settings = data.get("settings") or {}
    if settings:
        versions = sorted({str(v.get("version")) for v in settings.get("stages", {}).values()})
        parts.append(f"<p>wwm version {_e(', '.join(versions))} (report written by {_e(settings.get('report_version'))}"
                     f").</p>")
        rows = [[_e(stage), _e(v.get("engine")),
                 _e(", ".join(f"{k}={val}" for k, val in sorted((v.get("settings") or {}).items())))
                 if v.get("settings") is not None else '<span class="none">not recorded (no fingerprint.json)</span>']
                for stage, v in settings.get("stages", {}).items()]
        parts.append("<details><summary>Settings of each stage</summary>" +
                     _table(["stage", "engine", "settings"], rows, (0, 1, 2)) + "</details>")
    if data.get("accounting"):
        a = data["accounting"]
        parts.append(f"<p>Whole run: read {_n(a['read'])} = kept {_n(a['kept'])} + rejected {_n(a['rejected'])} + "
                     f"duplicate {_n(a['duplicate'])} + quarantined {_n(a['quarantined'])} "
                     f"({'balanced' if a['balanced'] else 'NOT balanced'}).</p>")
    return "".join(parts)


def _funnel(data, plots) -> str:
    f = data["funnel"]
    if f is None:
        return _none("No document stage (ingest, clean, dedup, segment) was run.")
    stages = f["stages"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for source, per in f["by_source"].items():
        for ax, key in zip(axes, ("documents", "characters")):
            ax.plot(stages, [per[s][key] for s in stages], marker="o", label=source)
    for ax, key in zip(axes, ("documents", "characters")):
        ax.set_title(f"{key} kept per source")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=.3)
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1, .5))
    parts = [plots.svg(fig, "funnel")]
    rows = [[_e(source)] + [f"{_n(per[s]['documents'])} / {_n(per[s]['characters'])}" for s in stages]
            for source, per in f["by_source"].items()]
    rows.append(["<b>total</b>"] + [f"<b>{_n(f['totals'][s]['documents'])} / {_n(f['totals'][s]['characters'])}</b>"
                                    for s in stages])
    parts.append(_table(["source (documents / characters)"] + stages, rows))
    parts.append(f'<p class="meta">{_e(f["note"])}.</p>')
    return "".join(parts)


def _rejections(data, plots) -> str:
    r = data["rejections"]
    if r is None:
        return _none("Neither clean nor shards was run: no rejection rules applied.")
    parts = []
    counts = {f"{stage}: {rule}": n for stage, info in r["stages"].items() for rule, n in info["by_rule"].items()}
    if counts:
        fig, ax = plt.subplots(figsize=(8, .4 * len(counts) + 1))
        ax.barh(list(counts), list(counts.values()), color="#c0504d")
        ax.invert_yaxis()
        ax.set_xlabel("documents rejected")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        parts.append(plots.svg(fig, "rejections"))
    else:
        parts.append(_none("No document was rejected."))
    for stage, info in r["stages"].items():
        for rule, examples in info["examples"].items():
            parts.append(f'<h3>{_e(stage)}: {_e(rule)} ({_n(info["by_rule"][rule])})</h3>')
            for ex in examples:
                parts.append(f'<div class="pair"><div><div class="meta">{_e(ex["id"])} · {_e(ex["source"])} · '
                             f'{_e(ex["detail"])}{" · " + _e(ex["title"]) if ex["title"] else ""}</div>'
                             f'<div class="text">{_e(ex["text"])}</div></div></div>')
    if r["quarantined_by_source"]:
        rows = [[_e(stage), _e(source), _n(n)] for stage, per in r["quarantined_by_source"].items()
                for source, n in per.items()]
        parts.append("<h3>Quarantined (unreadable) records</h3>" + _table(["stage", "source", "records"], rows, (0, 1)))
    for stage, q in (r.get("quarantined") or {}).items():
        kinds = ", ".join(f"{_e(k)} ({_n(n)})" for k, n in q["by_error"].items())
        parts.append(f"<h3>{_e(stage)}: quarantined ({_n(q['total'])})</h3><p class=\"meta\">by error: {kinds}</p>")
        for ex in q["examples"]:
            where = f"{ex['file']}:{ex['line']}"
            parts.append(f'<div class="pair"><div><div class="meta">{_e(where)} · {_e(ex["source"])}'
                         f'{" · " + _e(ex["id"]) if ex["id"] else ""}</div><div><b>{_e(ex["error"])}</b></div>'
                         f'<div class="text">{_e(ex["excerpt"])}</div></div></div>')
        if q["total"] > len(q["examples"]):
            parts.append(f'<p class="meta">The first {len(q["examples"])} of {_n(q["total"])}; all are in '
                         f'<code>{_e(stage)}/quarantined</code>.</p>')
    return "".join(parts)


def _duplicates(data, plots) -> str:
    d = data["duplicates"]
    if d is None:
        return _none("The dedup stage was not run.")
    if not d["total"]:
        return _none("Dedup ran and found no duplicates.")
    parts = [f"<p>{_n(d['total'])} documents dropped as duplicates: " +
             ", ".join(f"{_e(m)} {_n(n)}" for m, n in d["by_method"].items()) + "; by source " +
             ", ".join(f"{_e(s)} {_n(n)}" for s, n in d["by_source"].items()) + ".</p>"]
    methods = list(d["clusters"])
    fig, axes = plt.subplots(1, 2 if d["near_similarity"] else 1, figsize=(11 if d["near_similarity"] else 6, 3.5),
                             squeeze=False)
    ax = axes[0][0]
    sizes = sorted({int(k) for c in d["clusters"].values() for k in c["size_histogram"]})
    width = .8 / max(1, len(methods))
    for i, method in enumerate(methods):
        hist = d["clusters"][method]["size_histogram"]
        ax.bar([sizes.index(int(k)) + (i - (len(methods) - 1) / 2) * width for k in hist], list(hist.values()),
               width=width, label=method)
    ax.set_xticks(range(len(sizes)), [str(k) for k in sizes])
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("documents per cluster (kept one included)")
    ax.set_ylabel("clusters")
    ax.legend()
    if d["near_similarity"]:
        low = min(0.4, min(d["near_similarity"]))
        axes[0][1].hist(d["near_similarity"], bins=20, range=(low, 1.0), color="#4f81bd")
        axes[0][1].set_xlim(low, 1.0)                  # a similarity never exceeds 1
        axes[0][1].set_xlabel("Jaccard similarity of the shingle sets (near duplicates)")
        axes[0][1].set_ylabel("dropped documents")
    parts.append(plots.svg(fig, "duplicates"))
    rows = [[_e(m), _n(c["clusters"]), _e(", ".join(f"{k}: {v}" for k, v in c["size_histogram"].items()))]
            for m, c in d["clusters"].items()]
    parts.append(_table(["method", "clusters", "size: clusters"], rows, (0, 2)))
    parts.append("<h3>Examples (dropped, kept)</h3>")
    for ex in d["examples"]:
        cells = []
        for side in ("dropped", "kept"):
            doc = ex[side]
            text = _e(doc["text"]) if doc["text"] is not None else '<span class="none">text not found</span>'
            cells.append(f'<div><div class="meta">{side}: {_e(doc["id"])} · {_e(doc["source"])}'
                         f'{" · " + _e(doc["title"]) if doc["title"] else ""}</div><div class="text">{text}</div></div>')
        parts.append(f'<p class="meta">{_e(ex["method"])}, similarity {_n(ex["similarity"])}</p>'
                     f'<div class="pair">{"".join(cells)}</div>')
    return "".join(parts)


def _conversion(data, plots) -> str:
    c = data["conversion"]
    if c is None:
        return _none("The clean stage was not run.")
    parts = [f"<p>{_n(c['characters_converted'])} of {_n(c['characters_kept'])} kept characters "
             f"({_pct(c['share'])}) were converted from traditional to "
             f"simplified script, in {_n(c['documents_converted'])} of {_n(c['documents_kept'])} documents "
             f"(the sums of the table below).</p>"]
    sources = list(c["by_source"])
    fig, ax = plt.subplots(figsize=(8, .35 * len(sources) + 1))
    ax.barh(sources, [100 * (c["by_source"][s]["share"] or 0) for s in sources], color="#9bbb59")
    ax.invert_yaxis()
    ax.set_xlabel("% of characters converted")
    parts.append(plots.svg(fig, "conversion"))
    rows = [[_e(s), _n(v["documents"]), _n(v["documents_converted"]), _n(v["characters"]),
             _n(v["characters_converted"]), _pct(v["share"])] for s, v in c["by_source"].items()]
    parts.append(_table(["source", "documents", "converted", "characters", "converted", "share"], rows))
    if c.get("note"):
        parts.append(f'<p class="meta">{_e(c["note"])}.</p>')
    return "".join(parts)


def _bars(ax, histogram: dict, label: str):
    counts = histogram["counts"]
    xs = list(range(len(counts)))
    ax.bar(xs, counts, width=1.0, color="#4f81bd")
    ax.set_xlabel(f"{label} length in characters (the last bar: {histogram['cap']} or more)")
    ax.set_ylabel(f"{label}s")


def _segmentation(data, plots) -> str:
    s = data["segmentation"]
    if s is None:
        return _none("The segment stage was not run.")
    seg = ", ".join(f"{k} {v}" for k, v in s["segmenter"].items())
    parts = [f"<p>Segmenter: <b>{_e(seg)}</b>. {_n(s['documents'])} documents, {_n(s['sentences'])} sentences, "
             f"{_n(s['words'])} words, {_n(s['characters'])} characters in {_n(s['seconds'])} s: "
             f"<b>{_n(s['chars_per_s'])} characters/s</b>, {_n(s['docs_per_s'])} documents/s.</p>"]
    if s["sentence_length"]["count"]:
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
        _bars(axes[0], s["sentence_length"], "sentence")
        _bars(axes[1], s["word_length"], "word")
        parts.append(plots.svg(fig, "segmentation"))
    else:
        parts.append(_none("No sentence in the segmented table."))
    rows = [[name] + [_n(h[k]) for k in ("count", "mean", "median", "p95", "max")]
            for name, h in (("sentence", s["sentence_length"]), ("word", s["word_length"]))]
    parts.append(_table(["length (characters)", "count", "mean", "median", "p95", "max"], rows))
    parts.append(f'<p class="meta">Distributions from the first {_n(s["distribution_documents"])} segmented documents; '
                 f'whitespace runs are not counted as words; the sentence and word counts above are from '
                 f'{_e(s.get("counts_from", "the stage counters"))}.</p>')
    return "".join(parts)


def _vocab(data, plots) -> str:
    v = data["vocab"]
    if v is None:
        return _none("The vocab stage was not run.")
    size = f"{_n(v.get('size'))} entries"
    if v.get("short_by"):
        size += f" ({_n(v['short_by'])} short of the {_n(v['requested_size'])} requested: too little text)"
    parts = [f"<p>{'Trained' if v.get('trained') else 'Given'} vocab: {size}; sha256 "
             f"<code>{_e((v.get('vocab_sha256') or '')[:16])}</code>…; Han characters seen "
             f"{_n(v.get('han_characters_seen'))}, kept {_n(v.get('han_characters_kept'))}, dropped "
             f"{_n(v.get('han_characters_dropped'))}.</p>"]
    kinds = {k: n for k, n in (v.get("entries_by_kind") or {}).items() if k != "continuation_total"}
    if kinds:
        fig, ax = plt.subplots(figsize=(8, .35 * len(kinds) + 1))
        ax.barh(list(kinds), list(kinds.values()), color="#8064a2")
        ax.invert_yaxis()
        ax.set_xlabel("vocab entries")
        parts.append(plots.svg(fig, "vocab"))
    rows = []
    for name, h in (v.get("held_out") or {}).items():
        top = ", ".join(f"{tok} ({n})" for tok, n in h.get("top_unk", [])[:10])
        rows.append([_e(name), _n(h.get("sentences")), _n(h.get("characters")), _n(h.get("tokens")),
                     _n(h.get("unk_tokens")), _n(h.get("unk_rate")), _n(h.get("tokens_per_char")), _e(top)])
    if rows:
        parts.append("<h3>Coverage on held-out text</h3>" +
                     _table(["vocab", "sentences", "characters", "tokens", "[UNK]", "UNK rate", "tokens/char",
                             "most frequent [UNK]"], rows, (0, 7)))
        if all(h.get("sentences") == 0 for h in v["held_out"].values()):
            parts.append(_none("No document was held out (too few documents), so coverage is not measured."))
    if v.get("overlap"):
        parts.append("<h3>Overlap with the reference vocab</h3>" +
                     _table(["", "value"], [[_e(k), _n(x) if not isinstance(x, (dict, list)) else _e(json.dumps(x))]
                                            for k, x in v["overlap"].items()]))
    return "".join(parts)


def _shards(data, plots) -> str:
    s = data["shards"]
    if s is None:
        return _none("The shards stage was not run.")
    nsp = s["next_sentence"]
    parts = [f"<p>{_n(s['instances'])} instances in {_n(s['shards'])} shards, {_n(s['tokens'])} tokens; "
             f"<b>masked share {_pct(s['masked_share'])}</b> ({_n(s['masked_tokens'])} masked tokens in "
             f"{_n(s['masked_words'])} words); next sentence: {_n(nsp['random'])} random, {_n(nsp['actual'])} actual "
             f"(<b>random share {_pct(nsp['random_share'])}</b>); <b>{_n(s['truncated_tokens'])} truncated tokens</b> "
             f"of {_n(s['document_tokens'])} document tokens (and {_n(s['borrowed_truncated_tokens'])} truncated from "
             f"random next segments).</p>"]
    per = s["per_shard"]
    labels = [str(i) for i in range(len(per))]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    axes[0].bar(labels, [p["instances"] for p in per], color="#4f81bd")
    axes[0].set_title("instances per shard")
    axes[1].bar(labels, [p["tokens"] for p in per], color="#9bbb59", label="tokens")
    axes[1].bar(labels, [p["masked"] for p in per], color="#c0504d", label="masked")
    axes[1].set_title("tokens per shard")
    axes[1].legend(fontsize=8)
    axes[2].bar(["random next", "actual next"], [nsp["random"], nsp["actual"]], color=["#f79646", "#4bacc6"])
    axes[2].set_title("next sentence balance")
    for ax in axes[:2]:
        ax.set_xlabel("shard")
    parts.append(plots.svg(fig, "shards"))
    rows = [[_e(p["file"]), _n(p["instances"]), _n(p["tokens"]), _n(p["masked"]),
             _pct(p["masked"] / p["tokens"] if p["tokens"] else None), _n(p["random_next"]),
             _n(p["truncated"]), _n(p["bytes"])] for p in per]
    parts.append(_table(["file", "instances", "tokens", "masked", "masked share", "random next", "truncated",
                         "bytes"], rows))
    parts.append(_instances(s.get("per_instance"), plots))
    parts.append(_tokens_by_source(s.get("tokens_by_source"), plots))
    sources = s.get("sources") or {}
    if sources:
        parts.append("<p>Per source, before and after the mixing weights (weighted copies before dupe_factor), "
                     "and its instances' share of the shard tokens:</p>")
        rows = [[_e(name), _n(v["weight"]), _n(v["documents"]), _n(v["tokens"]), _n(v["tokens_share"]),
                 _n(v["weighted_documents"]), _n(v["weighted_tokens"]), _n(v["weighted_tokens_share"]),
                 _n(v["instances"]), _n(v["instance_tokens"]), _n(v["instance_tokens_share"])]
                for name, v in sources.items()]
        parts.append(_table(["source", "weight", "documents", "tokens", "token share", "weighted documents",
                             "weighted tokens", "weighted share", "instances", "shard tokens", "shard token share"],
                            rows))
    return "".join(parts)


def _instances(p, plots) -> str:
    if p is None:
        return _none("No instance could be read from the shards.")
    parts = ["<h3>Per instance</h3>"]
    hists = [("real_tokens", "real tokens per instance ([CLS] and [SEP] included)")]
    if p.get("masked_positions"):
        hists.append(("masked_positions", "masked positions per instance"))
    fig, axes = plt.subplots(1, len(hists), figsize=(5.5 * len(hists), 3.3), squeeze=False)
    for ax, (key, label) in zip(axes[0], hists):
        counts = p[key]["counts"]
        ax.bar(range(len(counts)), counts, width=1.0, color="#4f81bd" if key == "real_tokens" else "#c0504d")
        ax.set_xlabel(label)
        ax.set_ylabel("instances")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    parts.append(plots.svg(fig, "instances"))
    rows = [[_e(label)] + [_n(p[key][k]) for k in ("count", "mean", "median", "p95", "max")] for key, label in hists]
    parts.append(_table(["per instance", "instances", "mean", "median", "p95", "max"], rows))
    parts.append(f'<p class="meta">From the first {_n(p["instances_read"])} instances of the shards.</p>')
    ex = p.get("example")
    if ex:
        spans = []
        for t in ex["tokens"]:
            cls = ("masked " if t["masked"] is not None else "") + ("seg1" if t["segment"] else "")
            shown = _e(t["token"])
            if t["masked"] is not None:
                shown += f"<sub>{_e(t['masked'])}</sub>"
            spans.append(f'<span class="{cls.strip()}">{shown}</span>')
        parts.append(f"<h3>One instance, decoded</h3><p class=\"meta\">The first instance of the first shard: masked "
                     f"positions in red, with the original token below ({_n(ex['masked_positions'])} masked); segment B "
                     f"shaded; next sentence {'random' if ex['random_next'] else 'actual'}.</p>"
                     f'<div class="instance">{" ".join(spans)}</div>')
        if not ex.get("vocab_found"):
            parts.append(_none("The vocab file was not found: tokens are shown as ids."))
    return "".join(parts)


def _tokens_by_source(t, plots) -> str:
    if not t or not t["by_source"]:
        return ""
    sources = list(t["by_source"])
    fig, ax = plt.subplots(figsize=(8, .35 * len(sources) + 1))
    ax.barh(sources, [100 * (t["by_source"][x]["share"] or 0) for x in sources], color="#8064a2")
    ax.invert_yaxis()
    ax.set_xlabel("% of the shards' document tokens")
    rows = [[_e(x), _n(v["tokens"]), _pct(v["share"])] for x, v in t["by_source"].items()]
    return ("<h3>Tokens by source</h3>" + plots.svg(fig, "tokens-by-source") +
            _table(["source", "tokens", "share"], rows) +
            f'<p class="meta">WordPiece tokens of the segmented text the shards are cut from, per source (first '
            f'{_n(t["documents"])} documents; each is used dupe_factor times).</p>')


def _timing(data, plots) -> str:
    t = data["timing"]
    stages = [r["stage"] for r in t]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    axes[0].bar(stages, [r["seconds"] or 0 for r in t], color="#4f81bd", label="stage")
    axes[0].bar(stages, [r["engine_startup_seconds"] or 0 for r in t], color="#c0504d", label="engine start-up")
    axes[0].set_ylabel("seconds")
    axes[0].legend(fontsize=8)
    axes[1].bar(stages, [r["docs_per_s"] or 0 for r in t], color="#9bbb59")
    axes[1].set_ylabel("documents read per second")
    parts = [plots.svg(fig, "timing")]
    rows = [[_e(r["stage"]), _e(r["engine"]), _n(r["seconds"]), _n(r["engine_startup_seconds"]), _n(r["read"]),
             _n(r["docs_per_s"]), _n(r["mb_per_s"]),
             _e(", ".join(f"{k} {v}" for k, v in r["throughput"].items()
                          if k not in ("docs_per_s", "mb_per_s", "counting_mb_per_s")))] for r in t]
    parts.append(_table(["stage", "engine", "seconds", "start-up s", "read", "documents/s", "MB/s", "other"], rows,
                        (0, 1, 7)))
    return "".join(parts)


RENDER = {"summary": _summary, "funnel": _funnel, "rejections": _rejections, "duplicates": _duplicates,
          "conversion": _conversion, "segmentation": _segmentation, "vocab": _vocab, "shards": _shards,
          "timing": _timing}


def render(data: dict) -> str:
    """The whole report as one HTML document (a string)."""
    plots = _Plots()
    body = []
    for section, title in SECTIONS:
        body.append(f'<section id="{section}"><h2>{_e(title)}</h2>{RENDER[section](data, plots)}</section>')
    nav = " · ".join(f'<a href="#{s}">{_e(t)}</a>' for s, t in SECTIONS)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>wwm run report</title>'
            f'<style>{STYLE}</style></head><body><h1>wwm run report</h1><nav>{nav}</nav>{"".join(body)}'
            f'<script>{CHECK_SCRIPT}</script></body></html>\n')
