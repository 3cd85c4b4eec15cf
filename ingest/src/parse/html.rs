//! HTML parsing (not implemented yet: refused with a clear error).

use super::Parsed;
use crate::error::IngestError;

pub(crate) fn parse(_bytes: &[u8], file: &str, _stem: &str) -> Result<Parsed, IngestError> {
    Err(IngestError::Unsupported {
        file: file.to_string(),
        format: "HTML".to_string(),
    })
}
