#!/usr/bin/env python3
"""The sentence-transformers side of `cairn bench embed`: passages/s and word pieces/s of
the same model folder on PyTorch's CPU build, 32 passages per batch, at most 256 word pieces,
over the same sample of passages (spread evenly over the corpus), with `--threads` PyTorch
threads. Returns its first 16 vectors for cairn's parity check."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import common  # noqa: E402

BATCH, MAX_TOKENS, PARITY = 32, 256, 16


def main():
    args = common.arguments({"--model-dir": {"required": True},
                             "--sample": {"type": int, "default": 1024}})
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    all_passages = common.passages(args)
    n = max(1, min(args.sample, len(all_passages)))
    step = len(all_passages) / n
    texts = [all_passages[int(i * step)] for i in range(n)]
    model = SentenceTransformer(args.model_dir, device="cpu")
    model.max_seq_length = MAX_TOKENS
    tok = model.tokenizer
    pieces = sum(min(len(tok(t)["input_ids"]), MAX_TOKENS) for t in texts)

    def encode(batch):
        with torch.inference_mode():
            return model.encode(batch, batch_size=BATCH, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)

    encode(texts[:BATCH])  # warm-up, as cairn
    secs, vectors = common.median_time(args.repeat, lambda: encode(texts))
    per_s = len(texts) / secs
    settings = f"{len(texts)} passages, batch {BATCH}, max {MAX_TOKENS}, f32"
    import sentence_transformers
    common.report([{
        "engine": f"sentence-transformers {sentence_transformers.__version__} (torch {torch.__version__} CPU)",
        "measures": [
            common.measure("passages/s", per_s, True, settings),
            common.measure("word pieces/s", per_s * pieces / len(texts), True, settings),
        ],
        "extra": {"vectors": vectors[:PARITY].tolist(), "word_pieces": pieces},
    }])


if __name__ == "__main__":
    main()
