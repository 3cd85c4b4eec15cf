//! The BERT cross-encoder: scores how well a passage answers a query by reading both together,
//! with a Hugging Face `BertForSequenceClassification` model read from a model folder
//! (`config.json`, `tokenizer.json`, `model.safetensors`).
//!
//! A pair goes through the tokenizer's own pair encoding (`[CLS] query [SEP] passage [SEP]`
//! with token types 0 and 1 for a BERT tokenizer), truncated to `max_tokens` word pieces by
//! cutting the passage only; when the query alone is too long, both are cut, longest first.
//! The encoder's `[CLS]` vector goes through the pooler (dense + tanh) and the classifier
//! (linear), giving one logit per label.
//!
//! The score of a pair is the logit with one label (ms-marco cross-encoders), and
//! `logit[1] - logit[0]` with two (label 1 meaning relevant). Either way `sigmoid(score)` is
//! the probability the head was trained to give: with one label its sigmoid, with two the
//! softmax probability of label 1. Scores order pairs the same way those probabilities do and
//! avoid their saturation; raw logits are available through [`CrossEncoder::logits`].
//!
//! Like [`crate::BertEncoder`], this is a plain struct that runs on the caller's thread and
//! knows nothing of documents: pairs in, numbers out.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{Linear, Module, VarBuilder, linear};
use candle_transformers::models::bert::BertModel;
use serde::Deserialize;
use tokenizers::utils::truncation::TruncationError;
use tokenizers::{Encoding, PostProcessor, Tokenizer, TruncationStrategy};

use crate::bert::{DEFAULT_BATCH_SIZE, ModelFolder};
use crate::error::{InferError, Result};

/// Where Hugging Face's `BertForSequenceClassification` keeps the encoder and its pooler.
const ENCODER_PREFIX: &str = "bert";
/// Names that tell whether the encoder's tensors carry [`ENCODER_PREFIX`].
const PREFIXED_PROBE: &str = "bert.embeddings.word_embeddings.weight";
const POOLER: &str = "pooler.dense";
const CLASSIFIER: &str = "classifier";

/// The classification head's part of `config.json`. Transformers writes `id2label` (and
/// leaves `num_labels` out) except when the labels are its default of two.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct HeadConfig {
    num_labels: Option<usize>,
    id2label: Option<BTreeMap<String, String>>,
}

impl HeadConfig {
    fn num_labels(&self) -> usize {
        match (&self.id2label, self.num_labels) {
            (Some(labels), _) if !labels.is_empty() => labels.len(),
            (_, Some(n)) => n,
            _ => 2,
        }
    }
}

/// A BERT cross-encoder (reranker) loaded from a model folder.
pub struct CrossEncoder {
    model: BertModel,
    pooler: Linear,
    classifier: Linear,
    /// Truncates the passage only, never pads.
    tokenizer: Tokenizer,
    /// Truncates longest first: for pairs whose query alone does not fit.
    fallback: Tokenizer,
    device: Device,
    max_tokens: usize,
    num_labels: usize,
    pad_id: u32,
    batch_size: usize,
    model_id: String,
}

