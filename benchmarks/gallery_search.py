"""Gallery search at scale: exact numpy vs FAISS (HNSW, IVF) vs pgvector HNSW.

Data: synthetic face-like embeddings, 128-d: ``n / 10`` identities, each a
random centre (between-person distance ~1.0, like dlib's) with 10 noisy
samples (within-person distance ~0.4).  Isotropic Gaussian clusters are a
hard case for approximate search (real embeddings lie closer to a
low-dimensional manifold).  Queries: ``--queries`` new noisy samples of random
identities, searched one at a time (the latency a caller sees).

For each backend and size: build time (s), memory (MB: the vectors for
numpy, the serialized index for FAISS, table + index on disk for pgvector),
median ms per query, and recall@1 against exact search.  numpy and FAISS run the
gallery's own classes (``facelab.gallery.search.ExactIndex`` / ``FaissIndex``:
IVF, the gallery's default, with nprobe 32 / 64 (the gallery's) / 128 from one build; HNSW
with the gallery's ``kind="hnsw"`` parameters unless ``--hnsw-m/--hnsw-efc``); pgvector runs the same query as
``PostgresStore.native_search`` (``ORDER BY vector <-> q LIMIT k`` on an HNSW
index, ``hnsw.ef_search`` = its ``EF_SEARCH``, and twice that for comparison) on a PostgreSQL started from the
``pgserver`` wheel in a temp folder.

Bounded for a shared machine: FAISS uses ``--threads`` OpenMP threads, pgvector
stops at ``--pg-max`` vectors, and the process runs under ``nice``.

Usage: nice -n 10 python benchmarks/gallery_search.py [--sizes 10000,100000,1000000] [--backends numpy,faiss-hnsw,faiss-ivf,pgvector]
       [--json-out benchmarks/results/gallery_search.json]
"""

from __future__ import annotations

import argparse
import io
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from facelab.gallery.postgres import EF_SEARCH  # noqa: E402
from facelab.gallery.search import HNSW_EF_CONSTRUCTION, HNSW_M, IVF_NPROBE, ExactIndex, FaissIndex  # noqa: E402

DIM = 128


