"""How well near dedup finds near copies: a labelled set built from real documents, and pair precision/recall.

Core code only (no engine): the evaluation runs the same functions the engines
call (:meth:`MinHasher.sign` -> :meth:`MinHasher.band_keys` -> group by key ->
:func:`bucket_edges` -> :func:`near_duplicates`: the exact check when
``verify`` is ``exact``, then :func:`clusters`), grouping in a dict.

The labelled set
----------------
From a pool of real documents (a repeated id or an exact duplicate by
normalised text removed, first one kept), originals are drawn among the
documents whose normalised text (:func:`near_key_text`: NFKC, simplified,
lowercase, digits folded, whitespace and punctuation removed) has at least
``min_chars`` (200) characters, so that deleting or moving a share of the
text is meaningful; sources are interleaved so a small source is represented.  Each original gets ``copies_per_doc``
edited copies; the (edit, strength) cells are dealt out evenly (each edit gets
the same number of copies, spread evenly over its strengths).  The pool's other
documents, short ones included, are the *unrelated* documents: they have no
copies and should end up in no cluster.

Edits (:func:`make_near_copy`), ``strength`` in [0, 1]:

``delete_sentences``
    sentences picked at random are removed until about ``strength`` of the
    characters are gone (at least one sentence is kept).
``insert_sentences``
    sentences of an unrelated document (the donor), about ``strength`` of the
    original's length, each inserted at a random place.
``reorder_paragraphs``
    paragraphs (or sentences, for a text of fewer than three paragraphs)
    amounting to about ``strength`` of the characters are picked and rotated
    among their places, so every picked unit moves (at least two are picked).
``traditional``
    the text converted to traditional script with OpenCC ``s2t``; a text that
    conversion hardly changes (it is traditional already, as DRCD is) is
    converted with ``t2s`` instead, so the copy still differs in script.
    ``strength`` is ignored (recorded as 0).
``boilerplate``
    navigation and footer lines (``首页 | 新闻 | ...``, ``上一篇：...``,
    ``版权所有 © ...``) adding about ``strength`` of the original's length, at
    the top, the bottom and (sometimes) in the middle.
``truncate``
    the first ``1 - strength`` of the characters are kept.

Labels
------
:func:`kept_share` is the share of the original's characters that survive in
the copy, measured on the normalised texts (so a script change loses nothing):
a character of the original counts as kept when one of the character 5-grams
covering it occurs anywhere in the copy.  Deletion and truncation lower it;
insertion, boilerplate, reordering and script conversion leave it near 1.  The
reverse, the share of the copy's characters that come from the original
(``source_share``), is recorded too, and so is the exact Jaccard similarity of
the two shingle sets the detector uses (``jaccard``), the quantity the
threshold is about.

Scores
------
Clusters are read as pairs: every two documents in one cluster form a
predicted pair.  A predicted pair is true when both documents belong to the
same family (an original and its copies; copy-copy pairs count as true).
*Precision* is true predicted pairs over predicted pairs.  *Recall* is per copy:
a copy is found when it ends up in its original's cluster; it is reported for
the copies with ``kept_share >= 0.8`` (the target), for all copies, per edit,
per edit and strength (the curve over edit strength), and per Jaccard band.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import combinations

from pipeline.clean.normalize import ScriptConverter
from pipeline.clean.sentences import split_line
from pipeline.dedup.exact import DocRef
from pipeline.dedup.minhash import (MinHasher, Rule, bucket_edges, edge_key, exact_similarity, near_duplicates,
                                    near_key_text)
from pipeline.records import Document

EDITS = ("delete_sentences", "insert_sentences", "reorder_paragraphs", "traditional", "boilerplate", "truncate")
STRENGTHS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
MIN_CHARS = 200
KEPT_TARGET = 0.8
KEPT_FLOOR = 0.6          # issue 19.6: every edit, every strength, copies keeping >= 60% of the original
KEPT_GRAM = 5
COPY_SOURCE = "near-copy"
JACCARD_BANDS = (0.95, 0.9, 0.85, 0.8, 0.7, 0.0)

_KEY_CONVERT = ScriptConverter("t2s")
_S2T = ScriptConverter("s2t")

_NAV = ("首页 | 新闻 | 国内 | 国际 | 财经 | 体育 | 娱乐 | 科技", "当前位置：首页 > 资讯 > 正文",
        "网站首页 | 关于我们 | 联系我们 | 网站地图 | 帮助中心", "登录 | 注册 | 手机版 | 收藏本站 | 设为首页",
        "热门搜索：天气 | 股票 | 房价 | 招聘 | 二手车")
_FOOT = ("上一篇：{title}", "下一篇：{title}", "版权所有 © {year} {site} 保留所有权利",
         "责任编辑：{name}", "分享到：微信 | 微博 | QQ空间 | 豆瓣", "免责声明：本文仅代表作者个人观点，与本站无关。",
         "本文来源：{site}　发布时间：{year}-{month:02d}-{day:02d}", "相关阅读：{title}",
         "点击排行 | 热门推荐 | 最新文章 | 精彩图片", "{site} 京ICP备{num}号", "扫一扫，关注我们的微信公众号")
_SITES = ("新华网", "中华网", "东方资讯", "环球在线", "华夏时报网", "人民网", "百姓生活网")
_NAMES = ("张伟", "王芳", "李娜", "刘洋", "陈静", "杨帆")
_TITLES = ("关于进一步做好相关工作的通知", "专家解读最新政策", "本周热点新闻回顾", "图集：城市新风貌")


# --------------------------------------------------------------------------- edits

def _paragraphs(text: str) -> list[list[str]]:
    """Non-empty lines of a text, each as its sentences."""
    return [s for s in (split_line(line) for line in text.split("\n")) if s]


def _join(paragraphs: list[list[str]]) -> str:
    return "\n".join("".join(p) for p in paragraphs if p)


def _pick(lengths: list[int], target: float, rng: random.Random, minimum: int = 0,
          maximum: int | None = None) -> list[int]:
    """Indices in random order, taken while the midpoint of the next one still fits ``target`` characters."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    maximum = len(lengths) if maximum is None else maximum
    chosen, total = [], 0
    for i in order:
        if len(chosen) >= maximum:
            break
        if len(chosen) < minimum or total + lengths[i] / 2 <= target:
            chosen.append(i)
            total += lengths[i]
    return chosen