impl std::fmt::Debug for CrossEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrossEncoder")
            .field("model_id", &self.model_id)
            .field("num_labels", &self.num_labels)
            .field("max_tokens", &self.max_tokens)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl CrossEncoder {
    /// Loads the cross-encoder in `dir` onto `device`. Pairs longer than `max_tokens` word
    /// pieces (special tokens included) are truncated, passage first.
    ///
    /// The weights may name the encoder `bert.…` (as Transformers saves
    /// `BertForSequenceClassification`) or without the prefix; a folder without a pooler or a
    /// `classifier` head (a plain BERT encoder) is refused with an
    /// [`InferError::Unsupported`] error, as is a head with other than 1 or 2 labels.
    pub fn load(dir: &Path, device: &Device, max_tokens: usize) -> Result<Self> {
        let folder = ModelFolder::open(dir, max_tokens)?;
        let unsupported = |path: &Path, message: String| InferError::Unsupported {
            path: path.to_path_buf(),
            message,
        };

        if let Some(model_type) = folder.config.model_type.as_deref()
            && model_type != "bert"
        {
            return Err(unsupported(
                &folder.config_path,
                format!("model_type `{model_type}` (the cross-encoder loads `bert` models only)"),
            ));
        }
        let head: HeadConfig =
            serde_json::from_slice(&folder.config_bytes).map_err(|source| InferError::Json {
                path: folder.config_path.clone(),
                source,
            })?;
        let num_labels = head.num_labels();
        if !(1..=2).contains(&num_labels) {
            return Err(unsupported(
                &folder.config_path,
                format!(
                    "{num_labels} labels (a cross-encoder scores with 1 label, or 2 with label 1 \
                     meaning relevant)"
                ),
            ));
        }

        let special = match folder.tokenizer.get_post_processor() {
            Some(processor) => processor.added_tokens(true),
            None => {
                return Err(folder.tokenizer_error(
                    "no post-processor: query and passage would be joined without [CLS]/[SEP]",
                ));
            }
        };
        if max_tokens < special + 2 {
            return Err(InferError::InvalidSetting(format!(
                "max_tokens must leave room for the {special} special tokens of a pair and one \
                 word piece each of query and passage ({} at least) for {}, got {max_tokens}",
                special + 2,
                dir.display()
            )));
        }
        let tokenizer = folder.truncating_tokenizer(max_tokens, TruncationStrategy::OnlySecond)?;
        let fallback = folder.truncating_tokenizer(max_tokens, TruncationStrategy::LongestFirst)?;

        let vb = folder.weights(device)?;
        let encoder_vb = if vb.contains_tensor(PREFIXED_PROBE) {
            vb.pp(ENCODER_PREFIX)
        } else {
            vb.clone()
        };
        if !vb.contains_tensor(&format!("{CLASSIFIER}.weight")) {
            return Err(unsupported(
                &folder.weights_path,
                format!(
                    "no classification head (`{CLASSIFIER}.weight`): this looks like a plain \
                     BERT encoder, not a cross-encoder (BertForSequenceClassification)"
                ),
            ));
        }
        if !encoder_vb.contains_tensor(&format!("{POOLER}.weight")) {
            return Err(unsupported(
                &folder.weights_path,
                format!(
                    "no pooler (`{ENCODER_PREFIX}.{POOLER}.weight` or `{POOLER}.weight`), which \
                     the classification head reads"
                ),
            ));
        }
        let hidden = folder.config.hidden_size;
        let load = |encoder_vb: VarBuilder, vb: VarBuilder| {
            let model = BertModel::load(encoder_vb.clone(), &folder.config)?;
            let pooler = linear(hidden, hidden, encoder_vb.pp(POOLER))?;
            let classifier = linear(hidden, num_labels, vb.pp(CLASSIFIER))?;
            Ok::<_, candle_core::Error>((model, pooler, classifier))
        };
        let (model, pooler, classifier) =
            load(encoder_vb, vb).map_err(|source| folder.weights_error(source))?;

        let model_id = folder.model_id(max_tokens, "cross-encoder");
        tracing::info!(%model_id, num_labels, max_tokens, "loaded BERT cross-encoder");
        Ok(CrossEncoder {
            model,
            pooler,
            classifier,
            tokenizer,
            fallback,
            device: device.clone(),
            max_tokens,
            num_labels,
            pad_id: folder.pad_id(),
            batch_size: DEFAULT_BATCH_SIZE,
            model_id,
        })
    }

    /// Sets how many pairs go through one forward pass (at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Longest pair in word pieces, special tokens included.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Logits per pair: 1 or 2.
    pub fn num_labels(&self) -> usize {
        self.num_labels
    }

    /// `<folder name>@<8 hex digits>`, the digits hashing `config.json`, `tokenizer.json`
    /// and `max_tokens`: anything that changes the scores changes the id.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Scores each passage against `query`, in the order of `passages`; higher is more
    /// relevant (see the module documentation for what a score means).
    pub fn score_pairs(&self, query: &str, passages: &[&str]) -> Result<Vec<f32>> {
        let pairs: Vec<(&str, &str)> = passages.iter().map(|&p| (query, p)).collect();
        self.logits(&pairs)?
            .iter()
            .map(|logits| match logits.as_slice() {
                [score] => Ok(*score),
                [irrelevant, relevant] => Ok(relevant - irrelevant),
                other => Err(InferError::Candle(candle_core::Error::Msg(format!(
                    "the classifier gave {} logits for a pair, expected {}",
                    other.len(),
                    self.num_labels
                )))),
            })
            .collect()
    }

    /// The classifier's raw logits (`num_labels` of them) for each `(query, passage)` pair, in
    /// input order. Pairs are sorted by length and run `batch_size` at a time, each batch
    /// padded to its own longest pair.
    pub fn logits(&self, pairs: &[(&str, &str)]) -> Result<Vec<Vec<f32>>> {
        let encodings = pairs
            .iter()
            .map(|&(query, passage)| self.encode(query, passage))
            .collect::<Result<Vec<_>>>()?;

        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encodings[i].len()));

        let mut out: Vec<Vec<f32>> = vec![Vec::new(); pairs.len()];
        for chunk in order.chunks(self.batch_size) {
            let batch: Vec<&Encoding> = chunk.iter().map(|&i| &encodings[i]).collect();
            for (&i, logits) in chunk.iter().zip(self.forward(&batch)?) {
                out[i] = logits;
            }
        }
        Ok(out)
    }

    /// The pair encoding, passage truncated first; longest first when the query alone is
    /// longer than `max_tokens` allows.
    fn encode(&self, query: &str, passage: &str) -> Result<Encoding> {
        match self.tokenizer.encode((query, passage), true) {
            Ok(encoding) => Ok(encoding),
            Err(err)
                if matches!(
                    err.downcast_ref::<TruncationError>(),
                    Some(TruncationError::SequenceTooShort)
                ) =>
            {
                self.fallback
                    .encode((query, passage), true)
                    .map_err(|e| InferError::Encode(e.to_string()))
            }
            Err(err) => Err(InferError::Encode(err.to_string())),
        }
    }

    /// One forward pass over `batch`, padded to its longest encoding: logits per row.
    fn forward(&self, batch: &[&Encoding]) -> Result<Vec<Vec<f32>>> {
        let rows = batch.len();
        let width = batch.iter().map(|e| e.len()).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(rows * width);
        let mut types = Vec::with_capacity(rows * width);
        let mut mask = Vec::with_capacity(rows * width);
        for encoding in batch {
            let pad = width - encoding.len();
            ids.extend_from_slice(encoding.get_ids());
            ids.extend(std::iter::repeat_n(self.pad_id, pad));
            types.extend_from_slice(encoding.get_type_ids());
            types.extend(std::iter::repeat_n(0u32, pad));
            mask.extend(std::iter::repeat_n(1u32, encoding.len()));
            mask.extend(std::iter::repeat_n(0u32, pad));
        }
        let ids = Tensor::from_vec(ids, (rows, width), &self.device)?;
        let types = Tensor::from_vec(types, (rows, width), &self.device)?;
        let mask = Tensor::from_vec(mask, (rows, width), &self.device)?;

        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
        let cls = hidden.narrow(1, 0, 1)?.squeeze(1)?;
        let pooled = self.pooler.forward(&cls)?.tanh()?;
        let logits = self.classifier.forward(&pooled)?;
        Ok(logits.to_dtype(DType::F32)?.to_vec2::<f32>()?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::fs;
    use std::path::PathBuf;

    use super::*;

    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny-cross");

    /// A fresh folder with the fixture's config and tokenizer, and its weights renamed or
    /// dropped by `edit`.
    fn fixture_variant(
        name: &str,
        edit: impl Fn(HashMap<String, Tensor>) -> HashMap<String, Tensor>,
    ) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("cairn-infer-cross-{name}-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let src = Path::new(FIXTURE);
        for file in ["config.json", "tokenizer.json"] {
            fs::copy(src.join(file), dir.join(file)).expect("copy fixture file");
        }
        let tensors = candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu)
            .expect("fixture weights load");
        candle_core::safetensors::save(&edit(tensors), dir.join("model.safetensors"))
            .expect("write weights");
        dir
    }

    const PAIRS: [(&str, &str); 3] = [
        ("what is a cairn", "A pile of stones raised as a landmark."),
        ("年假政策", "员工每年有十五天年假。"),
        ("invoice", "Paid."),
    ];

    #[test]
    fn unprefixed_weights_give_the_same_logits() {
        let prefixed = CrossEncoder::load(Path::new(FIXTURE), &Device::Cpu, 32)
            .expect("fixture loads")
            .logits(&PAIRS)
            .expect("prefixed logits");
        let dir = fixture_variant("unprefixed", |tensors| {
            tensors
                .into_iter()
                .map(|(name, t)| match name.strip_prefix("bert.") {
                    Some(rest) => (rest.to_string(), t),
                    None => (name, t),
                })
                .collect()
        });
        let encoder = CrossEncoder::load(&dir, &Device::Cpu, 32);
        let _ = fs::remove_dir_all(&dir);
        let unprefixed = encoder
            .expect("unprefixed layout loads")
            .logits(&PAIRS)
            .expect("unprefixed logits");
        assert_eq!(prefixed, unprefixed);
    }

    #[test]
    fn a_plain_bert_encoder_is_refused_with_a_clear_error() {
        let dir = fixture_variant("no-head", |tensors| {
            tensors
                .into_iter()
                .filter(|(name, _)| !name.starts_with("classifier."))
                .collect()
        });
        let err = CrossEncoder::load(&dir, &Device::Cpu, 32).expect_err("there is no head");
        let _ = fs::remove_dir_all(&dir);
        assert!(
            matches!(&err, InferError::Unsupported { path, .. } if path.ends_with("model.safetensors")),
            "{err}"
        );
        let message = err.to_string();
        assert!(message.contains("classifier.weight"), "{message}");
        assert!(message.contains("not a cross-encoder"), "{message}");
        assert_eq!(err.kind(), cairn_core::ErrorKind::User);
    }

    #[test]
    fn a_head_without_pooler_is_refused() {
        let dir = fixture_variant("no-pooler", |tensors| {
            tensors
                .into_iter()
                .filter(|(name, _)| !name.contains(".pooler."))
                .collect()
        });
        let err = CrossEncoder::load(&dir, &Device::Cpu, 32).expect_err("there is no pooler");
        let _ = fs::remove_dir_all(&dir);
        assert!(err.to_string().contains("no pooler"), "{err}");
    }

    #[test]
    fn configs_the_cross_encoder_cannot_score_are_refused() {
        let dir = fixture_variant("config", |tensors| tensors);
        let original = fs::read_to_string(dir.join("config.json")).expect("config");
        let mut config: serde_json::Value = serde_json::from_str(&original).expect("json");

        config["id2label"] = serde_json::json!({"0": "a", "1": "b", "2": "c"});
        fs::write(dir.join("config.json"), config.to_string()).expect("write config");
        let three = CrossEncoder::load(&dir, &Device::Cpu, 32).expect_err("three labels");

        config["id2label"] = serde_json::json!({"0": "LABEL_0"});
        config["model_type"] = serde_json::json!("xlm-roberta");
        fs::write(dir.join("config.json"), config.to_string()).expect("write config");
        let roberta = CrossEncoder::load(&dir, &Device::Cpu, 32).expect_err("not BERT");

        fs::write(dir.join("config.json"), &original).expect("write config");
        let too_short = CrossEncoder::load(&dir, &Device::Cpu, 4).expect_err("max_tokens 4");
        let loaded = CrossEncoder::load(&dir, &Device::Cpu, 5);
        let _ = fs::remove_dir_all(&dir);

        assert!(
            matches!(&three, InferError::Unsupported { .. })
                && three.to_string().contains("3 labels"),
            "{three}"
        );
        assert!(roberta.to_string().contains("xlm-roberta"), "{roberta}");
        assert!(
            matches!(&too_short, InferError::InvalidSetting(_)),
            "{too_short}"
        );
        let loaded = loaded.expect("max_tokens 5 leaves one piece each");
        let logits = loaded.logits(&PAIRS).expect("tiny pairs still score");
        assert!(logits.iter().all(|l| l.len() == 1 && l[0].is_finite()));
    }

    #[test]
    fn missing_folder_names_the_path() {
        let dir = Path::new("/definitely/not/here/tiny-cross");
        let err = CrossEncoder::load(dir, &Device::Cpu, 32).expect_err("no folder");
        assert!(
            matches!(&err, InferError::ModelMissing { path } if path == dir),
            "{err}"
        );
        assert!(err.to_string().contains("/definitely/not/here/tiny-cross"));
    }

    #[test]
    fn two_labels_are_the_default_when_the_config_names_none() {
        assert_eq!(HeadConfig::default().num_labels(), 2);
        let one: HeadConfig =
            serde_json::from_str(r#"{"id2label":{"0":"LABEL_0"}}"#).expect("json");
        assert_eq!(one.num_labels(), 1);
        let n: HeadConfig = serde_json::from_str(r#"{"num_labels":1}"#).expect("json");
        assert_eq!(n.num_labels(), 1);
    }
}
