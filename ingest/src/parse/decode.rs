//! Turning a file's bytes into text: the encoding step every text-like parser shares.
//!
//! The order of trust, first match wins:
//! 1. a byte-order mark (UTF-8, UTF-16 LE/BE);
//! 2. bytes with NULs can only be UTF-16 without a BOM (recognised by NULs in every
//!    other position), else they are binary;
//! 3. valid UTF-8 (plain ASCII included);
//! 4. a charset the document declares itself (HTML `<meta charset>`), through
//!    [`decode_declared`], when the bytes decode cleanly in it;
//! 5. detection of legacy encodings with `chardetng` (GB18030/GBK, Big5, Shift_JIS,
//!    EUC-KR, Windows-1252/Latin-1 and the other Windows/ISO single-byte code pages),
//!    decoded with `encoding_rs`.
//!
//! Binary data is refused: NUL bytes (outside UTF-16), bytes that are malformed in the
//! guessed encoding, or a decoded text with too many control characters. A wrong guess
//! is never papered over with replacement characters.
//!
//! The decoded text has its line endings normalised to `\n` (CRLF and lone CR), because
//! it becomes the coordinate system of chunk spans and should not depend on the platform
//! the file was written on.

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};

/// An encoding that [`decode`] recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
    /// A legacy encoding, declared by the document or detected (GB18030 for GBK/GB2312
    /// text, windows-1252 for Latin-1, ...).
    Legacy(&'static encoding_rs::Encoding),
}

impl Encoding {
    /// The WHATWG name of the encoding, e.g. `UTF-8`, `gb18030`, `windows-1252`.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Utf16Le => "UTF-16LE",
            Encoding::Utf16Be => "UTF-16BE",
            Encoding::Legacy(e) => e.name(),
        }
    }
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotText;

/// Largest share of control characters (other than tab, newline, carriage return and
/// form feed) a legacy-decoded text may have before it is taken for binary data.
const MAX_CONTROL_SHARE: f64 = 0.01;

/// Decodes `bytes` into text with `\n` line endings, naming the encoding it found.
pub fn decode(bytes: &[u8]) -> Result<(String, Encoding), NotText> {
    decode_declared(bytes, None)
}

