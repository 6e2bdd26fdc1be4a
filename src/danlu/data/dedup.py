"""Duplicates: exact (64-bit row hashes), near (average hash for images, MinHash LSH for text),
and leakage across the train/val/test splits.

State per row is a few 8-byte integers, so de-duplicating millions of streamed rows stays small.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["average_hash", "components", "confirm_by_pixels", "exact_duplicates", "leakage",
           "mix_hashes", "near_pairs_hash", "near_pairs_text", "row_hashes", "text_hashes"]

_P1 = np.uint64(0x9E3779B97F4A7C15)  # golden-ratio constant, splitmix64 (Steele et al. 2014)
_P2 = np.uint64(0xBF58476D1CE4E5B9)


def row_hashes(x: np.ndarray) -> np.ndarray:
    """A 64-bit hash per row of a float array (equal rows, equal hashes; -0.0 == 0.0; missing
    cells (any NaN) are equal).

    Collisions between different rows have probability ~ n^2 / 2^65: 7e-7 for 5 million rows.
    """
    x = np.asarray(x, dtype=np.float64) + 0.0
    nan = np.isnan(x)
    if nan.any():  # every missing cell hashes alike, whatever NaN payload the parser made
        x = np.where(nan, np.nan, x)
    bits = np.ascontiguousarray(x).view(np.uint64)
    h = np.full(len(bits), _P1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(bits.shape[1]):
            h = (h ^ bits[:, j]) * _P2
            h ^= h >> np.uint64(31)
    return h


def mix_hashes(parts: list[np.ndarray]) -> np.ndarray:
    """One 64-bit hash per row from each feature's row hashes (order matters)."""
    h = parts[0].copy()
    with np.errstate(over="ignore"):
        for p in parts[1:]:
            h = (h ^ p) * _P2
            h ^= h >> np.uint64(31)
    return h


def text_hashes(texts: np.ndarray, fold: bool = True) -> np.ndarray:
    """64-bit hash per text; with `fold`, after folding case and whitespace (so 'A  b' == 'a b':
    free text), without it exactly (category values: 'Yes' and 'yes' are two categories)."""
    def norm(t: str) -> str:
        return " ".join(t.lower().split()) if fold else t

    return np.array([int.from_bytes(hashlib.blake2b(norm(t).encode(), digest_size=8).digest(),
                                    "little") for t in texts], dtype=np.uint64)


