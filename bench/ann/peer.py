#!/usr/bin/env python3
"""The hnswlib and faiss side of `cairn bench ann`: build time (M 16, efConstruction 200,
inner product on the unit vectors cairn embedded) and queries/s at the smallest ef of a
sweep whose recall@10 against the exact top 10 reaches 0.95. Queries are every passage whose
id is divisible by 100 (they stay out of the index), searched as one batch on `--threads`
threads, as these libraries are used."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import common  # noqa: E402

import numpy as np  # noqa: E402

M, EF_CONSTRUCTION, K, TARGET = 16, 200, 10, 0.95
SWEEP = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
SEARCHES = 5000  # as cairn: the queries, repeated


def recall(found, truth):
    return sum(len(set(f[:K]) & set(t)) for f, t in zip(found, truth)) / (len(truth) * K)


def at_target(search, queries, truth, repeat):
    """(ef, recall, queries/s) at the smallest ef reaching TARGET (or the largest tried)."""
    reps = -(-SEARCHES // len(queries))
    batch = np.concatenate([queries] * reps)[:SEARCHES]
    for ef in SWEEP:
        r = recall(search(queries, ef), truth)
        if r >= TARGET or ef == SWEEP[-1]:
            secs, _ = common.median_time(repeat, lambda: search(batch, ef))
            return ef, r, len(batch) / secs


def main():
    args = common.arguments({"--vectors": {"required": True}, "--truth": {"required": True},
                             "--dims": {"type": int, "required": True}})
    data = np.fromfile(args.vectors, dtype="<f4").reshape(-1, args.dims)
    n = data.shape[0]
    ids = np.arange(n)
    is_query = ids % 100 == 0
    base_ids, base = ids[~is_query], np.ascontiguousarray(data[~is_query])
    queries = np.ascontiguousarray(data[is_query])
    truth = np.fromfile(args.truth, dtype="<u4").reshape(-1, K)
    reports = []

    import hnswlib

    def build_hnswlib():
        index = hnswlib.Index(space="ip", dim=args.dims)
        index.init_index(max_elements=len(base), ef_construction=EF_CONSTRUCTION, M=M,
                         random_seed=1)
        index.add_items(base, base_ids, num_threads=args.threads)
        return index

    common.log("bench ann: hnswlib …")
    build_s, index = common.median_time(args.repeat, build_hnswlib)

    def search_hnswlib(q, ef):
        index.set_ef(max(ef, K))
        labels, _ = index.knn_query(q, k=K, num_threads=args.threads)
        return labels

    ef, r, qps = at_target(search_hnswlib, queries, truth, args.repeat)
    from importlib.metadata import version
    reports.append(report(f"hnswlib {version('hnswlib')}", build_s, qps, r, ef, len(base)))

    import faiss
    faiss.omp_set_num_threads(args.threads)

    def build_faiss():
        index = faiss.IndexHNSWFlat(args.dims, M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = EF_CONSTRUCTION
        index.add(base)
        return index

    common.log("bench ann: faiss …")
    build_s, findex = common.median_time(args.repeat, build_faiss)

    def search_faiss(q, ef):
        findex.hnsw.efSearch = max(ef, K)
        _, positions = findex.search(q, K)
        return base_ids[positions]

    ef, r, qps = at_target(search_faiss, queries, truth, args.repeat)
    reports.append(report(f"faiss {faiss.__version__}", build_s, qps, r, ef, len(base)))
    common.report(reports)


def report(engine, build_s, qps, r, ef, n):
    return {
        "engine": engine,
        "measures": [
            common.measure("build time (s)", build_s, False, f"{n} vectors"),
            common.measure("queries/s at recall@10 ≥ 0.95", qps, True,
                           f"ef {ef}, recall@10 {r:.3f}"),
            common.measure("recall@10", r, True, f"ef {ef}"),
        ],
        "extra": {"ef": ef, "recall_at_10": r},
    }


if __name__ == "__main__":
    main()
