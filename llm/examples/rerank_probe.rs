//! Compares LLM reranking recipes on one query and a few passages: P(yes) with the
//! default prompt, and query likelihood (mean log-probability of the query written by the
//! model after the passage). `cargo run -p cairn-llm --release --example rerank_probe --
//! MODEL_DIR QUERY PASSAGE...`. A measurement aid, not a test.

use cairn_llm::{Batch, ChatMessage, LlmScorer, RerankPrompt, Role, WeightFormat};
use candle_core::{D, Device};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("model dir")?);
    let query = args.next().ok_or("query")?;
    let passages: Vec<String> = args.collect();
    let scorer = LlmScorer::load(&dir, &Device::Cpu, WeightFormat::F32)?;
    let yes = scorer.rerank(&query, &passages, &RerankPrompt::default(), 8)?;
    let ql = query_likelihood(&scorer, &query, &passages)?;
    let few = few_shot(&scorer, &query, &passages)?;
    for (i, p) in passages.iter().enumerate() {
        println!(
            "yes {:.3}  ql {:8.3}  few {:.3}  {}",
            yes[i],
            ql[i],
            few[i],
            &p[..p.len().min(60)]
        );
    }
    Ok(())
}

fn query_likelihood(
    s: &LlmScorer,
    query: &str,
    passages: &[String],
) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    let mut out = Vec::new();
    for p in passages {
        let prefix = s.template().render(
            &[ChatMessage::new(
                Role::User,
                format!("Passage: {p}\nWrite a question that this passage answers."),
            )],
            true,
        )?;
        let head = s.encode_prompt(&prefix)?;
        let q = s.tokenizer().encode(query, false)?;
        let mut all = head.clone();
        all.extend(&q);
        let batch = Batch::new(&[all.as_slice()])?;
        let logits = s.model().forward_all(&batch)?.squeeze(0)?;
        let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?.to_vec2::<f32>()?;
        let mut sum = 0f32;
        for (k, &t) in q.iter().enumerate() {
            sum += logp[head.len() + k - 1][t as usize];
        }
        out.push(sum / q.len() as f32);
    }
    Ok(out)
}

/// P(yes) after two worked examples (one yes, one no) in earlier chat turns.
fn few_shot(
    s: &LlmScorer,
    query: &str,
    passages: &[String],
) -> Result<Vec<f32>, Box<dyn std::error::Error>> {
    let ask = |q: &str, p: &str| {
        format!(
            "Question: {q}\nPassage: {p}\nDoes the passage contain the answer to the question? Answer yes or no."
        )
    };
    let prompts = passages
        .iter()
        .map(|p| {
            s.template().render(
                &[
                    ChatMessage::new(Role::System, "You check whether a passage contains the answer to a question."),
                    ChatMessage::new(Role::User, ask("How long is the warranty on laptops?", "Laptops bought through the IT shop come with a three-year warranty.")),
                    ChatMessage::new(Role::Assistant, "yes"),
                    ChatMessage::new(Role::User, ask("How long is the warranty on laptops?", "Laptops must be locked when you leave your desk; the IT shop sells locks.")),
                    ChatMessage::new(Role::Assistant, "no"),
                    ChatMessage::new(Role::User, ask(query, p)),
                ],
                true,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(s.score_yes_no(&prompts, "yes", "no", 8)?)
}
