//! The tokenizer a GGUF file carries in its metadata, rebuilt as a `tokenizers::Tokenizer`.
//!
//! `tokenizer.ggml.model = "gpt2"` is byte-level BPE: `tokenizer.ggml.tokens` is the
//! vocabulary (id = index, in the byte-to-unicode alphabet where a space is `Ġ`),
//! `tokenizer.ggml.merges` the merge rules in priority order ("a b" per rule). How text is cut
//! into words before BPE differs per model family and is named by `tokenizer.ggml.pre`; the
//! families supported here are listed in [`PreTokenizerKind`]. Tokens whose
//! `tokenizer.ggml.token_type` is "control" (3) become special tokens, so a chat template's
//! `<|im_start|>` encodes as one id whatever surrounds it; "user-defined" tokens (4) become
//! plain added tokens. `tokenizer.ggml.add_bos_token` decides whether encoding with special
//! tokens puts the BOS token first.

use std::borrow::Cow;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use super::gguf::GgufFile;
use crate::error::{LlmError, Result};

/// `tokenizer.ggml.token_type` of a control token (`<|im_start|>`, `<|endoftext|>`, …).
const TOKEN_TYPE_CONTROL: i64 = 3;
/// `tokenizer.ggml.token_type` of a token the model's authors added to the vocabulary.
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// Qwen2's word splitting: letters with at most one leading non-letter, digits one at a
/// time, punctuation runs with their trailing newlines, whitespace runs.
const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Llama 3's: as Qwen2's, but digits in groups of up to three.
const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The word-splitting rules (`tokenizer.ggml.pre`) this crate implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreTokenizerKind {
    /// `gpt-2`: GPT-2's byte-level split.
    Gpt2,
    /// `smollm`: every digit on its own, then GPT-2's byte-level split (SmolLM, SmolLM2).
    SmolLm,
    /// `qwen2`: Qwen2's split, NFC-normalised first (Qwen2, Qwen2.5).
    Qwen2,
    /// `llama-bpe`: Llama 3's split, whole words looked up before merging.
    Llama3,
}

impl PreTokenizerKind {
    /// The names `tokenizer.ggml.pre` uses for the supported rules.
    pub const NAMES: &'static [&'static str] = &["gpt-2", "smollm", "qwen2", "llama-bpe"];

    /// Parses `tokenizer.ggml.pre`; `None` for rules this crate does not implement.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "gpt-2" => Some(Self::Gpt2),
            "smollm" => Some(Self::SmolLm),
            "qwen2" => Some(Self::Qwen2),
            "llama-bpe" => Some(Self::Llama3),
            _ => None,
        }
    }

    fn pre_tokenizer(self) -> Result<PreTokenizerWrapper, String> {
        let split = |pattern: &str| {
            Split::new(
                SplitPattern::Regex(pattern.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| format!("bad split pattern: {e}"))
        };
        Ok(match self {
            Self::Gpt2 => ByteLevel::new(false, true, true).into(),
            Self::SmolLm => Sequence::new(vec![
                Digits::new(true).into(),
                ByteLevel::new(false, true, true).into(),
            ])
            .into(),
            Self::Qwen2 => Sequence::new(vec![
                split(QWEN2_PATTERN)?.into(),
                ByteLevel::new(false, false, false).into(),
            ])
            .into(),
            Self::Llama3 => Sequence::new(vec![
                split(LLAMA3_PATTERN)?.into(),
                ByteLevel::new(false, true, false).into(),
            ])
            .into(),
        })
    }
}

/// A special token: its id and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialToken {
    /// The token id.
    pub id: u32,
    /// The token as text, e.g. `<|im_end|>`.
    pub text: String,
}

/// A byte-level BPE tokenizer built from GGUF metadata, with the model's special tokens.
#[derive(Debug, Clone)]
pub struct GgufTokenizer {
    tokenizer: Tokenizer,
    bos: Option<SpecialToken>,
    eos: Option<SpecialToken>,
    pad_id: Option<u32>,
    add_bos: bool,
    /// Texts of the control tokens, for [`GgufTokenizer::strip_special`].
    control: Vec<String>,
}

