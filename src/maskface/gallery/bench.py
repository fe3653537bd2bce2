"""Benchmark of 1:N search latency over a large synthetic gallery."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from maskface.gallery.store import Gallery


def benchmark_search(n_embeddings: int = 100_000, dim: int = 128, per_person: int = 5,
                     n_queries: int = 200, seed: int = 0, db_path: str | Path | None = None
                     ) -> dict[str, Any]:
    """Enrol ``n_embeddings`` random unit vectors (``per_person`` each) in a fresh gallery and
    time single-query :meth:`Gallery.identify` calls (the matrix cache already loaded).

    Returns a JSON-ready dict with the enrolment time, the first (cache-filling) query and the
    per-query latency percentiles in milliseconds.
    """
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n_embeddings, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    queries = vecs[rng.choice(n_embeddings, n_queries, replace=False)]
    queries = queries + 0.05 * rng.standard_normal(queries.shape).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(db_path) if db_path else Path(tmp) / "bench.db"
        with Gallery(path, model="benchmark", dim=dim) as g:
            t0 = time.perf_counter()
            n_people = n_embeddings // per_person
            with g._transaction() as conn:  # one bulk transaction: enrolment speed is not the point
                conn.executemany("INSERT INTO people (name, metadata, created_at) "
                                 "VALUES (?, '{}', '')", ((f"p{i}",) for i in range(n_people)))
                ids = [r[0] for r in conn.execute("SELECT id FROM people ORDER BY id")]
                labels = np.repeat(ids, per_person)
                g._bind_model(conn, dim)
                conn.executemany(
                    "INSERT INTO embeddings (person_id, model, dim, masked, vector, created_at)"
                    " VALUES (?, 'benchmark', ?, 0, ?, '')",
                    ((int(p), dim, v.tobytes()) for p, v in zip(labels, vecs)))
            t_enrol = time.perf_counter() - t0
            t0 = time.perf_counter()
            g.identify(queries[:1], threshold=0.5)
            t_first = time.perf_counter() - t0
            times, hits = [], 0
            for q in queries:
                t0 = time.perf_counter()
                m = g.identify(q, threshold=0.5)[0]
                times.append(time.perf_counter() - t0)
                hits += m.known
    t = np.array(times) * 1e3
    return {
        "embeddings": n_embeddings, "people": n_people, "dim": dim, "queries": n_queries,
        "enrol_s": round(t_enrol, 2), "first_query_ms": round(t_first * 1e3, 1),
        "query_ms_mean": round(float(t.mean()), 3), "query_ms_p50": round(float(np.median(t)), 3),
        "query_ms_p95": round(float(np.percentile(t, 95)), 3),
        "query_ms_max": round(float(t.max()), 3), "found": int(hits),
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
