import random
from collections import defaultdict

import numpy as np
import pytest

from pipeline.counters import Counters
from pipeline.dedup.exact import DocRef
from pipeline.dedup.minhash import (MinHasher, Rule, UnionFind, bucket_edges, clusters, edge_key, exact_similarity,
                                    near_duplicates, near_key_text, optimal_param)

HAN = [chr(c) for c in range(0x4E00, 0x4E00 + 6000)]


def han_text(length, seed):
    rng = random.Random(seed)
    return "".join(rng.choice(HAN) for _ in range(length))


def lsh(texts: dict[str, str], hasher=None, verify="exact"):
    """Near duplicates of a few texts through the same core steps the engines run."""
    hasher = hasher or MinHasher()
    buckets = defaultdict(list)
    for doc_id, text in texts.items():
        signed = hasher.sign(DocRef(doc_id, "s", "f", 1), text)
        for key in hasher.band_keys(signed):
            buckets[key].append(signed)
    floor = hasher.candidate_threshold if verify == "exact" else hasher.threshold
    edges = [e for members in buckets.values() for e in bucket_edges(members, floor, verify)]

    def exact_check(candidates):
        return {key: exact_similarity([(i, hasher.shingle_bytes(texts[i])) for i in (a.id, b.id)])
                for a, b, _ in candidates for key in [edge_key(a.id, b.id)]}

    rule = hasher.rule if verify == "exact" else Rule(hasher.threshold)
    return {d.id: d.duplicate_of for d in near_duplicates(edges, verify, rule, exact_check)}


@pytest.mark.parametrize("threshold, num_perm, expected", [
    (0.7, 256, (25, 10)), (0.7, 128, (14, 9)), (0.8, 128, (9, 13)), (0.8, 256, (17, 15))])
def test_bands_and_rows_match_text_dedup_optimal_param(threshold, num_perm, expected):
    assert optimal_param(threshold, num_perm) == expected
    hasher = MinHasher(num_perm=num_perm, threshold=threshold, false_positive_weight=0.5,
                       false_negative_weight=0.5, containment=0)
    assert (hasher.bands, hasher.rows) == expected


def test_default_lsh_favours_recall_because_candidates_are_verified():
    for threshold, shape in ((0.8, (16, 8)), (None, (24, 4))):     # None: the default, 0.6
        hasher = MinHasher(threshold=threshold, containment=0) if threshold else MinHasher(containment=0)
        assert (hasher.bands, hasher.rows) == shape
        p = 1 - (1 - hasher.threshold ** hasher.rows) ** hasher.bands
        assert p > 0.94          # a pair right at the threshold is a candidate 19 times in 20
    # with containment on (the default), the bands are derived for its lower Jaccard level, 0.4
    hasher = MinHasher()
    assert hasher.candidate_threshold == 0.4 and (hasher.bands, hasher.rows) == (42, 3)
    assert 1 - (1 - 0.4 ** hasher.rows) ** hasher.bands > 0.9


def test_explicit_bands_and_bad_settings():
    assert (MinHasher(bands=16, rows=8).bands, MinHasher(bands=16, rows=8).rows) == (16, 8)
    with pytest.raises(ValueError):
        MinHasher(num_perm=64, bands=10, rows=10)
    with pytest.raises(ValueError):
        MinHasher(threshold=1.5)


def test_normalised_text_folds_digits_script_and_punctuation():
    hasher = MinHasher()
    assert near_key_text("數學，2024年！ＡＢ", hasher.convert) == "数学0000年ab"


def test_identical_documents_are_one_cluster():
    text = han_text(400, 1)
    assert lsh({"b": text, "a": text, "c": han_text(400, 2)}) == {"b": "a"}


