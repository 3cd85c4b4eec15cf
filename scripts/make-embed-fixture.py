#!/usr/bin/env python3
"""Write infer/tests/fixtures/minilm_parity.json: reference embeddings for the parity test.

The Rust encoder in `infer` must reproduce sentence-transformers' vectors for the default
model. This script embeds a fixed set of sentences with sentence-transformers (the reference
implementation) from the installed model folder and stores the vectors rounded to 6 decimals.

Usage (from the workspace root, with a venv that has sentence-transformers):

    /work/venvs/st/bin/python scripts/make-embed-fixture.py [--model models/minilm-l6]

Re-run it only when the sentences or the default model change; commit the JSON.
"""

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_SEQ_LENGTH = 256

# A paragraph repeated until it is far beyond MAX_SEQ_LENGTH word pieces (checked below).
LONG = " ".join(
    [
        "Retrieval-augmented generation combines a search engine with a language model:",
        "documents are split into passages, each passage is embedded into a vector,",
        "and at question time the passages nearest to the question are handed to the model",
        "together with instructions to cite them.",
    ]
    * 8
)

SENTENCES = [
    "Hello world.",
    "The quick brown fox jumps over the lazy dog.",
    "How do I reset my password?",
    "Employees may carry over up to five days of unused annual leave into the next calendar year, "
    "provided that their manager approves the request before the end of November.",
    "A cairn is a human-made pile of stones raised as a landmark or memorial.",
    "Invoice #4471 was paid on 2024-03-15 for $1,299.99 (incl. 20% VAT) - see ref. A/7-b!",
    "Vector search finds semantically similar passages even when they share no words with the query.",
    "The server returned HTTP 503; retry after 30s, then escalate to on-call (pager: +1-555-0100).",
    "机器学习是人工智能的一个分支。",
    "请问公司的年假政策是什么？每年可以休几天？",
    "Short",
    LONG,
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "minilm-l6"))
    parser.add_argument(
        "--out", default=os.path.join(ROOT, "infer", "tests", "fixtures", "minilm_parity.json")
    )
    args = parser.parse_args()

    if not os.path.isfile(os.path.join(args.model, "model.safetensors")):
        print(f"model not found at {args.model}: run scripts/install-models", file=sys.stderr)
        return 1

    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(args.model, device="cpu")
    model.max_seq_length = MAX_SEQ_LENGTH

    tokens = [
        len(ids)
        for ids in model.tokenizer(SENTENCES, add_special_tokens=True, verbose=False)["input_ids"]
    ]
    long_pieces = tokens[SENTENCES.index(LONG)]
    if long_pieces <= 300:
        print(f"the long sentence has only {long_pieces} word pieces; make it longer", file=sys.stderr)
        return 1

    vectors = model.encode(SENTENCES, batch_size=4, normalize_embeddings=True, convert_to_numpy=True)
    fixture = {
        "model": os.path.basename(os.path.normpath(args.model)),
        "max_seq_length": MAX_SEQ_LENGTH,
        "sentences": SENTENCES,
        # Untruncated word pieces per sentence, special tokens included.
        "tokens": tokens,
        "vectors": [[round(float(x), 6) for x in v] for v in vectors],
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    size = os.path.getsize(args.out)
    print(f"wrote {args.out}: {len(SENTENCES)} sentences, {vectors.shape[1]} dims, {size} bytes")
    print(f"long sentence: {long_pieces} word pieces (truncated to {MAX_SEQ_LENGTH})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