/// Like [`decode`], but trusts `declared` (a charset the document names for itself)
/// before detection, as long as the bytes decode cleanly in it. A wrong declaration
/// falls back to detection; valid UTF-8 always wins over a declared legacy encoding.
pub fn decode_declared(
    bytes: &[u8],
    declared: Option<&'static encoding_rs::Encoding>,
) -> Result<(String, Encoding), NotText> {
    let (text, encoding) = if let Some(body) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        (utf8(body)?, Encoding::Utf8)
    } else if let Some(body) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        (utf16(body, u16::from_le_bytes)?, Encoding::Utf16Le)
    } else if let Some(body) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        (utf16(body, u16::from_be_bytes)?, Encoding::Utf16Be)
    } else if bytes.contains(&0) {
        // NUL is not text in UTF-8 or any legacy encoding; only BOM-less UTF-16 has it.
        utf16_without_bom(bytes).ok_or(NotText)?
    } else if let Ok(text) = utf8(bytes) {
        (text, Encoding::Utf8)
    } else if let Some(found) = declared.and_then(|e| legacy(bytes, e)) {
        found
    } else {
        detect(bytes)?
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

/// UTF-16 without a BOM: most code units of Latin text have a zero high byte, so one
/// byte position (even or odd) is mostly NUL and the other almost never is. Only taken
/// when the result decodes cleanly and reads as text.
fn utf16_without_bom(bytes: &[u8]) -> Option<(String, Encoding)> {
    if bytes.len() < 4 || !bytes.len().is_multiple_of(2) {
        return None;
    }
    let pairs = bytes.len() / 2;
    let zero_even = bytes.iter().step_by(2).filter(|b| **b == 0).count();
    let zero_odd = bytes.iter().skip(1).step_by(2).filter(|b| **b == 0).count();
    let (body_fn, encoding): (fn([u8; 2]) -> u16, _) =
        if zero_odd * 10 >= pairs * 7 && zero_even * 100 <= pairs {
            (u16::from_le_bytes, Encoding::Utf16Le)
        } else if zero_even * 10 >= pairs * 7 && zero_odd * 100 <= pairs {
            (u16::from_be_bytes, Encoding::Utf16Be)
        } else {
            return None;
        };
    let text = utf16(bytes, body_fn).ok()?;
    looks_like_text(&text).then_some((text, encoding))
}

/// Guesses a legacy encoding with `chardetng` and decodes in it.
fn detect(bytes: &[u8]) -> Result<(String, Encoding), NotText> {
    let mut detector = EncodingDetector::new(Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    let guess = detector.guess(None, Utf8Detection::Deny);
    legacy(bytes, guess).ok_or(NotText)
}

/// Decodes `bytes` in `encoding` without replacement characters; `None` when they are
/// malformed in it or the result does not read as text. GBK is read as GB18030, its
/// superset; a UTF-16 or UTF-8 label here means the label was wrong (the bytes were
/// already found not to be either).
fn legacy(bytes: &[u8], encoding: &'static encoding_rs::Encoding) -> Option<(String, Encoding)> {
    if encoding == encoding_rs::UTF_8
        || encoding == encoding_rs::UTF_16LE
        || encoding == encoding_rs::UTF_16BE
        || encoding == encoding_rs::REPLACEMENT
    {
        return None;
    }
    let encoding = if encoding == encoding_rs::GBK {
        encoding_rs::GB18030
    } else {
        encoding
    };
    let text = encoding
        .decode_without_bom_handling_and_without_replacement(bytes)?
        .into_owned();
    looks_like_text(&text).then_some((text, Encoding::Legacy(encoding)))
}

/// No NUL, and at most [`MAX_CONTROL_SHARE`] control characters besides whitespace.
fn looks_like_text(text: &str) -> bool {
    let mut chars = 0usize;
    let mut controls = 0usize;
    for c in text.chars() {
        chars += 1;
        if c == '\0' {
            return false;
        }
        if c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c') {
            controls += 1;
        }
    }
    (controls as f64) <= (chars as f64) * MAX_CONTROL_SHARE
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
    fn utf16_without_bom_is_recognised() {
        let text = "Plain English text, written by a Windows tool.\r\nSecond line.";
        let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        let want = text.replace("\r\n", "\n");
        assert_eq!(decode(&le), Ok((want.clone(), Encoding::Utf16Le)));
        assert_eq!(decode(&be), Ok((want, Encoding::Utf16Be)));
    }

    #[test]
    fn gb18030_chinese_is_detected() {
        let text = "检索增强生成系统把文档切成段落，然后为每个段落计算向量。\n\
                    用户提问时，系统先找到最相关的段落，再生成带引用的回答。";
        let (bytes, _, unmappable) = encoding_rs::GB18030.encode(text);
        assert!(!unmappable);
        assert!(std::str::from_utf8(&bytes).is_err());
        let (decoded, encoding) = decode(&bytes).unwrap();
        assert_eq!(decoded, text);
        assert_eq!(encoding, Encoding::Legacy(encoding_rs::GB18030));
        assert_eq!(encoding.name(), "gb18030");
    }

    #[test]
    fn latin1_is_detected() {
        // "café crème" in Latin-1 / windows-1252: é = E9, è = E8
        let bytes = b"Un caf\xe9 cr\xe8me, s'il vous pla\xeet.\r\n";
        let (decoded, encoding) = decode(bytes).unwrap();
        assert_eq!(decoded, "Un café crème, s'il vous plaît.\n");
        assert_eq!(encoding, Encoding::Legacy(encoding_rs::WINDOWS_1252));
    }

    #[test]
    fn a_declared_charset_is_used_and_a_wrong_one_ignored() {
        let (gbk, _, _) = encoding_rs::GBK.encode("中文网页");
        let (text, enc) = decode_declared(&gbk, Some(encoding_rs::GBK)).unwrap();
        assert_eq!((text.as_str(), enc.name()), ("中文网页", "gb18030"));
        // declared windows-1252 but the bytes are UTF-8: UTF-8 wins
        let (text, enc) =
            decode_declared("café".as_bytes(), Some(encoding_rs::WINDOWS_1252)).unwrap();
        assert_eq!((text.as_str(), enc), ("café", Encoding::Utf8));
        // declared Shift_JIS, bytes are Latin-1 that is malformed in Shift_JIS: detected
        let (text, _) =
            decode_declared(b"caf\xe9 cr\xe8me au lait", Some(encoding_rs::SHIFT_JIS)).unwrap();
        assert_eq!(text, "café crème au lait");
    }

    #[test]
    fn refuses_binary_and_broken_input() {
        assert_eq!(decode(b"abc\0def"), Err(NotText));
        assert_eq!(
            decode(&[0x66, 0x6F, 0x01, 0x02, 0xFF, 0x03, 0x6F]),
            Err(NotText)
        );
        // odd-length UTF-16 body, and an unpaired surrogate
        assert_eq!(decode(&[0xFF, 0xFE, 0x41, 0x00, 0x42]), Err(NotText));
        assert_eq!(decode(&[0xFF, 0xFE, 0x00, 0xD8, 0x41, 0x00]), Err(NotText));
        // UTF-16 that decodes to a NUL
        assert_eq!(decode(&[0xFF, 0xFE, 0x00, 0x00]), Err(NotText));
    }

    #[test]
    fn refuses_random_binary() {
        // xorshift: deterministic pseudo-random bytes, with and without NULs
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut random: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        assert_eq!(decode(&random), Err(NotText));
        for b in &mut random {
            if *b == 0 {
                *b = 1;
            }
        }
        assert_eq!(decode(&random), Err(NotText));
    }

    #[test]
    fn newlines_are_normalised() {
        assert_eq!(
            decode(b"a\r\nb\rc\n").map(|d| d.0),
            Ok("a\nb\nc\n".to_string())
        );
    }
}
