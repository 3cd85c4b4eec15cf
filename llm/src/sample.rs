//! Turning next-token logits into tokens, and tokens into streamed text.
//!
//! - [`SamplingParams`]: greedy or temperature / top-p sampling with an optional seed, stop
//!   sequences and a token limit: the knobs of an OpenAI-style request.
//! - [`Sampler`]: picks one token from a row of logits.
//! - [`TextOut`]: decodes the tokens generated so far into text and says how much of it can
//!   be sent: never half a UTF-8 character, never the start of what may become a stop
//!   sequence, and nothing from a stop sequence on.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{LlmError, Result};

/// How to pick tokens and when to stop.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// The most tokens to generate (the model's context also bounds it).
    pub max_tokens: usize,
    /// 0 picks the most likely token (greedy); above 0, logits are divided by it before
    /// sampling.
    pub temperature: f32,
    /// Nucleus sampling: only the most likely tokens whose probabilities sum to `top_p` are
    /// kept. 1 keeps all.
    pub top_p: f32,
    /// Seed of the sampler's random numbers; `None` draws one.
    pub seed: Option<u64>,
    /// Generation ends before the first occurrence of any of these texts, which is not sent.
    pub stop: Vec<String>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            temperature: 0.0,
            top_p: 1.0,
            seed: None,
            stop: Vec::new(),
        }
    }
}

impl SamplingParams {
    /// Greedy decoding of at most `max_tokens` tokens.
    pub fn greedy(max_tokens: usize) -> Self {
        Self {
            max_tokens,
            ..Self::default()
        }
    }

    /// Checks the ranges: a clear error rather than a silent clamp.
    pub fn validate(&self) -> Result<()> {
        if self.max_tokens == 0 {
            return Err(LlmError::InvalidSetting(
                "max_tokens must be at least 1".into(),
            ));
        }
        if !(self.temperature.is_finite() && (0.0..=5.0).contains(&self.temperature)) {
            return Err(LlmError::InvalidSetting(format!(
                "temperature must be between 0 and 5, not {}",
                self.temperature
            )));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(LlmError::InvalidSetting(format!(
                "top_p must be above 0 and at most 1, not {}",
                self.top_p
            )));
        }
        if self.stop.iter().any(String::is_empty) {
            return Err(LlmError::InvalidSetting("a stop sequence is empty".into()));
        }
        Ok(())
    }
}

/// Picks the next token from a row of logits.
#[derive(Debug)]
pub struct Sampler {
    temperature: f32,
    top_p: f32,
    rng: StdRng,
}

impl Sampler {
    /// A sampler for `params`.
    pub fn new(params: &SamplingParams) -> Self {
        let rng = match params.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Self {
            temperature: params.temperature,
            top_p: params.top_p,
            rng,
        }
    }

    /// The chosen token id. Greedy breaks ties by the lowest id; NaN logits never win.
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.temperature <= 0.0 {
            return argmax(logits);
        }
        let max = logits
            .iter()
            .copied()
            .filter(|x| x.is_finite())
            .fold(f32::NEG_INFINITY, f32::max);
        if !max.is_finite() {
            return argmax(logits);
        }
        let mut probs: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .filter(|(_, x)| x.is_finite())
            .map(|(i, &x)| (i as u32, ((x - max) / self.temperature).exp()))
            .collect();
        let total: f32 = probs.iter().map(|p| p.1).sum();
        if self.top_p < 1.0 {
            probs.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let mut kept = 0.0;
            let mut keep = probs.len();
            for (i, p) in probs.iter().enumerate() {
                kept += p.1 / total;
                if kept >= self.top_p {
                    keep = i + 1;
                    break;
                }
            }
            probs.truncate(keep);
        }
        let total: f32 = probs.iter().map(|p| p.1).sum();
        let mut draw = self.rng.random::<f32>() * total;
        for &(id, p) in &probs {
            if draw < p {
                return id;
            }
            draw -= p;
        }
        probs.last().map_or(0, |p| p.0)
    }
}

fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    let mut best_value = f32::NEG_INFINITY;
    for (i, &x) in logits.iter().enumerate() {
        if x > best_value {
            best = i;
            best_value = x;
        }
    }
    best as u32
}

/// The text of a generation as it grows, and how much of it is safe to send.
#[derive(Debug, Default)]
pub struct TextOut {
    stop: Vec<String>,
    text: String,
    sent: usize,
    stopped: bool,
}

impl TextOut {
    /// Text output that ends at the first of `stop`.
    pub fn new(stop: &[String]) -> Self {
        Self {
            stop: stop.to_vec(),
            ..Self::default()
        }
    }

    /// Takes the decoded text of all tokens so far and returns what can be sent now. Text
    /// ending in an incomplete character (U+FFFD from a partial byte sequence) waits for the
    /// next token. After a stop sequence is seen, [`TextOut::stopped`] is true and nothing
    /// more is returned.
    pub fn update(&mut self, decoded: String) -> String {
        // Text that was sent cannot change; a decode that would change it (which byte-level
        // BPE never does once a character is complete) waits for the next token.
        if self.stopped
            || decoded.ends_with('\u{FFFD}')
            || !decoded.starts_with(&self.text[..self.sent])
        {
            return String::new();
        }
        self.text = decoded;
        // Whatever could start a stop sequence was held back, so sent text holds none and
        // the search starts where it ends.
        let from = self.sent;
        let found = self
            .stop
            .iter()
            .filter_map(|s| self.text[from..].find(s.as_str()).map(|i| from + i))
            .min();
        let end = match found {
            Some(at) => {
                self.stopped = true;
                self.text.truncate(at);
                at
            }
            None => self.text.len() - self.held_back(),
        };
        self.take(end)
    }

