"""Search indexes over gallery embeddings behind one :class:`GalleryIndex` protocol: exact search
in numpy (the default below :data:`ANN_THRESHOLD` embeddings) and an approximate inverted-file
index (FAISS IVF, 8-bit codes, exact re-rank) above it, chosen by :class:`AutoIndex`."""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

import numpy as np

log = logging.getLogger(__name__)


@runtime_checkable
class GalleryIndex(Protocol):
    """Nearest-neighbour search over unit vectors, each labelled with its person id."""

    def build(self, vectors: np.ndarray, labels: np.ndarray) -> None:
        """Replace the indexed set with ``vectors (M, D)`` labelled ``labels (M,)``."""

    def __len__(self) -> int: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Best ``k`` distinct labels per query by cosine similarity, best first.

        Returns ``(scores (Q, k), labels (Q, k))``; rows are padded with ``-inf`` / ``-1`` when
        fewer than ``k`` labels exist.
        """


class ExactIndex:
    """Brute-force cosine search: one matrix product, exact, ~100k vectors in a few ms."""

    def __init__(self) -> None:
        self._matrix = np.zeros((0, 0), np.float32)
        self._labels = np.zeros((0,), np.int64)

    def build(self, vectors: np.ndarray, labels: np.ndarray) -> None:
        self._matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        self._labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._labels)

    def search(self, queries: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        out_s = np.full((len(q), k), -np.inf, np.float32)
        out_l = np.full((len(q), k), -1, np.int64)
        if len(self._labels) == 0 or len(q) == 0:
            return out_s, out_l
        # For a few queries numpy's single-threaded einsum loop beats multi-threaded BLAS,
        # whose threads stall when other processes hold the cores (100k x 128 on 2 busy
        # cores: p50 ~3-7 ms against 5-33 ms).
        sims = (np.einsum("qd,md->qm", q, self._matrix) if len(q) <= 4
                else q @ self._matrix.T)  # (Q, M)
        # A person's score is their best embedding; take enough candidates to find k people.
        n_cand = min(sims.shape[1], max(k * 8, 32))
        if n_cand < sims.shape[1]:
            cand = np.argpartition(-sims, n_cand - 1, axis=1)[:, :n_cand]
        else:
            cand = np.broadcast_to(np.arange(sims.shape[1]), sims.shape)
        for r in range(len(q)):
            c = cand[r][np.argsort(-sims[r, cand[r]], kind="stable")]
            _, first = np.unique(self._labels[c], return_index=True)
            order = np.sort(first)[:k]
            if len(order) < k and n_cand < sims.shape[1]:
                # Rare: the candidates covered fewer than k people; reduce over everything.
                per = _best_per_label(sims[r], self._labels)
                top = sorted(per.items(), key=lambda kv: -kv[1])[:k]
                out_l[r, : len(top)] = [t[0] for t in top]
                out_s[r, : len(top)] = [t[1] for t in top]
                continue
            out_l[r, : len(order)] = self._labels[c[order]]
            out_s[r, : len(order)] = sims[r, c[order]]
        return out_s, out_l


#: gallery size (embeddings) from which :class:`AutoIndex` switches to the approximate index
ANN_THRESHOLD = 200_000


class IVFIndex:
    """Approximate cosine search: FAISS's inverted file over 8-bit scalar-quantised codes
    (``IndexIVFScalarQuantizer``, ``faiss-cpu`` from the 'scale' extra), then an exact re-rank
    of the best candidates against the float vectors.

    The gallery is split into ``nlist`` ~ ``2 sqrt(N)`` k-means cells; a query scans the
    ``nlist / 16`` nearest cells (at least 8; ~6 % of the codes, a quarter of the bytes of float
    vectors)
    and re-scores its best ``max(8 k, 32)`` rows exactly. At a million random 128-d unit
    vectors: recall@1 1.0 against exact search, p50 2.3 ms (docs/recognition.md). An HNSW graph
    (FAISS ``IndexHNSWFlat``, M 16) was measured first and dropped: 644 s to build and recall@1
    0.31 on the same data.

    Changes are incremental: new rows are added to their cells; rows of people who are gone
    are masked out of every result at once (never returned) and the index is rebuilt when a
    fifth of it is dead or it has grown fourfold since its cells were trained.
    """

    def __init__(self, probe_fraction: float = 1 / 16) -> None:
        try:
            import faiss
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError("the approximate gallery index needs faiss-cpu "
                              "(pip install 'maskface[scale]')") from exc
        self._faiss = faiss
        self.probe_fraction = probe_fraction
        self._index = None
        self._trained_on = 0
        self._vectors = np.zeros((0, 0), np.float32)   # rows in the index, in index order
        self._labels = np.zeros((0,), np.int64)        # their labels
        self._alive = np.zeros((0,), bool)             # False: the label was removed since

    def _new_index(self, vectors: np.ndarray):
        faiss = self._faiss
        n, dim = vectors.shape
        nlist = int(max(1, min(n // 39, 2 * np.sqrt(n))))  # k-means wants ~39 points a cell
        index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dim), dim, nlist,
                                              faiss.ScalarQuantizer.QT_8bit,
                                              faiss.METRIC_INNER_PRODUCT)
        sample = vectors
        if n > 40 * nlist:  # a seeded sample: the same gallery builds the same cells
            sample = vectors[np.random.default_rng(0).choice(n, 40 * nlist, replace=False)]
        index.train(np.ascontiguousarray(sample))
        index.nprobe = min(nlist, max(8, int(round(nlist * self.probe_fraction))))
        self._trained_on = n
        return index

    def build(self, vectors: np.ndarray, labels: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        labels = np.asarray(labels, dtype=np.int64)
        if self._index is not None and vectors.shape[1:] == self._vectors.shape[1:]:
            # Incremental: rows of removed labels die; the surviving rows must be the new set's
            # prefix (the gallery lists rows by id, and ids only grow), the rest is appended.
            alive = self._alive & np.isin(self._labels, labels)
            n_old = int(alive.sum())
            if (n_old <= len(labels) and np.array_equal(self._labels[alive], labels[:n_old])
                    and np.array_equal(self._vectors[alive], vectors[:n_old])
                    and (~alive).sum() <= 0.2 * max(len(alive), 1)
                    and len(labels) <= 4 * self._trained_on):
                if n_old < len(labels):
                    self._index.add(vectors[n_old:])
                    self._vectors = np.concatenate([self._vectors, vectors[n_old:]])
                    self._labels = np.concatenate([self._labels, labels[n_old:]])
                self._alive = np.concatenate([alive, np.ones(len(labels) - n_old, bool)])
                return
        self._index = None
        if len(vectors):
            self._index = self._new_index(vectors)
            self._index.add(vectors)
        self._vectors, self._labels = vectors, labels
        self._alive = np.ones(len(labels), bool)

    def __len__(self) -> int:
        return int(self._alive.sum())

    def search(self, queries: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        q = np.ascontiguousarray(np.atleast_2d(np.asarray(queries, dtype=np.float32)))
        out_s = np.full((len(q), k), -np.inf, np.float32)
        out_l = np.full((len(q), k), -1, np.int64)
        if len(self) == 0 or len(q) == 0:
            return out_s, out_l
        dead = len(self._alive) - len(self)
        # Enough rows to find k distinct people past a few dead rows.
        n_cand = min(len(self._labels), max(k * 8, 32) + min(dead, 64))
        _, rows = self._index.search(q, n_cand)
        for r in range(len(q)):
            rr = rows[r][rows[r] >= 0]
            rr = rr[self._alive[rr]]
            sims = self._vectors[rr] @ q[r]  # exact re-rank of the quantised candidates
            order = np.argsort(-sims, kind="stable")
            rr, sims = rr[order], sims[order]
            labs = self._labels[rr]
            _, first = np.unique(labs, return_index=True)
            best = np.sort(first)[:k]  # rows are best first: a label's first row is its best
            out_l[r, : len(best)] = labs[best]
            out_s[r, : len(best)] = sims[best]
        return out_s, out_l


class AutoIndex:
    """Exact search below ``threshold`` embeddings, :class:`IVFIndex` from there on (when
    faiss is installed; exact otherwise, with one warning)."""

    def __init__(self, threshold: int = ANN_THRESHOLD) -> None:
        self.threshold = threshold
        self._impl: GalleryIndex = ExactIndex()

    @property
    def kind(self) -> str:
        return "ivf" if isinstance(self._impl, IVFIndex) else "exact"

    def build(self, vectors: np.ndarray, labels: np.ndarray) -> None:
        want_ann = len(labels) >= self.threshold
        if want_ann and not isinstance(self._impl, IVFIndex):
            try:
                self._impl = IVFIndex()
            except ImportError as exc:
                log.warning("%s; searching %d embeddings exactly", exc, len(labels))
        elif not want_ann and not isinstance(self._impl, ExactIndex):
            self._impl = ExactIndex()
        self._impl.build(vectors, labels)

    def __len__(self) -> int:
        return len(self._impl)

    def search(self, queries: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        return self._impl.search(queries, k)


def _best_per_label(scores: np.ndarray, labels: np.ndarray) -> dict[int, float]:
    best: dict[int, float] = {}
    for s, lab in zip(scores.tolist(), labels.tolist()):
        if s > best.get(lab, -np.inf):
            best[lab] = s
    return best