impl GgufTokenizer {
    /// Builds the tokenizer `gguf` describes. A tokenizer model other than byte-level BPE
    /// (`gpt2`) or a `tokenizer.ggml.pre` not in [`PreTokenizerKind::NAMES`] is an
    /// [`LlmError::Unsupported`] error.
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self> {
        let path = gguf.path().to_path_buf();
        let fail = |message: String| LlmError::Tokenizer {
            path: path.clone(),
            message,
        };

        let model = gguf.string("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(gguf.unsupported(format!(
                "tokenizer model {model:?} (supported: \"gpt2\", byte-level BPE)"
            )));
        }
        let pre_name = if gguf.has("tokenizer.ggml.pre") {
            gguf.string("tokenizer.ggml.pre")?
        } else {
            "(missing)"
        };
        let pre = PreTokenizerKind::from_name(pre_name).ok_or_else(|| {
            gguf.unsupported(format!(
                "tokenizer pre-tokenizer tokenizer.ggml.pre = {pre_name:?} (supported: {})",
                PreTokenizerKind::NAMES.join(", ")
            ))
        })?;

        let tokens = gguf.strings("tokenizer.ggml.tokens")?;
        let vocab_size = u32::try_from(tokens.len())
            .map_err(|_| fail(format!("{} tokens is too many", tokens.len())))?;
        let vocab: Vocab = tokens
            .iter()
            .zip(0..vocab_size)
            .map(|(t, id)| (t.to_string(), id))
            .collect();
        let merges = gguf
            .strings("tokenizer.ggml.merges")?
            .into_iter()
            .enumerate()
            .map(|(i, rule)| {
                rule.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| fail(format!("merge rule {i} ({rule:?}) is not \"a b\"")))
            })
            .collect::<Result<Vec<_>>>()?;
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .ignore_merges(pre == PreTokenizerKind::Llama3)
            .build()
            .map_err(|e| fail(format!("cannot build the BPE model: {e}")))?;

        let mut tokenizer = Tokenizer::new(bpe);
        if pre == PreTokenizerKind::Qwen2 {
            tokenizer
                .with_normalizer(Some(NFC))
                .map_err(|e| fail(format!("cannot set the NFC normalizer: {e}")))?;
        }
        tokenizer.with_pre_tokenizer(Some(pre.pre_tokenizer().map_err(&fail)?));
        tokenizer.with_decoder(Some(ByteLevelDecoder::default()));

        let types = if gguf.has("tokenizer.ggml.token_type") {
            gguf.integers("tokenizer.ggml.token_type")?
        } else {
            Vec::new()
        };
        if !types.is_empty() && types.len() != tokens.len() {
            return Err(fail(format!(
                "{} token types for {} tokens",
                types.len(),
                tokens.len()
            )));
        }
        let of_type = |want: i64| -> Vec<&str> {
            tokens
                .iter()
                .zip(&types)
                .filter(|&(_, &t)| t == want)
                .map(|(tok, _)| *tok)
                .collect()
        };
        let control: Vec<String> = of_type(TOKEN_TYPE_CONTROL)
            .into_iter()
            .map(str::to_string)
            .collect();
        tokenizer
            .add_special_tokens(
                control
                    .iter()
                    .map(|t| AddedToken::from(t.clone(), true).normalized(false)),
            )
            .map_err(|e| fail(format!("cannot add the control tokens: {e}")))?;
        tokenizer
            .add_tokens(
                of_type(TOKEN_TYPE_USER_DEFINED)
                    .into_iter()
                    .map(|t| AddedToken::from(t, false).normalized(false)),
            )
            .map_err(|e| fail(format!("cannot add the user-defined tokens: {e}")))?;

        let special = |key: &str| -> Result<Option<SpecialToken>> {
            if !gguf.has(key) {
                return Ok(None);
            }
            let id = gguf.usize(key)?;
            let text = tokens
                .get(id)
                .ok_or_else(|| fail(format!("{key} = {id} is outside the vocabulary")))?;
            Ok(Some(SpecialToken {
                id: id as u32,
                text: text.to_string(),
            }))
        };
        let bos = special("tokenizer.ggml.bos_token_id")?;
        let eos = special("tokenizer.ggml.eos_token_id")?;
        let pad_id = special("tokenizer.ggml.padding_token_id")?.map(|t| t.id);
        let add_bos = if gguf.has("tokenizer.ggml.add_bos_token") {
            gguf.bool("tokenizer.ggml.add_bos_token")?
        } else {
            false
        };
        if add_bos {
            let bos = bos.as_ref().ok_or_else(|| {
                fail("add_bos_token is set but there is no bos_token_id".to_string())
            })?;
            let processor = TemplateProcessing::builder()
                .try_single(format!("{} $A", bos.text))
                .map_err(&fail)?
                .special_tokens(vec![(bos.text.clone(), bos.id)])
                .build()
                .map_err(|e| fail(format!("cannot add the BOS token: {e}")))?;
            tokenizer.with_post_processor(Some(processor));
        }

        Ok(Self {
            tokenizer,
            bos,
            eos,
            pad_id,
            add_bos,
            control,
        })
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Token ids of `text`. With `add_special_tokens`, the BOS token comes first when the
    /// model asks for it (`tokenizer.ggml.add_bos_token`). Special-token texts inside `text`
    /// always encode as their single ids.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        Ok(self
            .tokenizer
            .encode(text, add_special_tokens)
            .map_err(|e| LlmError::Encode(e.to_string()))?
            .get_ids()
            .to_vec())
    }

    /// Token ids of a rendered chat prompt. BOS is prepended when the model asks for it and
    /// the template has not already written it; an empty prompt is an error.
    pub fn encode_prompt(&self, prompt: &str) -> Result<Vec<u32>> {
        let bos_written = self.bos().is_some_and(|bos| prompt.starts_with(&bos.text));
        let ids = self.encode(prompt, self.add_bos() && !bos_written)?;
        if ids.is_empty() {
            return Err(LlmError::BadInput("the prompt is empty".into()));
        }
        Ok(ids)
    }

    /// The text of `ids`; special tokens are left out with `skip_special_tokens`.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.tokenizer
            .decode(ids, skip_special_tokens)
            .map_err(|e| LlmError::Encode(format!("cannot decode token ids: {e}")))
    }

    /// The longest prefix of `text` that keeps its first `max_tokens` tokens, cut where the
    /// next token starts, and whether anything was cut.
    pub fn truncate<'t>(&self, text: &'t str, max_tokens: usize) -> Result<(&'t str, bool)> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| LlmError::Encode(e.to_string()))?;
        let Some(&(cut, _)) = encoding.get_offsets().get(max_tokens) else {
            return Ok((text, false));
        };
        // Offsets are byte offsets of whole characters; fall back to the nearest boundary
        // below if a token ever starts inside one.
        let cut = (0..=cut.min(text.len()))
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        Ok((&text[..cut], true))
    }

    /// `text` with every control-token text (`<|im_start|>`, …) removed, so that text from
    /// outside cannot open or close a chat turn.
    pub fn strip_special<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = Cow::Borrowed(text);
        for token in &self.control {
            if out.contains(token.as_str()) {
                out = Cow::Owned(out.replace(token.as_str(), ""));
            }
        }
        out
    }

    /// The id of a token written exactly as in the vocabulary (`Ġ` for a leading space).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.tokenizer.token_to_id(token)
    }

    /// The beginning-of-sequence token, if the model has one.
    pub fn bos(&self) -> Option<&SpecialToken> {
        self.bos.as_ref()
    }

    /// The end-of-sequence token, if the model has one.
    pub fn eos(&self) -> Option<&SpecialToken> {
        self.eos.as_ref()
    }

    /// The id to pad batches with: the padding token, else EOS, else 0. Padding is never
    /// attended to, so any valid id does.
    pub fn pad_id(&self) -> u32 {
        self.pad_id.or(self.eos.as_ref().map(|t| t.id)).unwrap_or(0)
    }

    /// Whether encoding with special tokens prepends BOS.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// The number of token ids.
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }
}

