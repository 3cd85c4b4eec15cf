"""Shared by the peers of `cairn bench`: arguments, the corpus, timing and the report.

Each peer prints one JSON list of reports, [{"engine", "measures": [{"figure", "value",
"higher_is_better", "settings"}], "extra"}], which cairn reads and sets beside its own.
"""
import argparse
import json
import os
import statistics
import sys
import time


def arguments(extra=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--passages", type=int)
    for name, kw in (extra or {}).items():
        ap.add_argument(name, **kw)
    return ap.parse_args()


def passages(args):
    out = []
    with open(os.path.join(args.corpus, "passages.jsonl"), encoding="utf-8") as f:
        for line in f:
            if args.passages is not None and len(out) >= args.passages:
                break
            out.append(json.loads(line)["text"])
    return out


def median_time(repeat, f):
    """Runs f() `repeat` times; the median of the seconds each took and f's last result."""
    times, result = [], None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        result = f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def measure(figure, value, higher_is_better, settings=""):
    return {"figure": figure, "value": value, "higher_is_better": higher_is_better,
            "settings": settings}


def report(reports):
    json.dump(reports, sys.stdout)
    sys.stdout.write("\n")


def log(message):
    print(message, file=sys.stderr, flush=True)