def test_traditional_and_simplified_twins_collide():
    simplified = "数学是利用符号语言研究数量、结构、变化以及空间等概念的一门学科，从某种角度看属于形式科学的一种。" * 3
    traditional = "數學是利用符號語言研究數量、結構、變化以及空間等概念的一門學科，從某種角度看屬於形式科學的一種。" * 3
    hasher = MinHasher()
    a = hasher.sign(DocRef("a", "s", "f", 1), simplified)
    b = hasher.sign(DocRef("b", "s", "f", 1), traditional)
    assert a.signature == b.signature
    assert exact_similarity([("a", hasher.shingle_bytes(simplified)), ("b", hasher.shingle_bytes(traditional))]) == [1.0, 1.0]
    assert lsh({"a": simplified, "b": traditional}) == {"b": "a"}


def test_a_long_prefix_is_a_near_duplicate_and_a_short_one_is_not():
    text = han_text(1000, 3)
    assert lsh({"full": text, "p90": text[:900]}) == {"p90": "full"}
    # containment (the default): a prefix keeping half the article is its copy; one keeping 30% is not
    # (its Jaccard, 0.3, is under containment_min_jaccard)
    assert lsh({"full": text, "p50": text[:500]}) == {"p50": "full"}
    assert lsh({"full": text, "p30": text[:300]}) == {}
    # Jaccard alone (containment 0): the half prefix (Jaccard 0.5) is under the 0.6 threshold
    assert lsh({"full": text, "p50": text[:500]}, MinHasher(containment=0)) == {}


def test_containment_is_shared_shingles_over_the_smaller_set():
    a = np.arange(100, dtype=np.uint32).tobytes()
    b = np.arange(40, 100, dtype=np.uint32).tobytes()           # inside a: 60 of a's 100
    c = np.arange(50, 150, dtype=np.uint32).tobytes()           # 50 shared of 100 each
    assert exact_similarity([("a", a), ("b", b)]) == [0.6, 1.0]
    assert exact_similarity([("a", a), ("c", c)]) == [50 / 150, 0.5]
    assert exact_similarity([("a", a), ("e", b"")]) == [0.0, 0.0]
    rule = Rule(0.6, 0.8, 0.4)
    assert rule.why(0.6, 0.6) == "jaccard" and rule.why(0.45, 0.85) == "containment"
    assert rule.why(0.39, 1.0) is None and rule.why(0.59, 0.79) is None
    assert Rule(0.6, 0.0).why(0.45, 1.0) is None


def test_truncated_and_abridged_copies_cluster_with_their_article_by_containment():
    """Issue 19.6: an article and a copy keeping 60% of it (cut at the end, or two sentences in five deleted)
    are one cluster; Jaccard alone at the default threshold misses them."""
    sentences = [han_text(40, seed) for seed in range(100, 140)]
    article = "".join(sentences)
    copies = {"truncated": article[:int(0.6 * len(article))],
              "abridged": "".join(x for i, x in enumerate(sentences) if i % 5 not in (1, 3))}
    hasher = MinHasher()
    for name, copy in copies.items():
        jaccard, containment = exact_similarity([("a", hasher.shingle_bytes(article)),
                                                 ("b", hasher.shingle_bytes(copy))])
        assert jaccard < 0.6 <= 0.8 <= containment, (name, jaccard, containment)
        assert lsh({"article": article, f"{name}-copy": copy}) in ({f"{name}-copy": "article"},
                                                                 {"article": f"{name}-copy"}), name
        assert lsh({"article": article, f"{name}-copy": copy}, MinHasher(containment=0)) == {}, name


def test_containment_is_off_without_exact_verification():
    from pipeline.config import DedupOptions
    assert MinHasher.from_options(DedupOptions(verify="signature")).containment == 0
    assert Rule.of(DedupOptions(verify="signature")).containment == 0
    assert Rule.of(DedupOptions()) == Rule(0.6, 0.8, 0.4)
    with pytest.raises(ValueError):
        MinHasher(containment=1.5)


