//! A GGUF file: where it is, its metadata, and typed reads of the keys a decoder LM needs.
//!
//! GGUF keeps the whole model in one file: the hyper-parameters under `<architecture>.*`
//! keys, the tokenizer under `tokenizer.ggml.*`, the chat template under
//! `tokenizer.chat_template`, then the (usually quantized) tensors. [`GgufFile::open`] reads
//! the header and metadata only; tensors are read when a model is loaded.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use candle_core::Device;
use candle_core::quantized::QTensor;
use candle_core::quantized::gguf_file::{Content, Value};

use crate::error::{LlmError, Result};

/// An opened GGUF file: its path and its parsed header (metadata and tensor directory).
#[derive(Debug)]
pub struct GgufFile {
    path: PathBuf,
    content: Content,
}

impl GgufFile {
    /// Opens `path`: a `.gguf` file, or a model folder holding exactly one `.gguf` file.
    ///
    /// Reads the metadata and the tensor directory, not the tensors. A missing file is an
    /// [`LlmError::GgufMissing`] telling to run `scripts/install-models`.
    pub fn open(path: &Path) -> Result<Self> {
        let path = resolve(path)?;
        let file = File::open(&path).map_err(|source| LlmError::Io {
            path: path.clone(),
            source,
        })?;
        let mut reader = BufReader::new(file);
        let content = Content::read(&mut reader).map_err(|source| LlmError::Weights {
            path: path.clone(),
            source,
        })?;
        Ok(Self { path, content })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `general.architecture`, e.g. `llama` or `qwen2`.
    pub fn architecture(&self) -> Result<&str> {
        self.string("general.architecture")
    }

    /// Whether the metadata has `key`.
    pub fn has(&self, key: &str) -> bool {
        self.content.metadata.contains_key(key)
    }

    /// Whether the file holds a tensor named `name`.
    pub fn has_tensor(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    /// The shape of tensor `name` as GGUF stores it (candle order: rows first).
    pub fn tensor_dims(&self, name: &str) -> Result<&[usize]> {
        self.content
            .tensor_infos
            .get(name)
            .map(|info| info.shape.dims())
            .ok_or_else(|| self.error(format!("tensor {name} is missing")))
    }

    /// Reads tensor `name` onto `device`. A missing or truncated tensor is an
    /// [`LlmError::Weights`] error naming the file.
    pub fn tensor(&self, reader: &mut GgufReader, name: &str, device: &Device) -> Result<QTensor> {
        if !self.has_tensor(name) {
            return Err(self.error(format!("tensor {name} is missing")));
        }
        self.content
            .tensor(&mut reader.0, name, device)
            .map_err(|source| LlmError::Weights {
                path: self.path.clone(),
                source,
            })
    }

    /// Opens the file again for reading tensors.
    pub fn reader(&self) -> Result<GgufReader> {
        let file = File::open(&self.path).map_err(|source| LlmError::Io {
            path: self.path.clone(),
            source,
        })?;
        Ok(GgufReader(BufReader::new(file)))
    }

    pub(crate) fn value(&self, key: &str) -> Result<&Value> {
        self.content
            .metadata
            .get(key)
            .ok_or_else(|| self.error(format!("metadata key {key} is missing")))
    }

    /// A string value.
    pub fn string(&self, key: &str) -> Result<&str> {
        match self.value(key)? {
            Value::String(s) => Ok(s),
            other => Err(self.wrong_type(key, "a string", other)),
        }
    }

    /// An unsigned integer value of any width (negative values are refused).
    pub fn usize(&self, key: &str) -> Result<usize> {
        let value = self.value(key)?;
        as_usize(value).ok_or_else(|| self.wrong_type(key, "a non-negative integer", value))
    }

    /// A floating-point value (f32 or f64).
    pub fn f64(&self, key: &str) -> Result<f64> {
        match self.value(key)? {
            Value::F32(v) => Ok(f64::from(*v)),
            Value::F64(v) => Ok(*v),
            other => Err(self.wrong_type(key, "a float", other)),
        }
    }

    /// A boolean value.
    pub fn bool(&self, key: &str) -> Result<bool> {
        match self.value(key)? {
            Value::Bool(v) => Ok(*v),
            other => Err(self.wrong_type(key, "a bool", other)),
        }
    }

    /// An array of strings.
    pub fn strings(&self, key: &str) -> Result<Vec<&str>> {
        let Value::Array(items) = self.value(key)? else {
            return Err(self.error(format!("metadata key {key} is not an array")));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.as_str()),
                other => Err(self.wrong_type(&format!("{key}[{i}]"), "a string", other)),
            })
            .collect()
    }

