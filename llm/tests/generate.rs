//! Text generation with the packaged SmolLM2-135M-Instruct: the KV cache against the full
//! forward pass, continuous batching that does not change greedy output, sampling, stop
//! sequences, limits, back-pressure and cancellation.
//!
//! The model is read from `$CAIRN_MODELS_DIR/smollm2-135m` or `<workspace>/models/smollm2-135m`
//! (installed by `scripts/install-models`); the tests fail when it is missing.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cairn_llm::LlmError;
use cairn_llm::{
    Batch, ChatMessage, DecoderModel, Engine, EngineOptions, Event, FinishReason, GgufFile,
    GgufTokenizer, Role, SamplingParams, WeightFormat,
};
use candle_core::{Device, Tensor};

fn model_dir() -> PathBuf {
    let root = std::env::var_os("CAIRN_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../models")));
    let dir = root.join("smollm2-135m");
    assert!(
        dir.is_dir(),
        "model {} is not installed: run scripts/install-models (or set CAIRN_MODELS_DIR)",
        dir.display()
    );
    dir
}

fn engine(options: EngineOptions) -> Engine {
    Engine::load(&model_dir(), &Device::Cpu, WeightFormat::Fast, options).expect("load engine")
}

fn ask(engine: &Engine, question: &str) -> Vec<u32> {
    engine
        .chat_prompt(&[ChatMessage::new(Role::User, question)])
        .expect("prompt")
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.max_all())
        .and_then(|d| d.to_scalar::<f32>())
        .expect("diff")
}

/// Prefilling in chunks and then decoding one token at a time through the cache gives the
/// logits of running the whole sequence at once. (With f32 weights: quantized weights also
/// quantize activations to 8 bits, where a last-bit difference of attention over a chunk can
/// flip a rounding and move logits by a few percent.)
#[test]
fn cached_decoding_matches_the_full_forward_pass() {
    let gguf = GgufFile::open(&model_dir()).expect("open");
    let model = DecoderModel::load(&gguf, &Device::Cpu, WeightFormat::F32).expect("load");
    let tokens = GgufTokenizer::from_gguf(&gguf)
        .and_then(|t| {
            t.encode_prompt("<|im_start|>user\nWhich river flows through Paris and Rouen?<|im_end|>\n<|im_start|>assistant\nThe river")
        })
        .expect("encode");
    assert!(tokens.len() > 14, "{} tokens", tokens.len());
    let mut cache = model.new_cache();
    // The prompt in two chunks of 8 and 6 tokens, then the rest one token at a time.
    let mut cuts = vec![(0, 8), (8, 14)];
    cuts.extend((14..tokens.len()).map(|i| (i, i + 1)));
    for (from, to) in cuts {
        let cached = model
            .forward_cached(&mut [(&tokens[from..to], &mut cache)])
            .expect("cached step");
        assert_eq!(cache.len(), to);
        let full = model
            .forward_last(&Batch::new(&[&tokens[..to]]).expect("batch"))
            .expect("full forward");
        let diff = max_abs_diff(&cached, &full);
        let scale = full
            .abs()
            .and_then(|t| t.max_all())
            .and_then(|t| t.to_scalar::<f32>())
            .expect("scale");
        assert!(
            diff < 1e-4 * scale,
            "after {to} tokens: cached and full logits differ by {diff} (scale {scale})"
        );
        let argmax = |t: &Tensor| {
            t.argmax(1)
                .and_then(|a| a.to_vec1::<u32>())
                .expect("argmax")
        };
        assert_eq!(argmax(&cached), argmax(&full), "after {to} tokens");
    }
}

/// Greedy text of several different-length requests is the same whether each runs alone or
/// all run together, joining a batch whose other members are mid-prompt or mid-answer.
#[test]
fn greedy_output_is_the_same_alone_and_in_a_batch() {
    let engine = engine(EngineOptions {
        max_batch: 4,
        prefill_chunk: 16,
        ..EngineOptions::default()
    });
    let questions = [
        "What is the capital of France?",
        "Write one sentence about rivers.",
        "List three colours of the rainbow, separated by commas, and say which one is in the middle of the rainbow.",
        "Hi",
    ];
    let params = SamplingParams::greedy(24);
    let alone: Vec<String> = questions
        .iter()
        .map(|q| {
            engine
                .submit(ask(&engine, q), params.clone())
                .expect("submit")
                .wait()
                .expect("generate")
                .text
        })
        .collect();
    assert!(alone.iter().all(|t| !t.trim().is_empty()), "{alone:?}");

    let steps_before = engine
        .stats()
        .steps
        .load(std::sync::atomic::Ordering::Relaxed);
    let together: Vec<_> = questions
        .iter()
        .map(|q| {
            engine
                .submit(ask(&engine, q), params.clone())
                .expect("submit")
        })
        .collect();
    let together: Vec<String> = together
        .into_iter()
        .map(|g| g.wait().expect("generate").text)
        .collect();
    let steps = engine
        .stats()
        .steps
        .load(std::sync::atomic::Ordering::Relaxed)
        - steps_before;
    assert_eq!(alone, together);
    // Run together, the four answers share steps: far fewer than the sum of their tokens.
    assert!(steps < 4 * 24, "{steps} steps for four requests");
}