def make_data(n: int, n_queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_id = max(1, n // 10)
    centres = rng.normal(0, 1.0 / np.sqrt(2 * DIM), (n_id, DIM)).astype(np.float32)  # centre-to-centre ~1.0
    within = 0.4 / np.sqrt(2 * DIM)  # sample-to-sample ~0.4 within a person
    x = np.empty((n, DIM), np.float32)
    for s in range(0, n, 200_000):
        e = min(n, s + 200_000)
        x[s:e] = centres[np.arange(s, e) % n_id] + rng.normal(0, within, (e - s, DIM)).astype(np.float32)
    q = centres[rng.integers(0, n_id, n_queries)] + rng.normal(0, within, (n_queries, DIM)).astype(np.float32)
    return x, q.astype(np.float32)


def exact_top1(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    xx = (x * x).sum(1)
    out = np.empty(len(q), np.int64)
    for i in range(0, len(q), 64):
        d = xx[None, :] - 2.0 * q[i : i + 64] @ x.T
        out[i : i + 64] = d.argmin(1)
    return out


def time_queries(fn, q: np.ndarray) -> tuple[float, np.ndarray]:
    """Median ms per single query (robust to the preemptions of a shared machine); BLAS limited to one
    thread (one query is a matrix-vector product)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        fn(q[0])  # warm up
        got = np.empty(len(q), np.int64)
        times = np.empty(len(q))
        for i, row in enumerate(q):
            t = time.perf_counter()
            got[i] = fn(row)
            times[i] = time.perf_counter() - t
        return float(np.median(times)) * 1000, got


def bench_numpy(x, q, truth):
    t = time.perf_counter()
    idx = ExactIndex(np.arange(len(x)), x)
    build = time.perf_counter() - t
    ms, got = time_queries(lambda r: idx.search(r[None], 1)[1][0, 0], q)
    return build, x.nbytes / 1e6, ms, float((got == truth).mean()), {}


def bench_faiss_hnsw(x, q, truth, m: int = HNSW_M, ef_construction: int = HNSW_EF_CONSTRUCTION):
    import faiss

    t = time.perf_counter()
    idx = FaissIndex.build(np.arange(len(x)), x, kind="hnsw", m=m, ef_construction=ef_construction)
    build = time.perf_counter() - t
    mem = len(faiss.serialize_index(idx.index)) / 1e6
    ms, got = time_queries(lambda r: idx.search(r[None], 1)[1][0, 0], q)
    return build, mem, ms, float((got == truth).mean()), {"M": m, "efConstruction": ef_construction, "efSearch": idx.params["ef_search"]}


def bench_faiss_ivf(x, q, truth, nprobes: tuple[int, ...] = (32, IVF_NPROBE, 128)):
    """The gallery's IVF-Flat (nlist = 4 sqrt(n)), one build, searched with several ``nprobe``: one row each."""
    import faiss

    t = time.perf_counter()
    idx = FaissIndex.build(np.arange(len(x)), x, kind="ivf")
    build = time.perf_counter() - t
    mem = len(faiss.serialize_index(idx.index)) / 1e6
    out = []
    for nprobe in nprobes:
        idx.params["nprobe"] = nprobe
        ms, got = time_queries(lambda r: idx.search(r[None], 1)[1][0, 0], q)
        name = "faiss-ivf" if nprobe == IVF_NPROBE else f"faiss-ivf{nprobe}"
        out.append((name, build, mem, ms, float((got == truth).mean()), {"nlist": int(idx.index.nlist), "nprobe": nprobe}))
    return out


class PG:
    def __init__(self, url: str | None):
        self.srv = None
        if url is None:
            import pgserver

            self.tmp = tempfile.mkdtemp(prefix="facelab-bench-pg-")
            self.srv = pgserver.get_server(self.tmp, cleanup_mode="stop")
            url = self.srv.get_uri()
        import psycopg

        self.con = psycopg.connect(url, autocommit=True)
        self.con.execute("CREATE EXTENSION IF NOT EXISTS vector")

    def close(self):
        self.con.close()
        if self.srv is not None:
            self.srv.cleanup()


def bench_pgvector(pg: PG, x, q, truth):
    con = pg.con
    con.execute("DROP TABLE IF EXISTS bench_vectors")
    con.execute(f"CREATE TABLE bench_vectors (id BIGINT PRIMARY KEY, vector vector({DIM}))")
    con.execute("SET maintenance_work_mem = '2GB'")
    con.execute("SET max_parallel_maintenance_workers = 1")
    t = time.perf_counter()
    with con.cursor() as cur:
        with cur.copy("COPY bench_vectors (id, vector) FROM STDIN") as cp:
            for s in range(0, len(x), 20_000):
                buf = io.StringIO()
                for i in range(s, min(len(x), s + 20_000)):
                    buf.write(f"{i}\t[{','.join(map(repr, x[i].tolist()))}]\n")
                cp.write(buf.getvalue())
    con.execute("CREATE INDEX ON bench_vectors USING hnsw (vector vector_l2_ops) WITH (m = 16, ef_construction = 64)")
    build = time.perf_counter() - t
    mem = con.execute("SELECT pg_total_relation_size('bench_vectors')").fetchone()[0] / 1e6
    out = []
    for ef in (EF_SEARCH, 2 * EF_SEARCH):  # the value PostgresStore uses, and twice that for comparison
        con.execute(f"SET hnsw.ef_search = {ef}")

        def one(r):
            v = "[" + ",".join(map(repr, r.tolist())) + "]"
            return con.execute("SELECT id FROM bench_vectors ORDER BY vector <-> %s::vector LIMIT 1", (v,)).fetchone()[0]

        ms, got = time_queries(one, q)
        # the server's own execution time (EXPLAIN ANALYZE), without the client round trip and scheduling waits
        server = []
        for r in q[:20]:
            v = "[" + ",".join(map(repr, r.tolist())) + "]"
            plan = con.execute("EXPLAIN (ANALYZE, FORMAT JSON) SELECT id FROM bench_vectors ORDER BY vector <-> %s::vector LIMIT 1", (v,)).fetchone()[0]
            server.append(plan[0]["Execution Time"])
        name = "pgvector" if ef == EF_SEARCH else f"pgvector-ef{ef}"
        out.append((name, build, mem, ms, float((got == truth).mean()), {"m": 16, "ef_construction": 64, "ef_search": ef, "server_ms": round(float(np.median(server)), 3)}))
    con.execute("DROP TABLE bench_vectors")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--backends", default="numpy,faiss-hnsw,faiss-ivf,pgvector")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2, help="OpenMP threads for FAISS builds (the machine is shared)")
    ap.add_argument("--pg-max", type=int, default=100_000, help="largest size run on pgvector")
    ap.add_argument("--pg-url", default=None, help="an existing PostgreSQL with pgvector (default: start one with pgserver)")
    ap.add_argument("--hnsw-m", type=int, default=HNSW_M, help="FAISS HNSW M (default: the gallery's)")
    ap.add_argument("--hnsw-efc", type=int, default=HNSW_EF_CONSTRUCTION, help="FAISS HNSW efConstruction (default: the gallery's)")
    ap.add_argument("--append", action="store_true", help="keep the rows already in --json-out (replacing those measured again)")
    ap.add_argument("--json-out", default=str(ROOT / "benchmarks" / "results" / "gallery_search.json"))
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so a killed run still stops its PostgreSQL

    import faiss

    faiss.omp_set_num_threads(args.threads)
    backends = args.backends.split(",")
    pg = PG(args.pg_url) if "pgvector" in backends else None
    rows = json.loads(Path(args.json_out).read_text()) if args.append and Path(args.json_out).exists() else []
    print(f"{'backend':14s} {'n':>9s} {'build_s':>8s} {'memory_mb':>10s} {'ms/query':>9s} {'recall@1':>9s}")
    try:
        for n in [int(s) for s in args.sizes.split(",")]:
            x, q = make_data(n, args.queries)
            truth = exact_top1(x, q)
            for b in backends:
                if b == "pgvector" and n > args.pg_max:
                    continue
                if b == "pgvector":
                    results = bench_pgvector(pg, x, q, truth)
                elif b == "faiss-hnsw":
                    results = [(b, *bench_faiss_hnsw(x, q, truth, args.hnsw_m, args.hnsw_efc))]
                elif b == "faiss-ivf":
                    results = bench_faiss_ivf(x, q, truth)
                else:
                    results = [(b, *bench_numpy(x, q, truth))]
                for name, build, mem, ms, rec, params in results:
                    params = {**params, "queries": args.queries, "threads": args.threads if b.startswith("faiss") else 1}
                    row = {"backend": name, "n": n, "build_s": round(build, 2), "memory_mb": round(mem, 1), "ms_per_query": round(ms, 3), "recall_at_1": round(rec, 4), "params": params}
                    rows = [r for r in rows if (r["backend"], r["n"]) != (name, n)] + [row]
                    print(f"{name:14s} {n:9d} {build:8.2f} {mem:10.1f} {ms:9.3f} {rec:9.4f}", flush=True)
                Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
                Path(args.json_out).write_text(json.dumps(rows, indent=2))
            del x
    finally:
        if pg is not None:
            pg.close()
    print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
