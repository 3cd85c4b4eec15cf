//! Turning a file's bytes into text: the encoding step every text-like parser shares.
//!
//! Recognised: UTF-8 (with or without a byte-order mark) and UTF-16 LE/BE with a BOM.
//! Anything else (invalid UTF-8, a NUL character, an odd-length UTF-16 body, an unpaired
//! surrogate) is refused. Legacy encodings (GB18030, Latin-1) are a later addition: they
//! slot in as further [`Encoding`] variants tried in [`decode`] after UTF-8 fails.
//!
//! The decoded text has its line endings normalised to `\n` (CRLF and lone CR), because
//! it becomes the coordinate system of chunk spans and should not depend on the platform
//! the file was written on.

/// An encoding that [`decode`] recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotText;

/// Decodes `bytes` into text with `\n` line endings, naming the encoding it found.
pub fn decode(bytes: &[u8]) -> Result<(String, Encoding), NotText> {
    let (text, encoding) = if let Some(body) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        (utf8(body)?, Encoding::Utf8)
    } else if let Some(body) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        (utf16(body, u16::from_le_bytes)?, Encoding::Utf16Le)
    } else if let Some(body) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        (utf16(body, u16::from_be_bytes)?, Encoding::Utf16Be)
    } else {
        // Seam: legacy encodings (GB18030, Latin-1) are tried here when UTF-8 fails.
        (utf8(bytes)?, Encoding::Utf8)
    };
    if text.contains('\0') {
        return Err(NotText);
    }
    Ok((normalise_newlines(text), encoding))
}

fn utf8(bytes: &[u8]) -> Result<String, NotText> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| NotText)
}

fn utf16(body: &[u8], unit: fn([u8; 2]) -> u16) -> Result<String, NotText> {
    if !body.len().is_multiple_of(2) {
        return Err(NotText);
    }
    let units = body.chunks_exact(2).map(|p| unit([p[0], p[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|_| NotText)
}

/// CRLF and lone CR become LF; text without `\r` is returned as is.
fn normalise_newlines(text: String) -> String {
    if !text.contains('\r') {
        return text;
    }
    text.replace("\r\n", "\n").replace('\r', "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le_with_bom(s: &str) -> Vec<u8> {
        let mut v = vec![0xFF, 0xFE];
        v.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
        v
    }

    #[test]
    fn utf8_with_and_without_bom() {
        assert_eq!(
            decode("héllo".as_bytes()),
            Ok(("héllo".to_string(), Encoding::Utf8))
        );
        let mut b = vec![0xEF, 0xBB, 0xBF];
        b.extend_from_slice("数据".as_bytes());
        assert_eq!(decode(&b), Ok(("数据".to_string(), Encoding::Utf8)));
    }

    #[test]
    fn utf16_both_byte_orders() {
        let le = utf16le_with_bom("Grüße, 世界\r\nline two");
        assert_eq!(
            decode(&le),
            Ok(("Grüße, 世界\nline two".to_string(), Encoding::Utf16Le))
        );
        let mut be = vec![0xFE, 0xFF];
        be.extend("Ab😀".encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(decode(&be), Ok(("Ab😀".to_string(), Encoding::Utf16Be)));
    }

    #[test]
    fn refuses_binary_and_broken_input() {
        assert_eq!(decode(b"abc\0def"), Err(NotText));
        assert_eq!(decode(&[0x66, 0x6F, 0xFF, 0x6F]), Err(NotText));
        // odd-length UTF-16 body, and an unpaired surrogate
        assert_eq!(decode(&[0xFF, 0xFE, 0x41, 0x00, 0x42]), Err(NotText));
        assert_eq!(decode(&[0xFF, 0xFE, 0x00, 0xD8, 0x41, 0x00]), Err(NotText));
        // UTF-16 that decodes to a NUL
        assert_eq!(decode(&[0xFF, 0xFE, 0x00, 0x00]), Err(NotText));
    }

    #[test]
    fn newlines_are_normalised() {
        assert_eq!(
            decode(b"a\r\nb\rc\n").map(|d| d.0),
            Ok("a\nb\nc\n".to_string())
        );
    }
}
