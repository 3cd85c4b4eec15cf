"""The llama.cpp side of `cairn bench generate`: decode tokens/s of one stream on a GGUF file.

Run by `cairn bench generate` with the Python of bench/generate/setup's virtual environment:
    python llama_cpp_peer.py MODEL.gguf --threads 1 --tokens 128 --repeat 3 --prompt TEXT
Prints one JSON row: {engine, threads, streams, tokens_per_s, prefill_per_s}. The prompt is
formatted by the model's own chat template (as cairn does), decoding is greedy, and the
speed is the tokens after the first over the time after the first, like cairn's.
"""

import argparse
import json
import statistics
import time

from llama_cpp import Llama


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--prompt", required=True)
    a = ap.parse_args()
    llm = Llama(
        model_path=a.model,
        n_ctx=2048,
        n_threads=a.threads,
        n_threads_batch=a.threads,
        verbose=False,
    )
    decode, prefill = [], []
    for _ in range(max(1, a.repeat)):
        llm.reset()
        start = time.perf_counter()
        first = None
        count = 0
        stream = llm.create_chat_completion(
            messages=[{"role": "user", "content": a.prompt}],
            max_tokens=a.tokens,
            temperature=0.0,
            stream=True,
        )
        for chunk in stream:
            if chunk["choices"][0]["delta"].get("content"):
                count += 1
                if first is None:
                    first = time.perf_counter()
        end = time.perf_counter()
        # llama-cpp-python streams one chunk per token; the prompt is the time to the first.
        # The templated prompt, as cairn counts it: the tokens in the context less those
        # generated (within one token: the last one sampled is not fed back).
        prompt_tokens = llm.n_tokens - count
        decode.append((count - 1) / (end - first))
        prefill.append(prompt_tokens / (first - start))
    print(
        json.dumps(
            {
                "engine": "llama.cpp",
                "threads": a.threads,
                "streams": 1,
                "tokens_per_s": statistics.median(decode),
                "prefill_per_s": statistics.median(prefill),
            }
        )
    )


if __name__ == "__main__":
    main()