def _delete_sentences(text: str, strength: float, rng: random.Random) -> str:
    paragraphs = _paragraphs(text)
    flat = [(p, i) for p, para in enumerate(paragraphs) for i in range(len(para))]
    lengths = [len(paragraphs[p][i]) for p, i in flat]
    gone = set(flat[j] for j in _pick(lengths, strength * sum(lengths), rng, maximum=len(flat) - 1))
    return _join([[s for i, s in enumerate(para) if (p, i) not in gone] for p, para in enumerate(paragraphs)])


def _insert_sentences(text: str, strength: float, rng: random.Random, donor: str | None) -> str:
    if not donor:
        raise ValueError("insert_sentences needs a donor text (sentences of an unrelated document)")
    paragraphs = _paragraphs(text)
    target = strength * sum(len(s) for p in paragraphs for s in p)
    pool = [s for p in _paragraphs(donor) for s in p]
    if not pool or target <= 0:
        return _join(paragraphs)
    start, inserted, taken = rng.randrange(len(pool)), [], 0
    for k in range(len(pool)):             # a run of the donor's sentences, wrapping round
        sentence = pool[(start + k) % len(pool)]
        if inserted and taken + len(sentence) / 2 > target:
            break
        inserted.append(sentence)
        taken += len(sentence)
    for sentence in inserted:
        para = paragraphs[rng.randrange(len(paragraphs))]
        para.insert(rng.randint(0, len(para)), sentence)
    return _join(paragraphs)


