"""What similar customers bought and took: an item-item model trained in batch. Pure.

Items are products (``p:<id>``), categories (``c:<name>``) and offers a customer responded
to positively (``o:<offer id>``). From the binary customer × item matrix (scipy sparse)
the cosine similarity of every pair of items is computed (columns L2-normalised with
scikit-learn, then XᵀX), and each item keeps its ``k`` nearest neighbours. An offer is
represented by its items (the offer itself, its product, its category; the most similar
of them counts); its score for a customer is ``log1p(Σ similarity to the customer's
items)``: item-based top-N recommendation (Deshpande & Karypis, 2004).
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize


@dataclass(frozen=True)
class ItemModel:
    items: tuple[str, ...]
    index: dict[str, int]
    similarity: sp.csr_matrix  # items × items, top-k per row, no diagonal
    shares: dict[str, float]  # category -> share of all purchases
    customers: int

    def offer_rows(self, offer_items: Sequence[Sequence[str]]) -> sp.csr_matrix:
        """Each offer's similarity to every item (elementwise max over the offer's items),
        stored by item: one row an item, one column an offer, for ``scores``."""
        rows = []
        for keys in offer_items:
            found = [self.index[k] for k in keys if k in self.index]
            if found:
                rows.append(self.similarity[found].max(axis=0).tocsr())
            else:
                rows.append(sp.csr_matrix((1, len(self.items))))
        if not rows:
            return sp.csr_matrix((len(self.items), 0))
        return sp.vstack(rows).T.tocsr()

    def columns(self, items: Iterable[str]) -> np.ndarray:
        return np.fromiter((self.index[i] for i in items if i in self.index), dtype=np.int64)


def scores(by_item: sp.csr_matrix, columns: np.ndarray) -> np.ndarray:
    """The collaborative feature of every offer for a customer owning ``columns`` (items):
    log(1 + the summed similarities of the offer to them).

    Gathered from the CSR arrays directly: a customer owns a handful of items, and scipy's
    fancy indexing cost a quarter of a millisecond for them, on every cache miss."""
    n = by_item.shape[1]
    if columns.size == 0 or n == 0:
        return np.zeros(n)
    indptr = by_item.indptr
    at = np.concatenate([np.arange(indptr[c], indptr[c + 1]) for c in columns.tolist()])
    total = np.bincount(by_item.indices[at], weights=by_item.data[at], minlength=n)
    return np.log1p(np.maximum(total, 0.0))


def train(baskets: Iterable[Iterable[str]], k: int = 50, min_customers: int = 2) -> ItemModel:
    """``baskets``: the items of each customer (one iterable per customer)."""
    index: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    categories: Counter[str] = Counter()
    n = 0
    for basket in baskets:
        unique = set(basket)
        for item in unique:
            rows.append(n)
            cols.append(index.setdefault(item, len(index)))
            if item.startswith("c:"):
                categories[item[2:]] += 1
        n += 1
    matrix = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n, len(index))
    )
    support = np.asarray(matrix.sum(axis=0)).ravel()
    by_index = sorted(index, key=index.__getitem__)
    kept = [item for item in by_index if support[index[item]] >= min_customers]
    if kept:
        unit = normalize(matrix[:, np.flatnonzero(support >= min_customers)], axis=0)
        similarity = _top_k((unit.T @ unit).tocsr(), k)
    else:
        similarity = sp.csr_matrix((0, 0), dtype=np.float32)
    total = sum(categories.values())
    shares = {c: m / total for c, m in categories.items()} if total else {}
    return ItemModel(tuple(kept), {item: i for i, item in enumerate(kept)}, similarity, shares, n)


def _top_k(sim: sp.csr_matrix, k: int) -> sp.csr_matrix:
    sim.setdiag(0)
    sim.eliminate_zeros()
    indptr, indices, data = [0], [], []
    for i in range(sim.shape[0]):
        start, end = sim.indptr[i], sim.indptr[i + 1]
        row, values = sim.indices[start:end], sim.data[start:end]
        if len(values) > k:
            keep = np.argpartition(-values, k)[:k]
            row, values = row[keep], values[keep]
        indices.extend(row.tolist())
        data.extend(values.tolist())
        indptr.append(len(indices))
    return sp.csr_matrix(
        (np.asarray(data, dtype=np.float32), np.asarray(indices, dtype=np.int64), indptr),
        shape=sim.shape,
    )


def dump(model: ItemModel) -> bytes:
    buffer = io.BytesIO()
    s = model.similarity
    np.savez_compressed(
        buffer,
        items=np.asarray(model.items, dtype=str),
        data=s.data,
        indices=s.indices,
        indptr=s.indptr,
        shape=np.asarray(s.shape),
    )
    return buffer.getvalue()


def load(blob: bytes, shares: dict[str, float], customers: int) -> ItemModel:
    with np.load(io.BytesIO(blob), allow_pickle=False) as f:
        items = tuple(str(i) for i in f["items"])
        similarity = sp.csr_matrix(
            (f["data"], f["indices"], f["indptr"]), shape=tuple(int(x) for x in f["shape"])
        )
    return ItemModel(
        items, {item: i for i, item in enumerate(items)}, similarity, shares, customers
    )