    /// Everything not yet sent (the held-back text when generation ends without a stop).
    pub fn flush(&mut self) -> String {
        let end = self.text.len();
        self.take(end)
    }

    /// Whether a stop sequence ended the text.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// The whole text so far (up to a stop sequence).
    pub fn text(&self) -> &str {
        &self.text
    }

    fn take(&mut self, end: usize) -> String {
        let end = end.max(self.sent);
        let out = self.text[self.sent..end].to_string();
        self.sent = end;
        out
    }

    /// The length of the longest end of the text that could be the start of a stop sequence.
    fn held_back(&self) -> usize {
        let unsent = &self.text[self.sent..];
        self.stop
            .iter()
            .flat_map(|s| {
                (1..s.len().min(unsent.len() + 1))
                    .rev()
                    .filter(|&n| s.is_char_boundary(n) && unsent.ends_with(&s[..n]))
                    .take(1)
            })
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(temperature: f32, top_p: f32, seed: u64) -> SamplingParams {
        SamplingParams {
            temperature,
            top_p,
            seed: Some(seed),
            ..SamplingParams::default()
        }
    }

    #[test]
    fn greedy_takes_the_largest_logit_and_the_lowest_id_on_ties() {
        let mut s = Sampler::new(&SamplingParams::default());
        assert_eq!(s.sample(&[0.1, 2.0, -1.0, 2.0]), 1);
        assert_eq!(s.sample(&[f32::NAN, 0.5, 0.2]), 1);
    }

    #[test]
    fn sampling_with_a_seed_repeats_and_follows_the_distribution() {
        let logits = [0.0f32, 1.0, 2.0];
        let draw = |seed| {
            let mut s = Sampler::new(&params(1.0, 1.0, seed));
            (0..3000).map(|_| s.sample(&logits)).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        let counts = draw(7).iter().fold([0usize; 3], |mut c, &t| {
            c[t as usize] += 1;
            c
        });
        // softmax(0, 1, 2) = 0.090, 0.245, 0.665
        let share = |n: usize| n as f32 / 3000.0;
        assert!((share(counts[0]) - 0.090).abs() < 0.03, "{counts:?}");
        assert!((share(counts[2]) - 0.665).abs() < 0.03, "{counts:?}");
    }

    #[test]
    fn top_p_keeps_only_the_nucleus() {
        // probabilities 0.665, 0.245, 0.090: top_p 0.6 keeps only the first.
        let mut s = Sampler::new(&params(1.0, 0.6, 1));
        assert!((0..200).all(|_| s.sample(&[0.0, 1.0, 2.0]) == 2));
        let mut s = Sampler::new(&params(1.0, 0.8, 1));
        let seen: std::collections::BTreeSet<u32> =
            (0..400).map(|_| s.sample(&[0.0, 1.0, 2.0])).collect();
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn out_of_range_settings_are_refused() {
        let bad = [
            SamplingParams {
                max_tokens: 0,
                ..SamplingParams::default()
            },
            SamplingParams {
                temperature: -1.0,
                ..SamplingParams::default()
            },
            SamplingParams {
                top_p: 0.0,
                ..SamplingParams::default()
            },
            SamplingParams {
                stop: vec![String::new()],
                ..SamplingParams::default()
            },
        ];
        for p in bad {
            assert!(p.validate().is_err(), "{p:?}");
        }
        SamplingParams::default()
            .validate()
            .expect("defaults are valid");
    }

    /// Feeds successive decodes and collects what is sent.
    fn run(stop: &[&str], decodes: &[&str]) -> (Vec<String>, bool) {
        let stop: Vec<String> = stop.iter().map(|s| s.to_string()).collect();
        let mut out = TextOut::new(&stop);
        let mut sent: Vec<String> = decodes.iter().map(|d| out.update(d.to_string())).collect();
        sent.push(out.flush());
        (sent, out.stopped())
    }

    #[test]
    fn text_is_sent_as_it_grows_and_flushed_at_the_end() {
        let (sent, stopped) = run(&[], &["Hel", "Hello", "Hello wor", "Hello world"]);
        assert_eq!(sent, ["Hel", "lo", " wor", "ld", ""]);
        assert!(!stopped);
    }

    #[test]
    fn an_incomplete_character_waits_for_the_next_token() {
        let (sent, _) = run(&[], &["caf", "caf\u{FFFD}", "café"]);
        assert_eq!(sent, ["caf", "", "é", ""]);
    }

    #[test]
    fn a_stop_sequence_ends_the_text_and_its_start_is_held_back() {
        // "\n\nQ" is a stop: "\n" is held back until it is clear it is not one.
        let (sent, stopped) = run(&["\n\nQ"], &["A.", "A.\n", "A.\n\n", "A.\n\nQ: more"]);
        assert_eq!(sent, ["A.", "", "", "", ""]);
        assert!(stopped);

        let (sent, stopped) = run(&["\n\nQ"], &["A.", "A.\n", "A.\nB"]);
        assert_eq!(sent, ["A.", "", "\nB", ""]);
        assert!(!stopped);

        // Held-back text is sent when generation ends for another reason.
        let (sent, _) = run(&["</answer>"], &["yes </ans"]);
        assert_eq!(sent, ["yes ", "</ans"]);
    }
}