    /// An array of integers.
    pub fn integers(&self, key: &str) -> Result<Vec<i64>> {
        let Value::Array(items) = self.value(key)? else {
            return Err(self.error(format!("metadata key {key} is not an array")));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                as_i64(item)
                    .ok_or_else(|| self.wrong_type(&format!("{key}[{i}]"), "an integer", item))
            })
            .collect()
    }

    /// An [`LlmError::Gguf`] about this file.
    pub(crate) fn error(&self, message: String) -> LlmError {
        LlmError::Gguf {
            path: self.path.clone(),
            message,
        }
    }

    /// An [`LlmError::Unsupported`] about this file.
    pub(crate) fn unsupported(&self, message: String) -> LlmError {
        LlmError::Unsupported {
            path: self.path.clone(),
            message,
        }
    }

    fn wrong_type(&self, key: &str, want: &str, got: &Value) -> LlmError {
        self.error(format!(
            "metadata key {key} should be {want}, found {:?}",
            got.value_type()
        ))
    }
}

/// A reader over a GGUF file's bytes, for [`GgufFile::tensor`].
pub struct GgufReader(BufReader<File>);

fn as_usize(value: &Value) -> Option<usize> {
    as_i64(value)
        .and_then(|v| usize::try_from(v).ok())
        .or_else(|| match value {
            Value::U64(v) => usize::try_from(*v).ok(),
            _ => None,
        })
}

fn as_i64(value: &Value) -> Option<i64> {
    match value {
        Value::U8(v) => Some(i64::from(*v)),
        Value::I8(v) => Some(i64::from(*v)),
        Value::U16(v) => Some(i64::from(*v)),
        Value::I16(v) => Some(i64::from(*v)),
        Value::U32(v) => Some(i64::from(*v)),
        Value::I32(v) => Some(i64::from(*v)),
        Value::U64(v) => i64::try_from(*v).ok(),
        Value::I64(v) => Some(*v),
        _ => None,
    }
}

/// The `.gguf` file `path` names: itself, or the only `.gguf` file in the folder it names.
fn resolve(path: &Path) -> Result<PathBuf> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    if !path.is_dir() {
        return Err(LlmError::GgufMissing {
            path: path.to_path_buf(),
        });
    }
    let entries = std::fs::read_dir(path).map_err(|source| LlmError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| LlmError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let p = entry.path();
        if p.is_file()
            && p.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
        {
            found.push(p);
        }
    }
    match found.len() {
        0 => Err(LlmError::GgufMissing {
            path: path.join("*.gguf"),
        }),
        1 => Ok(found.remove(0)),
        n => Err(LlmError::Gguf {
            path: path.to_path_buf(),
            message: format!("the folder holds {n} .gguf files; name the one to load"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_path_says_what_to_run() {
        let err = GgufFile::open(Path::new("/definitely/not/here/model.gguf"))
            .expect_err("the file does not exist");
        let msg = err.to_string();
        assert!(matches!(err, LlmError::GgufMissing { .. }), "{msg}");
        assert!(msg.contains("scripts/install-models"), "{msg}");
        assert!(msg.contains("/definitely/not/here/model.gguf"), "{msg}");
    }

    #[test]
    fn a_folder_without_gguf_is_missing_and_one_with_two_is_ambiguous() {
        let dir = std::env::temp_dir().join(format!("cairn-gguf-resolve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let err = resolve(&dir).expect_err("no gguf file yet");
        assert!(matches!(err, LlmError::GgufMissing { .. }), "{err}");
        std::fs::write(dir.join("a.gguf"), b"").expect("write");
        assert_eq!(resolve(&dir).expect("one file"), dir.join("a.gguf"));
        std::fs::write(dir.join("b.GGUF"), b"").expect("write");
        let err = resolve(&dir).expect_err("two files");
        assert!(err.to_string().contains("2 .gguf files"), "{err}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn integers_of_any_width_read_as_usize() {
        assert_eq!(as_usize(&Value::U32(7)), Some(7));
        assert_eq!(as_usize(&Value::U64(8)), Some(8));
        assert_eq!(as_usize(&Value::I32(9)), Some(9));
        assert_eq!(as_usize(&Value::I32(-1)), None);
        assert_eq!(as_usize(&Value::F32(1.0)), None);
    }
}