#[test]
fn token_limits_stop_sequences_and_seeds() {
    let engine = engine(EngineOptions::default());
    let prompt = ask(
        &engine,
        "Tell me a long story about a cat who lives in Paris.",
    );

    let done = engine
        .submit(prompt.clone(), SamplingParams::greedy(5))
        .expect("submit")
        .wait()
        .expect("generate");
    assert_eq!(done.finished.reason, FinishReason::Length);
    assert_eq!(done.finished.completion_tokens, 5);
    assert_eq!(done.finished.prompt_tokens, prompt.len());

    let long = engine
        .submit(prompt.clone(), SamplingParams::greedy(40))
        .expect("submit")
        .wait()
        .expect("generate")
        .text;
    assert!(long.starts_with(&done.text), "{long:?} / {:?}", done.text);
    // Stop at the second word of the long text: only what precedes it comes back.
    let word = long
        .split_whitespace()
        .nth(2)
        .expect("three words")
        .to_string();
    let at = long.find(&word).expect("word");
    let stopped = engine
        .submit(
            prompt.clone(),
            SamplingParams {
                stop: vec![word.clone()],
                ..SamplingParams::greedy(40)
            },
        )
        .expect("submit")
        .wait()
        .expect("generate");
    assert_eq!(stopped.finished.reason, FinishReason::Stop);
    assert_eq!(stopped.text, long[..at], "stopped at {word:?}");

    let sampled = |seed| {
        let params = SamplingParams {
            temperature: 0.9,
            top_p: 0.95,
            seed: Some(seed),
            ..SamplingParams::greedy(24)
        };
        engine
            .submit(prompt.clone(), params)
            .expect("submit")
            .wait()
            .expect("generate")
            .text
    };
    assert_eq!(sampled(11), sampled(11));
    let texts: std::collections::BTreeSet<String> = (1..=4).map(sampled).collect();
    assert!(texts.len() > 1, "four seeds gave one text: {texts:?}");
}

#[test]
fn bad_requests_are_refused_before_they_queue() {
    let engine = engine(EngineOptions::default());
    let too_long = vec![1u32; engine.context_length()];
    assert!(matches!(
        engine.submit(too_long, SamplingParams::greedy(4)),
        Err(LlmError::BadInput(_))
    ));
    assert!(matches!(
        engine.submit(Vec::new(), SamplingParams::greedy(4)),
        Err(LlmError::BadInput(_))
    ));
    assert!(matches!(
        engine.submit(vec![1, 2], SamplingParams::greedy(0)),
        Err(LlmError::InvalidSetting(_))
    ));
    assert!(matches!(
        engine.submit(
            vec![1, 2],
            SamplingParams {
                temperature: f32::NAN,
                ..SamplingParams::default()
            }
        ),
        Err(LlmError::InvalidSetting(_))
    ));
}

/// With one running slot and one queue place, a third request is refused as busy; the two
/// accepted ones still finish.
#[test]
fn a_full_queue_refuses_requests_as_busy() {
    let engine = engine(EngineOptions {
        max_batch: 1,
        max_queue: 1,
        ..EngineOptions::default()
    });
    let prompt = ask(&engine, "Count from one to one hundred.");
    let mut accepted = Vec::new();
    let mut busy = 0;
    for _ in 0..3 {
        match engine.submit(prompt.clone(), SamplingParams::greedy(48)) {
            Ok(g) => accepted.push(g),
            Err(LlmError::Busy(_)) => busy += 1,
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert!(busy >= 1, "no request was refused");
    assert!(accepted.len() <= 2);
    for g in accepted {
        // Finished in full: at the token limit or at the model's end of turn.
        let done = g.wait().expect("accepted requests finish");
        let tokens = done.finished.completion_tokens;
        assert!((1..=48).contains(&tokens), "{tokens} tokens");
        assert_eq!(done.finished.prompt_tokens, prompt.len());
    }
}

/// Dropping a generation mid-stream takes it out of the batch, and the engine goes on.
#[test]
fn dropping_a_generation_cancels_it() {
    let engine = engine(EngineOptions::default());
    let prompt = ask(&engine, "Write a very long essay about mountains.");
    let mut g = engine
        .submit(prompt.clone(), SamplingParams::greedy(2000))
        .expect("submit");
    match g.blocking_recv() {
        Some(Event::Text(_)) => {}
        other => panic!("expected text first, got {other:?}"),
    }
    drop(g);
    let stats = engine.stats();
    let start = Instant::now();
    while stats.cancelled.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the dropped request was not cancelled"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let generated = stats.generated.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        generated < 100,
        "{generated} tokens generated for a dropped request"
    );
    let done = engine
        .submit(prompt, SamplingParams::greedy(3))
        .expect("submit")
        .wait()
        .expect("the engine still works");
    assert_eq!(done.finished.completion_tokens, 3);
}