def _reorder(text: str, strength: float, rng: random.Random) -> str:
    paragraphs = _paragraphs(text)
    by_paragraph = len(paragraphs) >= 3
    units = ["".join(p) for p in paragraphs] if by_paragraph else [s for p in paragraphs for s in p]
    if len(units) < 2:
        return _join(paragraphs)
    lengths = [len(u) for u in units]
    picked = sorted(_pick(lengths, strength * sum(lengths), rng, minimum=2))
    moved = list(units)
    for k, place in enumerate(picked):     # rotate: each picked unit takes the next picked one's place
        moved[place] = units[picked[(k + 1) % len(picked)]]
    return "\n".join(moved) if by_paragraph else "".join(moved)


def _traditional(text: str) -> str:
    converted, changed = _S2T(text)
    if changed < 0.01 * max(1, len(text)):   # already traditional: flip the other way
        converted, _ = _KEY_CONVERT(text)
    return converted


def _boilerplate_line(rng: random.Random, donor: str | None, nav: bool) -> str:
    if nav:
        return rng.choice(_NAV)
    titles = [s.strip("。！？!?") for p in _paragraphs(donor or "") for s in p if 6 <= len(s) <= 40] or list(_TITLES)
    return rng.choice(_FOOT).format(title=rng.choice(titles)[:24], year=rng.randint(2005, 2023),
                                    month=rng.randint(1, 12), day=rng.randint(1, 28), site=rng.choice(_SITES),
                                    name=rng.choice(_NAMES), num=rng.randint(10_000_000, 99_999_999))


def _boilerplate(text: str, strength: float, rng: random.Random, donor: str | None) -> str:
    lines = [line for line in text.split("\n") if line.strip()] or [text]
    target = strength * len(text)
    top, middle, bottom, added = [], [], [], 0
    while True:
        place = rng.random()
        line = _boilerplate_line(rng, donor, nav=place < 0.35)
        if (top or middle or bottom) and added + len(line) / 2 > target:
            break
        (top if place < 0.35 else middle if place < 0.45 else bottom).append(line)
        added += len(line)
        if target <= 0:
            break
    cut = rng.randint(1, len(lines)) if len(lines) > 1 else len(lines)
    return "\n".join(top + lines[:cut] + middle + lines[cut:] + bottom)


def make_near_copy(text: str, edit: str, strength: float, rng: random.Random, donor: str | None = None) -> str:
    """An edited copy of ``text`` (see the module docstring for each edit); ``donor`` is an unrelated
    document's text, needed by ``insert_sentences`` and used for titles in ``boilerplate``."""
    if not 0 <= strength <= 1:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    if edit == "delete_sentences":
        return _delete_sentences(text, strength, rng)
    if edit == "insert_sentences":
        return _insert_sentences(text, strength, rng, donor)
    if edit == "reorder_paragraphs":
        return _reorder(text, strength, rng)
    if edit == "traditional":
        return _traditional(text)
    if edit == "boilerplate":
        return _boilerplate(text, strength, rng, donor)
    if edit == "truncate":
        return text[:max(1, round((1 - strength) * len(text)))]
    raise ValueError(f"unknown edit {edit!r} (one of {', '.join(EDITS)})")


# --------------------------------------------------------------------------- labels

def _normal(text: str) -> str:
    return near_key_text(text, _KEY_CONVERT)


def _kept_normal(original: str, copy: str, n: int = KEPT_GRAM) -> float:
    if not original:
        return 1.0
    if len(original) < n:
        return 1.0 if original in copy else 0.0
    grams = {copy[i:i + n] for i in range(len(copy) - n + 1)}
    covered = [False] * len(original)
    for i in range(len(original) - n + 1):
        if original[i:i + n] in grams:
            covered[i:i + n] = [True] * n
    return sum(covered) / len(original)


def kept_share(original: str, copy: str) -> float:
    """Share of the original's characters kept in the copy: on the normalised texts (script, case,
    width, digits, whitespace and punctuation folded), a character counts as kept when a character
    5-gram covering it occurs anywhere in the copy.  Order is ignored (a moved paragraph is kept)."""
    return _kept_normal(_normal(original), _normal(copy))


# --------------------------------------------------------------------------- labelled set

@dataclass(slots=True)
class NearCopy:
    """An edited copy of an original, with its labels."""

    id: str
    original_id: str
    edit: str
    strength: float
    kept_share: float          # share of the original's characters kept in the copy
    source_share: float        # share of the copy's characters that come from the original
    text: str
    donor_id: str | None = None


