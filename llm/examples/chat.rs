//! Generates an answer to one user message with a GGUF model, streaming it to stdout.
//!
//! `cargo run --release -p cairn-llm --example chat -- MODEL_DIR "question" [SYSTEM_FILE]`
//!
//! A question given as `@FILE` is read from that file. `WEIGHTS=f32`,
//! `WEIGHTS=quantized` or `WEIGHTS=fast` (the default) picks how the weights are held, to
//! compare what each writes.

use std::io::Write;
use std::path::Path;

use cairn_llm::{ChatMessage, Engine, EngineOptions, Event, Role, SamplingParams, WeightFormat};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, user, rest @ ..] = args.as_slice() else {
        return Err("usage: chat MODEL_DIR USER_MESSAGE [SYSTEM_FILE]".into());
    };
    let format = match std::env::var("WEIGHTS").as_deref() {
        Ok("f32") => WeightFormat::F32,
        Ok("quantized") => WeightFormat::Quantized,
        Ok("fast") | Err(_) => WeightFormat::Fast,
        Ok(other) => return Err(format!("WEIGHTS={other}: expected f32, quantized or fast").into()),
    };
    let engine = Engine::load(
        Path::new(dir),
        &candle_core::Device::Cpu,
        format,
        EngineOptions::default(),
    )?;
    let mut messages = Vec::new();
    if let Some(system) = rest.first() {
        messages.push(ChatMessage::new(
            Role::System,
            std::fs::read_to_string(system)?,
        ));
    }
    let user = match user.strip_prefix('@') {
        Some(file) => std::fs::read_to_string(file)?,
        None => user.clone(),
    };
    messages.push(ChatMessage::new(Role::User, user));
    let prompt = engine.chat_prompt(&messages)?;
    let started = std::time::Instant::now();
    let mut generation = engine.submit(prompt.clone(), SamplingParams::greedy(256))?;
    let mut first = None;
    while let Some(event) = generation.blocking_recv() {
        match event {
            Event::Text(t) => {
                first.get_or_insert_with(|| started.elapsed());
                print!("{t}");
                std::io::stdout().flush()?;
            }
            Event::Done(done) => {
                let total = started.elapsed();
                let first = first.unwrap_or(total);
                eprintln!(
                    "\n[{} prompt tokens, {} generated, {:?}; first text after {:.2?}, then {:.1} tokens/s]",
                    done.prompt_tokens,
                    done.completion_tokens,
                    done.reason,
                    first,
                    done.completion_tokens.saturating_sub(1) as f64 / (total - first).as_secs_f64()
                );
            }
            Event::Failed(m) => return Err(m.into()),
        }
    }
    Ok(())
}