def test_empty_and_one_character_documents_are_never_dropped_for_being_short():
    hasher = MinHasher()
    empty = hasher.sign(DocRef("e", "s", "f", 1), "。！")
    assert hasher.band_keys(empty) == [] and hasher.shingle_bytes("。！") == b""
    one = hasher.sign(DocRef("o", "s", "f", 1), "好")
    assert len(hasher.shingle_bytes("好")) == 4 and len(hasher.band_keys(one)) == hasher.bands
    assert lsh({"e": "。！", "o": "好", "x": han_text(300, 4)}) == {}


def test_short_texts_use_short_shingles():
    hasher = MinHasher(ngram=5, short_ngram=3, short_length=100)
    assert len(hasher.shingles("一二三四五六")) == 4          # 3-grams under 100 characters
    long = han_text(200, 5)
    assert len(hasher.shingles(long)) == 196                  # 5-grams


def test_a_chain_a_b_c_is_one_cluster_even_when_a_and_c_are_not_similar():
    base = han_text(1300, 6)
    a, b, c = base[0:1000], base[80:1080], base[160:1160]
    hasher = MinHasher()
    sets = {i: [(i, hasher.shingle_bytes(t))] for i, t in (("a", a), ("b", b), ("c", c))}
    # the premise, measured: A~B and B~C above the threshold, A~C below it
    assert exact_similarity(sets["a"] + sets["b"])[0] >= 0.8 and exact_similarity(sets["b"] + sets["c"])[0] >= 0.8
    assert exact_similarity(sets["a"] + sets["c"])[0] < 0.75
    assert lsh({"a": a, "b": b, "c": c}, hasher) == {"b": "a", "c": "a"}


def test_clusters_keep_the_smallest_id_and_report_similarity():
    refs = {i: DocRef(i, "src" if i != "d" else "other", "f", n) for n, i in enumerate("abcde")}
    edges = [(refs["b"], refs["c"], 0.9), (refs["c"], refs["d"], 0.85), (refs["a"], refs["b"], 0.95),
             (refs["b"], refs["c"], 0.9)]   # the same edge from another band
    count = Counters()
    dups = {d.id: d for d in clusters(edges, count)}
    assert {i: d.duplicate_of for i, d in dups.items()} == {"b": "a", "c": "a", "d": "a"}
    assert dups["b"].similarity == 0.95            # direct edge to the kept document
    assert dups["d"].similarity == 0.85 and dups["d"].source == "other" and dups["d"].method == "minhash"
    assert count["dedup.near.clusters"] == 1 and count["dedup.near.cluster_size.le5"] == 1
    assert count["dedup.near.duplicates"] == 3 and count["dedup.duplicates.source.other"] == 1


def test_union_find_root_is_the_smallest_id():
    uf = UnionFind()
    for x, y in (("m", "z"), ("z", "b"), ("q", "m")):
        uf.union(x, y)
    assert {uf.find(x) for x in "mzbq"} == {"b"}


def test_verification_modes():
    text = han_text(1000, 7)
    assert lsh({"a": text, "b": text[:950]}, verify="exact") == {"b": "a"}
    assert lsh({"a": text, "b": text[:950]}, verify="signature") == {"b": "a"}
    hasher = MinHasher(threshold=0.5, num_perm=64)
    loose = {"a": text, "b": text[:600]}
    assert lsh(loose, hasher, verify="none") == {"b": "a"}


def test_same_seed_same_signature_other_seed_other_signature():
    text = han_text(300, 8)
    ref = DocRef("a", "s", "f", 1)
    assert MinHasher(seed=1).sign(ref, text).signature == MinHasher(seed=1).sign(ref, text).signature
    assert MinHasher(seed=1).sign(ref, text).signature != MinHasher(seed=2).sign(ref, text).signature