def exact_duplicates(h: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(duplicate, conflict) masks over rows in order.

    duplicate: a later row with the same features and label as an earlier one.
    conflict: every row of a group whose identical features carry different labels (label noise).
    """
    order = np.argsort(h, kind="stable")  # by hash, then (stable) by position
    hs = h[order]
    start = np.empty(len(h), bool)
    start[:1] = True
    np.not_equal(hs[1:], hs[:-1], out=start[1:])
    del hs
    starts = np.flatnonzero(start)
    ls = labels[order].astype(np.int32)
    lo = np.minimum.reduceat(ls, starts) if len(ls) else ls
    hi = np.maximum.reduceat(ls, starts) if len(ls) else ls
    del ls
    # One flag per group, repeated over its rows (1 byte per row, not an 8-byte group index).
    conflict_sorted = np.repeat(lo != hi, np.diff(np.r_[starts, len(h)]))
    dup, conflict = np.zeros(len(h), bool), np.zeros(len(h), bool)
    dup[order] = ~start & ~conflict_sorted
    conflict[order] = conflict_sorted
    return dup, conflict


def average_hash(x: np.ndarray, image_shape: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(64-bit average hash, 8x8 grey thumbnail [n, 64] float32) per image.

    Krawetz 2011 ("Looks like it"): grey, area-resize to 8x8, bit = pixel > the image's mean.
    An 8x8 image is its own thumbnail. The thumbnail lets candidates be confirmed by pixels.
    """
    c, hgt, wid = image_shape
    img = np.asarray(x, dtype=np.float64).reshape(len(x), c, hgt, wid).mean(axis=1)
    rows = np.linspace(0, hgt, 9).astype(int)
    cols = np.linspace(0, wid, 9).astype(int)
    if hgt >= 8 and wid >= 8:
        img = np.add.reduceat(np.add.reduceat(img, rows[:-1], axis=1), cols[:-1], axis=2)
        img /= np.outer(np.diff(rows), np.diff(cols))[None]
    else:  # smaller than 8x8: nearest-neighbour upsampling
        img = img[:, np.minimum(np.arange(8) * hgt // 8, hgt - 1)][:, :, np.minimum(
            np.arange(8) * wid // 8, wid - 1)]
    bits = img > img.reshape(len(img), -1).mean(axis=1)[:, None, None]
    h = np.packbits(bits.reshape(len(img), 64), axis=1).view(">u8").ravel().astype(np.uint64)
    return h, img.reshape(len(img), 64).astype(np.float32)


def confirm_by_pixels(pairs: np.ndarray, thumbs: np.ndarray, max_pixel_diff: float) -> np.ndarray:
    """The pairs whose thumbnails differ by at most max_pixel_diff x the pixel range, on average."""
    if len(pairs) == 0:
        return pairs
    span = float(thumbs.max() - thumbs.min()) or 1.0
    diff = np.abs(thumbs[pairs[:, 0]] - thumbs[pairs[:, 1]]).mean(axis=1) / span
    return pairs[diff <= max_pixel_diff]


def _popcount(v: np.ndarray) -> np.ndarray:
    return np.unpackbits(v.astype(">u8").view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)


def near_pairs_hash(h: np.ndarray, max_distance: int) -> np.ndarray:
    """Pairs (i < j) of 64-bit hashes within `max_distance` differing bits, [k, 2].

    Exact, not sampled: split the bits into max_distance + 1 bands; by the pigeonhole principle
    two hashes that differ in at most max_distance bits agree on at least one whole band. Only
    rows sharing a band value are compared.
    """
    bands = max_distance + 1
    edges = np.linspace(0, 64, bands + 1).astype(int)
    pairs = []
    for b in range(bands):
        width = edges[b + 1] - edges[b]
        key = (h >> np.uint64(64 - edges[b + 1])) & np.uint64((1 << width) - 1)
        order = np.argsort(key, kind="stable")
        ks = key[order]
        starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
        ends = np.r_[starts[1:], len(ks)]
        for s, e in zip(starts, ends, strict=True):
            if e - s < 2:
                continue
            idx = order[s:e]
            i, j = np.triu_indices(len(idx), k=1)
            a, c = idx[i], idx[j]
            close = _popcount(h[a] ^ h[c]) <= max_distance
            pairs.append(np.stack([np.minimum(a, c)[close], np.maximum(a, c)[close]], axis=1))
    if not pairs:
        return np.empty((0, 2), dtype=np.int64)
    return np.unique(np.concatenate(pairs), axis=0)


def near_pairs_text(texts: np.ndarray, threshold: float, seed: int = 1) -> np.ndarray:
    """Pairs (i < j) of texts whose word-3-gram Jaccard similarity is >= threshold (MinHash LSH)."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=128)
    hashes, pairs = [], []
    for i, t in enumerate(texts):
        words = t.lower().split()
        grams = {" ".join(words[k:k + 3]) for k in range(max(len(words) - 2, 1))}
        m = MinHash(num_perm=128, seed=seed)
        m.update_batch([g.encode() for g in grams])
        for j in lsh.query(m):
            if m.jaccard(hashes[j]) >= threshold:
                pairs.append((j, i))
        lsh.insert(i, m)
        hashes.append(m)
    return np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)


def components(n: int, groups: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Connected-component id per row: rows of one `groups` id, joined by `pairs`."""
    _, comp = np.unique(groups, return_inverse=True)
    parent = np.arange(comp.max() + 1 if n else 0)

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i, j in pairs:
        a, b = find(comp[i]), find(comp[j])
        if a != b:
            parent[max(a, b)] = min(a, b)
    return np.array([find(c) for c in comp], dtype=np.int64) if len(pairs) else comp


def leakage(comp: np.ndarray, split: np.ndarray) -> np.ndarray:
    """Rows of an evaluation split whose (near-)duplicate group reaches an earlier split.

    split: 0 train, 1 val, 2 test. A val row leaks if its group has a training row; a test row
    leaks if its group has a training row or a val row that stays.
    """
    leak = np.zeros(len(comp), bool)
    seen = np.unique(comp[split == 0])
    for s in (1, 2):
        rows = split == s
        leak[rows] = np.isin(comp[rows], seen)
        seen = np.union1d(seen, comp[rows & ~leak])
    return leak