@dataclass
class LabelledSet:
    originals: list[Document]
    copies: list[NearCopy]
    unrelated: list[Document]
    settings: dict = field(default_factory=dict)

    def documents(self) -> list[tuple[DocRef, str]]:
        """Every document to sign: originals, copies, unrelated."""
        refs = [(DocRef.of(d), d.text) for d in self.originals + self.unrelated]
        refs += [(DocRef(c.id, COPY_SOURCE, "near-copy", k, None), c.text) for k, c in enumerate(self.copies)]
        return refs


def _interleave(groups: dict[str, list[Document]]) -> list[Document]:
    out, queues = [], [list(g) for _, g in sorted(groups.items())]
    while any(queues):
        for q in queues:
            if q:
                out.append(q.pop(0))
    return out


def build_labelled_set(documents, seed: int = 0, edits=EDITS, strengths=STRENGTHS, copies_per_doc: int = 2,
                       max_originals: int | None = None, min_chars: int = MIN_CHARS) -> LabelledSet:
    """Originals (with ``copies_per_doc`` edited copies each), the copies and the unrelated documents."""
    rng = random.Random(seed)
    pool, seen, ids, read, repeated_ids = [], set(), set(), 0, 0
    for doc in documents:
        read += 1
        if doc.id in ids:              # ids must be unique: pairs with equal ids are never compared
            repeated_ids += 1
            continue
        ids.add(doc.id)
        normal = _normal(doc.text)
        if normal in seen:
            continue
        seen.add(normal)
        pool.append((doc, normal))
    eligible: dict[str, list[Document]] = defaultdict(list)
    for doc, normal in pool:
        if len(normal) >= min_chars:
            eligible[doc.source].append(doc)
    for group in eligible.values():
        rng.shuffle(group)
    chosen = _interleave(eligible)[:max_originals]
    chosen_ids = {d.id for d in chosen}
    unrelated = [doc for doc, _ in pool if doc.id not in chosen_ids]
    donors = unrelated or [doc for doc, _ in pool]
    normals = {doc.id: normal for doc, normal in pool}

    cells_per_edit = {e: [0.0] if e == "traditional" else list(strengths) for e in edits}
    total = len(chosen) * copies_per_doc
    deck = []
    per_edit = -(-total // len(edits)) if edits else 0
    for edit in edits:
        cells = cells_per_edit[edit]
        deck += [(edit, cells[k % len(cells)]) for k in range(per_edit)]
    rng.shuffle(deck)
    deck = deck[:total]

    copies = []
    for n, (edit, strength) in enumerate(deck):
        original = chosen[n // copies_per_doc]
        donor = None
        for _ in range(10):
            donor = rng.choice(donors)
            if donor.id != original.id:
                break
        text = make_near_copy(original.text, edit, strength, rng, donor.text)
        copy_normal = _normal(text)
        copies.append(NearCopy(
            id=f"{original.id}~{n % copies_per_doc}~{edit}", original_id=original.id, edit=edit,
            strength=strength, kept_share=round(_kept_normal(normals[original.id], copy_normal), 4),
            source_share=round(_kept_normal(copy_normal, normals[original.id]), 4), text=text,
            donor_id=donor.id if edit in ("insert_sentences", "boilerplate") else None))
    settings = {"seed": seed, "edits": list(edits), "strengths": list(strengths), "copies_per_doc": copies_per_doc,
                "min_chars": min_chars, "read": read, "pool": len(pool), "repeated_ids_dropped": repeated_ids,
                "exact_duplicates_dropped": read - repeated_ids - len(pool)}
    return LabelledSet(originals=chosen, copies=copies, unrelated=unrelated, settings=settings)


# --------------------------------------------------------------------------- evaluation

def _rate(found: int, total: int) -> dict:
    return {"copies": total, "found": found, "recall": round(found / total, 4) if total else None}


def _band(jaccard: float) -> str:
    if jaccard >= JACCARD_BANDS[0]:
        return f">={JACCARD_BANDS[0]:g}"
    for low, high in zip(JACCARD_BANDS[1:], JACCARD_BANDS):
        if jaccard >= low:
            return f"[{low:g},{high:g})"
    return "<0"


def run_detection(items: list[tuple[DocRef, str]], hasher: MinHasher, verify: str = "signature"):
    """sign -> band keys -> group by key (a dict) -> bucket edges -> (exact check) -> clusters, in memory.

    Returns (duplicates, candidate edges, band buckets).  With ``verify="exact"`` the check the
    engines run per edge (:func:`exact_similarity` of the two shingle sets) is done from a dict.
    """
    buckets: dict[str, list] = defaultdict(list)
    shingles: dict[str, bytes] = {}
    for ref, text in items:
        signed = hasher.sign(ref, text)
        if verify == "exact":
            shingles[ref.id] = hasher.shingle_bytes(text)
        for key in hasher.band_keys(signed):
            buckets[key].append(signed)
    edges = [edge for members in buckets.values() if len(members) > 1
             for edge in bucket_edges(members, hasher.candidate_threshold if verify == "exact" else hasher.threshold,
                                      verify)]

    def exact_check(candidates) -> dict[str, float]:
        return {edge_key(a.id, b.id): exact_similarity([(a.id, shingles[a.id]), (b.id, shingles[b.id])])
                for a, b, _ in candidates}

    rule = hasher.rule if verify == "exact" else Rule(hasher.threshold)
    return near_duplicates(edges, verify, rule, exact_check), len(edges), len(buckets)


def evaluate(labelled: LabelledSet, hasher: MinHasher, verify: str = "signature") -> dict:
    """Pair precision and per-copy recall of near dedup on a labelled set (see the module docstring)."""
    started = time.perf_counter()
    duplicates, n_edges, n_buckets = run_detection(labelled.documents(), hasher, verify)
    seconds = time.perf_counter() - started

    family = {d.id: d.id for d in labelled.originals + labelled.unrelated}
    family.update({c.id: c.original_id for c in labelled.copies})
    unrelated_ids = {d.id for d in labelled.unrelated}
    cluster_of: dict[str, str] = {}
    members: dict[str, list[str]] = defaultdict(list)
    for dup in duplicates:
        cluster_of[dup.id] = cluster_of[dup.duplicate_of] = dup.duplicate_of
    for node, root in cluster_of.items():
        members[root].append(node)

    predicted = true_pairs = 0
    false_examples, unrelated_pairs = [], []
    for nodes in members.values():
        for a, b in combinations(sorted(nodes), 2):
            predicted += 1
            if family[a] == family[b]:
                true_pairs += 1
                continue
            if a in unrelated_ids and b in unrelated_ids:
                unrelated_pairs.append([a, b])
            if len(false_examples) < 10:
                false_examples.append([a, b])
    family_sizes = defaultdict(int)
    for root in family.values():
        family_sizes[root] += 1
    all_true = sum(n * (n - 1) // 2 for n in family_sizes.values())

    texts = {d.id: d.text for d in labelled.originals}
    shingles = {}
    records = []
    for c in labelled.copies:
        if c.original_id not in shingles:
            shingles[c.original_id] = set(hasher.shingles(near_key_text(texts[c.original_id], hasher.convert)).tolist())
        a = shingles[c.original_id]
        b = set(hasher.shingles(near_key_text(c.text, hasher.convert)).tolist())
        jaccard = len(a & b) / len(a | b) if a | b else 1.0
        found = c.original_id in cluster_of and cluster_of.get(c.id) == cluster_of[c.original_id]
        records.append((c, jaccard, found))

    def rate(rows) -> dict:
        rows = list(rows)
        out = _rate(sum(1 for _, _, f in rows if f), len(rows))
        if rows:
            out["mean_kept_share"] = round(sum(c.kept_share for c, _, _ in rows) / len(rows), 4)
            out["mean_jaccard"] = round(sum(j for _, j, _ in rows) / len(rows), 4)
        return out

    target = [r for r in records if r[0].kept_share >= KEPT_TARGET]
    kept_floor = [r for r in records if r[0].kept_share >= KEPT_FLOOR]
    by_edit, curve, by_jaccard, by_kept = {}, {}, {}, {}
    for edit in labelled.settings.get("edits", EDITS):
        rows = [r for r in records if r[0].edit == edit]
        by_edit[edit] = rate(rows)
        curve[edit] = {f"{s:g}": rate(r for r in rows if r[0].strength == s)
                       for s in sorted({r[0].strength for r in rows})}
    strengths = sorted({r[0].strength for r in records if r[0].edit != "traditional"})
    by_strength = {f"{s:g}": rate(r for r in records if r[0].strength == s and r[0].edit != "traditional")
                   for s in strengths}
    for r in records:
        by_jaccard.setdefault(_band(r[1]), []).append(r)
        kept_bucket = min(int(r[0].kept_share * 20) / 20, 0.95)
        by_kept.setdefault(f"{kept_bucket:.2f}", []).append(r)
    missed = [{"copy": c.id, "edit": c.edit, "strength": c.strength, "kept_share": c.kept_share,
               "jaccard": round(j, 4)} for c, j, f in target if not f]
    return {
        "hasher": {"num_perm": hasher.num_perm, "threshold": hasher.threshold, "bands": hasher.bands,
                   "rows": hasher.rows, "ngram": hasher.ngram, "short_ngram": hasher.short_ngram,
                   "short_length": hasher.short_length, "seed": hasher.seed, "verify": verify,
                   "containment": hasher.containment if verify == "exact" else 0.0,
                   "containment_min_jaccard": hasher.containment_min_jaccard},
        "labelled_set": {"originals": len(labelled.originals), "copies": len(labelled.copies),
                         "unrelated": len(labelled.unrelated), **labelled.settings,
                         "originals_rule": f"normalised text of at least {labelled.settings.get('min_chars')} "
                                           "characters; unrelated = every other pool document, short ones included"},
        "detection": {"seconds": round(seconds, 3), "documents": len(family), "band_buckets": n_buckets,
                      "edges": n_edges, "duplicates": len(duplicates), "clusters": len(members)},
        "pairs": {"predicted": predicted, "true": true_pairs, "false": predicted - true_pairs,
                  "precision": round(true_pairs / predicted, 4) if predicted else None,
                  "family_pairs": all_true, "family_pair_recall": round(true_pairs / all_true, 4) if all_true else None,
                  "false_examples": false_examples},
        "unrelated_pairs": {"count": len(unrelated_pairs), "examples": unrelated_pairs[:10]},
        "recall_kept_ge_0_8": rate(target),
        "recall_kept_ge_0_8_by_edit": {e: rate(r for r in target if r[0].edit == e) for e in by_edit},
        "recall_all_copies": rate(records),
        "recall_jaccard_ge_threshold": rate(r for r in records if r[1] >= hasher.threshold),
        "recall_both_shares_ge_0_8": rate(r for r in records
                                          if min(r[0].kept_share, r[0].source_share) >= KEPT_TARGET),
        "recall_by_edit": by_edit,
        "recall_by_strength": by_strength,
        "curve_by_edit_strength": curve,
        "curve_kept_ge_0_6": {e: {f"{s:g}": rate(r for r in kept_floor if r[0].edit == e and r[0].strength == s)
                                  for s in sorted({r[0].strength for r in kept_floor if r[0].edit == e})}
                              for e in by_edit},
        "recall_by_jaccard": {k: rate(v) for k, v in sorted(by_jaccard.items(), reverse=True)},
        "recall_by_kept_share": {k: rate(v) for k, v in sorted(by_kept.items(), reverse=True)},
        "missed_kept_ge_0_8": {"count": len(missed),
                               "jaccard_below_threshold": sum(1 for m in missed if m["jaccard"] < hasher.threshold),
                               "examples": missed[:15]},
    }


def shared_documents(paths) -> list[Document]:
    """The documents of some corpus files (helper for tests and the benchmark)."""
    from pipeline.ingest.files import expand
    from pipeline.ingest.readers import read_file

    return [r for path in paths for f in expand(str(path)) for r in read_file(f) if isinstance(r, Document)]
