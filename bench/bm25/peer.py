#!/usr/bin/env python3
"""The bm25s side of `cairn bench bm25`: index time (tokenising with the English stop words
and Snowball stemmer, then scoring) and top-10 queries/s over the same passages and
questions, retrieving the questions as one batch with `n_threads`."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import common  # noqa: E402

import bm25s  # noqa: E402
import Stemmer  # noqa: E402

SEARCHES = 4000  # as cairn: the question list, repeated


def main():
    args = common.arguments({"--queries": {"required": True}})
    texts = common.passages(args)
    with open(args.queries, encoding="utf-8") as f:
        questions = [q for q in f.read().splitlines() if q.strip()]
    queries = [questions[i % len(questions)] for i in range(SEARCHES)]
    stemmer = Stemmer.Stemmer("english")

    def build():
        tokens = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False)
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        return retriever

    index_s, retriever = common.median_time(args.repeat, build)

    def search():
        q = bm25s.tokenize(queries, stopwords="en", stemmer=stemmer, show_progress=False)
        return retriever.retrieve(q, k=10, n_threads=args.threads, show_progress=False)

    search_s, _ = common.median_time(args.repeat, search)
    settings = f"{len(texts)} passages, top 10"
    common.report([{
        "engine": f"bm25s {bm25s.__version__}",
        "measures": [
            common.measure("index time (s)", index_s, False, settings),
            common.measure("queries/s", len(queries) / search_s, True, settings),
        ],
        "extra": {},
    }])


if __name__ == "__main__":
    main()