def test_documents_share_a_band_key_exactly_when_they_agree_on_the_band():
    hasher = MinHasher()
    base = han_text(400, 11)
    texts = [base, base[:380] + han_text(20, 12), han_text(400, 13)]
    keys = [hasher.band_keys(hasher.sign(DocRef(str(i), "s", "f", 1), t)) for i, t in enumerate(texts)]
    values = [hasher.sign(DocRef(str(i), "s", "f", 1), t).values().reshape(-1)[:hasher.bands * hasher.rows]
              .reshape(hasher.bands, hasher.rows) for i, t in enumerate(texts)]
    shared = 0
    for i in range(hasher.bands):
        assert (keys[0][i] == keys[1][i]) == bool((values[0][i] == values[1][i]).all())
        assert (keys[0][i] == keys[2][i]) == bool((values[0][i] == values[2][i]).all())
        assert len({k[i] for k in keys} & {k[j] for k in keys for j in range(hasher.bands) if j != i}) == 0
        shared += keys[0][i] == keys[1][i]
    assert 0 < shared < hasher.bands


def test_signature_is_the_minimum_of_each_permuted_shingle_hash():
    hasher = MinHasher(num_perm=16)
    shingles = hasher.shingles(han_text(3000, 5))          # more than one block of shingles
    expected = [min(((int(a) * int(x) + int(b)) % 2**64) >> 32 for x in shingles)
                for a, b in zip(hasher.a, hasher.b)]
    assert hasher.signature_of(shingles).tolist() == expected
    assert hasher.signature_of(hasher.shingle_hashes(
        np.frombuffer(han_text(3000, 5).encode("utf-32-le"), dtype=np.uint32))).tolist() == expected


def test_band_batches_make_the_buckets_of_band_keys():
    from pipeline.dedup.minhash import Signed, band_batches, group_edges
    hasher = MinHasher()
    rng = random.Random(3)
    texts = {}
    for i in range(30):
        base = han_text(300, 100 + i)
        texts[f"d{i:02d}"] = base
        for k in range(rng.randrange(3)):        # near copies: a few characters changed
            cut = rng.randrange(250)
            texts[f"d{i:02d}-{k}"] = base[:cut] + han_text(rng.randrange(5, 40), 1000 * i + k) + base[cut + 20:]
    texts["empty"] = "。！"
    members = []
    for doc_id, text in texts.items():
        signed = hasher.sign(DocRef(doc_id, "s", "f", 1), text)
        members.append((doc_id, "s", "f", 1, None, signed.signature))
    by_key = defaultdict(list)
    for m in members:
        for key in hasher.band_keys(m[5]):
            by_key[key].append(m)
    expected, expected_count = [], Counters()
    for bucket in by_key.values():
        signed = [Signed(DocRef(*m[:5]), m[5]) for m in bucket]
        expected += bucket_edges(signed, hasher.threshold, "exact", expected_count)
    groups = defaultdict(list)
    rng.shuffle(members)
    for group, batch in band_batches(hasher, members, shards=3, batch=7):     # several chunks and shards
        groups[group].append(batch)
    found, count = [], Counters()
    for group in sorted(groups, reverse=True):
        found += group_edges(hasher, groups[group], hasher.threshold, "exact", count)
    assert sorted(found, key=repr) == sorted(expected, key=repr)
    assert count.as_dict() == expected_count.as_dict() and count["dedup.near.candidates"] > 20


def test_band_batches_carry_references_exactly():
    """References go through the batches as JSON: odd ids and titles (non-ASCII, lone surrogates, None) and
    positions come back as they went in."""
    from pipeline.dedup.minhash import band_batches, group_edges
    hasher = MinHasher()
    text = han_text(300, 7)
    members = [(doc_id, "维基", "f\udcff.xml", position, title, hasher.sign(DocRef(doc_id, "s", "f", 1), text).signature)
               for doc_id, position, title in (("b\ud800", 3, None), ("a-文", 0, "标题\udc80"), ("c", 2**40, ""))]
    groups = defaultdict(list)
    for group, batch in band_batches(hasher, members):
        assert all(isinstance(part, bytes) for part in batch)
        groups[group].append(batch)
    edges = [e for g in sorted(groups) for e in group_edges(hasher, groups[g], hasher.threshold, "exact")]
    refs = {ref for edge in edges for ref in edge[:2]}
    assert refs == {DocRef(*m[:5]) for m in members}
