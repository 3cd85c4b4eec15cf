#!/usr/bin/env python3
"""Write the cross-encoder parity fixture: a tiny random BertForSequenceClassification and its logits.

Pinned versions (the ones the committed fixture was made with; install from PyPI into a venv
outside the repository):

    python 3.11, torch==2.15.0, transformers==5.24.0, tokenizers==0.23.3, safetensors==0.8.0

    python3 -m venv /work/venvs/xenc
    /work/venvs/xenc/bin/pip install torch==2.15.0 transformers==5.24.0 tokenizers==0.23.3 \
        safetensors==0.8.0

Usage (from the workspace root; run by hand, never by tests):

    /work/venvs/xenc/bin/python scripts/make-cross-fixture.py

It writes

- `infer/tests/fixtures/tiny-cross/` (`config.json`, `tokenizer.json`, `model.safetensors`):
  a 2-layer BERT with hidden size 32 and one label (a score, like ms-marco cross-encoders),
  weights in Hugging Face's `bert.`-prefixed layout;
- `infer/tests/fixtures/tiny-cross/two-labels/`: the same shape with two labels;
- `infer/tests/fixtures/tiny_cross_logits.json`: fixed (query, passage) pairs and the logits
  PyTorch computes for them.

The vocabulary is a small WordPiece vocabulary built here from fixed sentences; the tokenizer
is BERT's (normaliser, pre-tokeniser, `[CLS] A [SEP] B [SEP]` post-processor with token types
0 and 1). Pairs are tokenised exactly as `cairn_infer::CrossEncoder` does: the `tokenizers`
pair encoding truncated to MAX_TOKENS, passage only (`only_second`), falling back to
`longest_first` when the query alone is too long. Each pair runs through the model on its own,
without padding, so the reference does not depend on batching.

Re-run it only when the pairs or the model shape change; commit the outputs.
"""

import json
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "infer", "tests", "fixtures")
MODEL_DIR = os.path.join(FIXTURES, "tiny-cross")
TWO_LABELS_DIR = os.path.join(MODEL_DIR, "two-labels")
LOGITS_FILE = os.path.join(FIXTURES, "tiny_cross_logits.json")

SEED = 20240611
MAX_TOKENS = 32
MAX_POSITIONS = 64
# Larger than BERT's 0.02 so that logits differ clearly from pair to pair.
INIT_RANGE = 0.3

# The vocabulary is built from these; PAIRS also has words outside it (spelled out in
# characters) and a character outside it (the coffee cup, [UNK]).
CORPUS = [
    "How do I reset my password? Open the account settings and choose reset password.",
    "Employees may carry over up to five days of unused annual leave into the next year.",
    "A cairn is a human-made pile of stones raised as a landmark or memorial.",
    "Vector search finds similar passages even when they share no words with the query.",
    "The server returned an error; retry after thirty seconds, then call the on-call engineer.",
    "Invoices are paid within thirty days of receipt by bank transfer.",
    "Retrieval combines a search engine with a language model that cites its passages.",
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "机器学习是人工智能的一个分支。",
    "请问公司的年假政策是什么？每年可以休几天？",
    "员工每年有十五天年假，未用完的假期可以转到下一年。",
]

LONG_PASSAGE = (
    "Retrieval combines a search engine with a language model: documents are split into "
    "passages, each passage is embedded into a vector, and at question time the passages "
    "nearest to the question are handed to the model together with instructions to cite them."
)
LONG_QUERY = (
    "how do employees carry over unused annual leave into the next year and who approves "
    "the request before the end of the year when the manager is away on leave"
)

PAIRS = [
    ["How do I reset my password?", "Open the account settings and choose reset password."],
    ["How do I reset my password?", "The quick brown fox jumps over the lazy dog."],
    ["what is a cairn", "A cairn is a human-made pile of stones raised as a landmark or memorial."],
    ["annual leave", "Employees may carry over up to five days of unused annual leave."],
    ["vector search", LONG_PASSAGE],
    ["年假政策", "员工每年有十五天年假，未用完的假期可以转到下一年。"],
    ["机器学习", "How do I reset my password?"],
    ["invoice ☕", "Paid."],
    ["", "An empty query still gets a score."],
    ["zebra xylophone", "Quokkas and zebras play the xylophone."],
    # The query fills half of MAX_TOKENS: cutting the passage only differs from longest first.
    ["how many days of unused annual leave may employees carry over into the next year",
     LONG_PASSAGE],
    [LONG_QUERY, "Employees may carry over up to five days of unused annual leave."],
]


SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tokenizer(out_path: str):
    """BERT's tokenizer over a WordPiece vocabulary built from CORPUS, deterministically: the
    special tokens, every character alone and as a `##` continuation, then every whole word.
    Words outside CORPUS are spelled out in characters; characters outside it are [UNK]."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.processors import TemplateProcessing

    normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
    )
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words, chars = set(), set()
    for text in CORPUS:
        for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)):
            words.add(word)
            chars.update(word)
    pieces = (
        SPECIAL_TOKENS
        + sorted(chars)
        + ["##" + c for c in sorted(chars)]
        + sorted(words - chars)
    )
    vocab = {piece: i for i, piece in enumerate(pieces)}

    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    # The template form HF BERT tokenizers ship: token type 0 for the query, 1 for the passage.
    tokenizer.post_processor = TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    tokenizer.add_special_tokens(SPECIAL_TOKENS)
    tokenizer.save(out_path)

    loaded = Tokenizer.from_file(out_path)
    if loaded.token_to_id("[PAD]") != 0:
        raise SystemExit("[PAD] must have id 0 (the config's pad_token_id)")
    check = loaded.encode("a", "b")
    if check.tokens[0] != "[CLS]" or check.tokens.count("[SEP]") != 2 or check.type_ids[-1] != 1:
        raise SystemExit(f"the pair post-processor is not BERT's: {check.tokens} {check.type_ids}")
    return loaded


def encode_pair(tokenizer, query: str, passage: str):
    """The cross-encoder's tokenisation: passage-only truncation, longest-first as fallback."""
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS, strategy="only_second")
    try:
        return tokenizer.encode(query, passage, add_special_tokens=True), "only_second"
    except Exception as err:  # tokenizers raises a plain Exception
        if "too short" not in str(err):
            raise
    tokenizer.enable_truncation(MAX_TOKENS, strategy="longest_first")
    return tokenizer.encode(query, passage, add_special_tokens=True), "longest_first"


def build_model(num_labels: int, vocab_size: int, seed: int):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=MAX_POSITIONS,
        type_vocab_size=2,
        initializer_range=INIT_RANGE,
        layer_norm_eps=1e-12,
        pad_token_id=0,
        num_labels=num_labels,
        attn_implementation="eager",
    )
    model = BertForSequenceClassification(config)
    # Perturb every parameter (LayerNorm scales and all biases included) so that loading the
    # wrong tensor, or none, shows up in the logits.
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.1)
    return model.eval()


def logits_for(model, encodings):
    import torch

    out = []
    with torch.no_grad():
        for enc in encodings:
            ids = torch.tensor([enc.ids], dtype=torch.long)
            types = torch.tensor([enc.type_ids], dtype=torch.long)
            mask = torch.tensor([enc.attention_mask], dtype=torch.long)
            logits = model(input_ids=ids, token_type_ids=types, attention_mask=mask).logits[0]
            out.append([round(float(x), 7) for x in logits])
    return out


def save_model(model, tokenizer_path: str, out_dir: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        os.makedirs(out_dir, exist_ok=True)
        for name in ("config.json", "model.safetensors"):
            shutil.copyfile(os.path.join(tmp, name), os.path.join(out_dir, name))
    shutil.copyfile(tokenizer_path, os.path.join(out_dir, "tokenizer.json"))

    from safetensors import safe_open

    with safe_open(os.path.join(out_dir, "model.safetensors"), framework="pt") as f:
        names = set(f.keys())
    for needed in ("bert.embeddings.word_embeddings.weight", "bert.pooler.dense.weight",
                   "classifier.weight", "classifier.bias"):
        if needed not in names:
            raise SystemExit(f"{out_dir}: {needed} missing from model.safetensors")


def main() -> int:
    import tokenizers
    import torch
    import transformers

    os.makedirs(MODEL_DIR, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer_path = os.path.join(tmp, "tokenizer.json")
        tokenizer = build_tokenizer(tokenizer_path)
        vocab_size = tokenizer.get_vocab_size()

        encodings, strategies = [], []
        for query, passage in PAIRS:
            enc, strategy = encode_pair(tokenizer, query, passage)
            encodings.append(enc)
            strategies.append(strategy)
        untruncated = []
        tokenizer.no_truncation()
        for query, passage in PAIRS:
            untruncated.append(len(tokenizer.encode(query, passage).ids))

        if not any(n > MAX_TOKENS for n in untruncated):
            raise SystemExit("no pair is long enough to be truncated")
        if "longest_first" not in strategies:
            raise SystemExit("no pair exercises the longest-first fallback")
        tokenizer.enable_truncation(MAX_TOKENS, strategy="longest_first")
        if all(
            tokenizer.encode(q, p).ids == enc.ids for (q, p), enc in zip(PAIRS, encodings)
        ):
            raise SystemExit("no pair tells passage-only truncation from longest first")
        tokenizer.no_truncation()
        unk = tokenizer.token_to_id("[UNK]")
        if not any(unk in enc.ids for enc in encodings):
            raise SystemExit("no pair has an unknown word piece")

        one = build_model(1, vocab_size, SEED)
        two = build_model(2, vocab_size, SEED + 1)
        save_model(one, tokenizer_path, MODEL_DIR)
        save_model(two, tokenizer_path, TWO_LABELS_DIR)

    fixture = {
        "made_with": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
        },
        "max_tokens": MAX_TOKENS,
        "pairs": PAIRS,
        # Word pieces per pair, special tokens included: before and after truncation.
        "untruncated_tokens": untruncated,
        "tokens": [len(enc.ids) for enc in encodings],
        "truncation": strategies,
        "logits": logits_for(one, encodings),
        "two_label_logits": logits_for(two, encodings),
    }
    with open(LOGITS_FILE, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=False, indent=1)
        f.write("\n")

    for (query, passage), n, m, s, l1, l2 in zip(
        PAIRS, untruncated, fixture["tokens"], strategies, fixture["logits"],
        fixture["two_label_logits"],
    ):
        print(f"{n:3d} -> {m:3d} {s:13s} {l1} {l2}  {query[:20]!r} / {passage[:30]!r}")
    print(f"vocabulary: {vocab_size} word pieces; wrote {MODEL_DIR}, {TWO_LABELS_DIR}, {LOGITS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