#[cfg(test)]
mod tests {
    use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

    use super::*;

    fn split(kind: PreTokenizerKind, text: &str) -> Vec<String> {
        let pre = kind.pre_tokenizer().expect("pre-tokenizer");
        let mut s = PreTokenizedString::from(text);
        pre.pre_tokenize(&mut s).expect("pre-tokenize");
        s.get_splits(OffsetReferential::Original, OffsetType::Byte)
            .into_iter()
            .map(|(piece, _, _)| piece.to_string())
            .collect()
    }

    #[test]
    fn each_family_splits_numbers_its_own_way() {
        assert_eq!(
            split(PreTokenizerKind::Gpt2, "in 2024 we"),
            ["in", "Ġ2024", "Ġwe"]
        );
        assert_eq!(
            split(PreTokenizerKind::SmolLm, "in 2024 we"),
            ["in", "Ġ", "2", "0", "2", "4", "Ġwe"]
        );
        assert_eq!(
            split(PreTokenizerKind::Qwen2, "in 2024 we"),
            ["in", "Ġ", "2", "0", "2", "4", "Ġwe"]
        );
        assert_eq!(
            split(PreTokenizerKind::Llama3, "in 12345 we"),
            ["in", "Ġ", "123", "45", "Ġwe"]
        );
    }

    #[test]
    fn qwen2_keeps_a_leading_symbol_with_its_word_and_newlines_apart() {
        assert_eq!(
            split(PreTokenizerKind::Qwen2, "hello,world\n\nbar's"),
            ["hello", ",world", "ĊĊ", "bar", "'s"]
        );
        assert_eq!(
            split(PreTokenizerKind::Gpt2, "hello,world\n\nbar's"),
            ["hello", ",", "world", "Ċ", "Ċ", "bar", "'s"]
        );
    }

    #[test]
    fn unknown_pre_tokenizers_are_not_guessed() {
        assert_eq!(PreTokenizerKind::from_name("deepseek-llm"), None);
        for name in PreTokenizerKind::NAMES {
            assert!(PreTokenizerKind::from_name(name).is_some(), "{name}");
        }
    }
}
