"""Benchmark of 1:N search latency over a large synthetic gallery."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from maskface.gallery.index import AutoIndex, ExactIndex
from maskface.gallery.store import Gallery


def _rss_mb() -> float:
    """This process's resident memory (Linux ``/proc``; 0 elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def benchmark_search(n_embeddings: int = 100_000, dim: int = 128, per_person: int = 5,
                     n_queries: int = 200, seed: int = 0, db_path: str | Path | None = None,
                     index: str = "auto") -> dict[str, Any]:
    """Enrol ``n_embeddings`` random unit vectors (``per_person`` each) in a fresh gallery and
    time single-query :meth:`Gallery.identify` calls (the index already built).

    ``index``: ``auto`` (the gallery's default: exact below
    :data:`~maskface.gallery.index.ANN_THRESHOLD`, IVF above), ``exact`` or ``ivf``.

    Queries are enrolled vectors plus noise (a known person coming back), so there are at most
    ``n_embeddings`` of them; the last person may have fewer than ``per_person``. Recall@1 is the
    fraction whose best person equals exact search's; it is also reported for unrelated random
    queries (strangers), whose best candidate is far below any threshold.

    Returns a JSON-ready dict with the enrolment time, the index build (the first query loads
    the embeddings and builds), the memory it added, latency percentiles in milliseconds and
    recall@1.
    """
    if index not in ("auto", "exact", "ivf"):
        raise ValueError(f"index must be auto, exact or ivf, not {index!r}")
    idx = AutoIndex(threshold=0 if index == "ivf" else
                    (n_embeddings + 1 if index == "exact" else AutoIndex().threshold))
    n_queries = min(n_queries, n_embeddings)
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n_embeddings, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    queries = vecs[rng.choice(n_embeddings, n_queries, replace=False)]
    queries = queries + 0.05 * rng.standard_normal(queries.shape).astype(np.float32)
    strangers = rng.standard_normal((n_queries, dim)).astype(np.float32)
    strangers /= np.linalg.norm(strangers, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(db_path) if db_path else Path(tmp) / "bench.db"
        with Gallery(path, model="benchmark", dim=dim, index=idx) as g:
            t0 = time.perf_counter()
            n_people = -(-n_embeddings // per_person)
            with g._transaction() as conn:  # one bulk transaction: enrolment speed is not the point
                conn.executemany("INSERT INTO people (name, metadata, created_at) "
                                 "VALUES (?, '{}', '')", [(f"p{i}",) for i in range(n_people)])
                ids = [r[0] for r in conn.execute("SELECT id FROM people ORDER BY id")]
                labels = np.repeat(ids, per_person)[:n_embeddings]
                g._bind_model(conn, dim)
                conn.executemany(
                    "INSERT INTO embeddings (person_id, model, dim, masked, vector, created_at)"
                    " VALUES (?, 'benchmark', ?, 0, ?, '')",
                    ((int(p), dim, v.tobytes()) for p, v in zip(labels, vecs)))
            t_enrol = time.perf_counter() - t0
            rss0 = _rss_mb()
            t0 = time.perf_counter()
            g.identify(queries[:1], threshold=0.5)
            t_first = time.perf_counter() - t0
            rss1 = _rss_mb()
            times, hits, got = [], 0, []
            for q in queries:
                t0 = time.perf_counter()
                m = g.identify(q, threshold=0.5)[0]
                times.append(time.perf_counter() - t0)
                hits += m.known
                got.append(m.candidates[0][0] if m.candidates else -1)
            got_s = [g.identify(q, threshold=0.5)[0] for q in strangers]
            got_s = [m.candidates[0][0] if m.candidates else -1 for m in got_s]
            kind = getattr(g.index, "kind", type(g.index).__name__)
            # Ground truth: exact search over the very same rows the gallery indexed.
            with g._read() as tx:
                rows = tx.execute("SELECT person_id, vector FROM embeddings ORDER BY id").fetchall()
    exact = ExactIndex()
    exact.build(np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), -1),
                np.fromiter((r[0] for r in rows), np.int64, len(rows)))
    del rows
    truth = exact.search(queries, 1)[1][:, 0]
    truth_s = exact.search(strangers, 1)[1][:, 0]
    t = np.array(times) * 1e3
    return {
        "embeddings": n_embeddings, "people": n_people, "dim": dim, "queries": n_queries,
        "index": kind,
        "enrol_s": round(t_enrol, 2), "first_query_ms": round(t_first * 1e3, 1),
        "build_s": round(t_first, 2), "index_memory_mb": round(rss1 - rss0, 1),
        "process_rss_mb": round(rss1, 1),
        "recall_at_1": round(float(np.mean(np.array(got) == truth)), 4),
        "recall_at_1_strangers": round(float(np.mean(np.array(got_s) == truth_s)), 4),
        "query_ms_mean": round(float(t.mean()), 3), "query_ms_p50": round(float(np.median(t)), 3),
        "query_ms_p95": round(float(np.percentile(t, 95)), 3),
        "query_ms_max": round(float(t.max()), 3), "found": int(hits),
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
