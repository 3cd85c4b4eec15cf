//! Word (DOCX) parsing: paragraphs, headings from paragraph styles, lists and tables
//! from `word/document.xml`, read with `zip` and `quick-xml`.
//!
//! A DOCX is a ZIP archive, so it is checked before anything is inflated: at most
//! [`MAX_ENTRIES`] entries, at most [`MAX_TOTAL_UNCOMPRESSED`] bytes declared
//! uncompressed in all, no large entry inflating more than [`MAX_RATIO`] times its
//! compressed size. Each part is then read through a `take()` of its declared size, so
//! an entry whose header lies about its size is refused as soon as it inflates past it.
//!
//! Structure: a paragraph whose style is a heading (`Heading1`..`Heading9`, `Title`,
//! or a localised style id whose name in `word/styles.xml` is "heading n" / "Title",
//! or an outline level) is a heading; `Title` sits above `Heading1` in the heading
//! path. Runs give their `w:t` text, `w:tab` a tab, `w:br`/`w:cr` a line break.
//! Consecutive list paragraphs (`w:numPr`, or a list style) form one list block of
//! `- item` lines (indented two spaces per level); a table is one block of rows, cells
//! joined by ` | ` (nested tables are flattened into their cell). Text boxes are read
//! once (the VML fallback copy is skipped). The title is `dc:title` from
//! `docProps/core.xml`, else the first Title paragraph, else the first level-1
//! heading, else the file stem.

use super::{BlockKind, Parsed, TextBuilder, clip_title, decode};
use crate::error::IngestError;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use std::collections::HashMap;
use std::io::{Cursor, Read};
use zip::ZipArchive;

/// Most entries a DOCX may have.
pub(crate) const MAX_ENTRIES: usize = 10_000;
/// Most bytes all entries may declare uncompressed, together.
pub(crate) const MAX_TOTAL_UNCOMPRESSED: u64 = 200 * 1024 * 1024;
/// Highest inflation ratio allowed for an entry larger than [`RATIO_FROM_BYTES`]
/// (XML compresses 5–20 times; deflate's maximum is about 1030).
pub(crate) const MAX_RATIO: u64 = 200;
/// Entries smaller than this are not ratio-checked (tiny parts compress oddly).
const RATIO_FROM_BYTES: u64 = 1024 * 1024;

pub(crate) fn parse(bytes: &[u8], file: &str, stem: &str) -> Result<Parsed, IngestError> {
    let not_docx = |reason: String| IngestError::NotDocx {
        file: file.to_string(),
        reason,
    };
    let mut archive = ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| not_docx(format!("not a ZIP archive: {e}")))?;
    check_limits(&archive).map_err(|reason| IngestError::ZipBomb {
        file: file.to_string(),
        reason,
    })?;
    let document = read_part(&mut archive, "word/document.xml", file)?
        .ok_or_else(|| not_docx("no word/document.xml in the archive".to_string()))?;
    let styles = match read_part(&mut archive, "word/styles.xml", file)? {
        Some(xml) => read_styles(&xml).map_err(not_docx)?,
        None => HashMap::new(),
    };
    let core_title = match read_part(&mut archive, "docProps/core.xml", file)? {
        // The title is a nicety: a broken core.xml does not fail the document.
        Some(xml) => core_title(&xml).ok().flatten(),
        None => None,
    };

    let body = read_body(&document, &styles).map_err(not_docx)?;
    if body.builder.is_empty() {
        return Err(IngestError::Empty {
            file: file.to_string(),
        });
    }
    let title = core_title
        .or(body.first_title)
        .or(body.first_h1)
        .map(|t| clip_title(&t))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| stem.to_string());
    let (text, blocks) = body.builder.finish();
    Ok(Parsed {
        text,
        title,
        mime: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        pages: 1,
        blocks,
    })
}

/// Refuses archives that would inflate past the limits, from the central directory
/// alone (nothing is inflated). The error is the reason.
fn check_limits(archive: &ZipArchive<Cursor<&[u8]>>) -> Result<(), String> {
    if archive.len() > MAX_ENTRIES {
        return Err(format!(
            "{} entries, the limit is {MAX_ENTRIES}",
            archive.len()
        ));
    }
    let mut total = 0u64;
    for index in 0..archive.len() {
        let entry = archive
            .by_index_data(index)
            .map_err(|e| format!("entry {index}: {e}"))?;
        let size = entry.size();
        total = total.saturating_add(size);
        if size > RATIO_FROM_BYTES && size / entry.compressed_size().max(1) > MAX_RATIO {
            let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
            return Err(format!(
                "{name} would inflate {size} bytes from {} (more than {MAX_RATIO} times)",
                entry.compressed_size()
            ));
        }
    }
    if total > MAX_TOTAL_UNCOMPRESSED {
        return Err(format!(
            "{total} bytes declared uncompressed, the limit is {} MB",
            MAX_TOTAL_UNCOMPRESSED / (1024 * 1024)
        ));
    }
    Ok(())
}

/// Inflates the part `name` as text, `None` when the archive has no such part. The
/// read stops one byte past the declared size: more than that is a lying header.
fn read_part(
    archive: &mut ZipArchive<Cursor<&[u8]>>,
    name: &str,
    file: &str,
) -> Result<Option<String>, IngestError> {
    let Some(index) = archive.index_for_name(name) else {
        return Ok(None);
    };
    let not_docx = |reason: String| IngestError::NotDocx {
        file: file.to_string(),
        reason,
    };
    let entry = archive
        .by_index(index)
        .map_err(|e| not_docx(format!("{name}: {e}")))?;
    let declared = entry.size();
    // check_limits bounds `declared`, so this allocation is bounded too.
    let mut data = Vec::with_capacity(usize::try_from(declared).unwrap_or(0).min(1 << 20));
    let read = entry
        .take(declared.saturating_add(1))
        .read_to_end(&mut data);
    // More than declared, whether the `take` saw it or the zip reader's own size check
    // (an error once the declared size is passed) did.
    let lying = data.len() as u64 > declared
        || read.as_ref().is_err_and(|e| {
            data.len() as u64 >= declared && e.to_string().contains("larger than its declared")
        });
    if !lying && let Err(e) = read {
        return Err(not_docx(format!("{name}: {e}")));
    }
    if lying {
        return Err(IngestError::ZipBomb {
            file: file.to_string(),
            reason: format!("{name} inflates past its declared size of {declared} bytes"),
        });
    }
    let text = match std::str::from_utf8(&data) {
        Ok(s) => s.trim_start_matches('\u{FEFF}').to_string(),
        Err(_) => decode::decode(&data)
            .map(|(s, _)| s)
            .map_err(|_| not_docx(format!("{name} is not text")))?,
    };
    Ok(Some(text))
}

/// What a paragraph style means for structure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct StyleInfo {
    /// Heading level: 0 for Title, 1–9 for headings.
    heading: Option<u8>,
    /// A list style (List Bullet, List Number, List Paragraph).
    list: bool,
}

/// What a style name or id says by itself: `Heading2`, `heading 2`, `Title`, `ListBullet`.
fn style_meaning(name: &str) -> StyleInfo {
    let norm: String = name
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .collect::<String>()
        .to_ascii_lowercase();
    let heading = if norm == "title" {
        Some(0)
    } else {
        norm.strip_prefix("heading")
            .and_then(|n| n.parse::<u8>().ok())
            .filter(|n| (1..=9).contains(n))
    };
    StyleInfo {
        heading,
        list: norm.starts_with("listbullet")
            || norm.starts_with("listnumber")
            || norm == "listparagraph",
    }
}

/// Style id → meaning, from `word/styles.xml`: by the style's name (so localised ids
/// such as `berschrift1` named "heading 1" resolve), else its outline level.
fn read_styles(xml: &str) -> Result<HashMap<String, StyleInfo>, String> {
    let mut styles = HashMap::new();
    let mut reader = Reader::from_str(xml);
    let mut current: Option<(String, StyleInfo)> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("word/styles.xml: {e}"))?;
        match event {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                "style" => {
                    if let Some((id, info)) = current.take() {
                        styles.insert(id, info);
                    }
                    if let Some(id) = attr(&e, "styleId") {
                        let info = style_meaning(&id);
                        current = Some((id, info));
                    }
                }
                "name" => {
                    if let (Some((_, info)), Some(name)) = (current.as_mut(), attr(&e, "val")) {
                        let by_name = style_meaning(&name);
                        info.heading = info.heading.or(by_name.heading);
                        info.list |= by_name.list;
                    }
                }
                "outlineLvl" => {
                    if let (Some((_, info)), Some(level)) = (current.as_mut(), attr(&e, "val")) {
                        info.heading = info.heading.or(outline_level(&level));
                    }
                }
                _ => {}
            },
            Event::End(e) if e.local_name().as_ref() == "style" => {
                if let Some((id, info)) = current.take() {
                    styles.insert(id, info);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(styles)
}

/// A `w:outlineLvl` value (0-based; 9 is body text) as a heading level.
fn outline_level(value: &str) -> Option<u8> {
    value
        .trim()
        .parse::<u8>()
        .ok()
        .filter(|l| *l < 9)
        .map(|l| l + 1)
}

/// `dc:title` from `docProps/core.xml`.
fn core_title(xml: &str) -> Result<Option<String>, quick_xml::Error> {
    let mut reader = Reader::from_str(xml);
    let mut inside = false;
    let mut title = String::new();
    loop {
        match reader.read_event()? {
            Event::Start(e) if e.local_name().as_ref() == "title" => inside = true,
            Event::End(e) if e.local_name().as_ref() == "title" => break,
            Event::Text(t) if inside => title.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if inside => push_ref(&mut title, &r),
            Event::Eof => break,
            _ => {}
        }
    }
    let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok((!title.is_empty()).then_some(title))
}

/// The value of the attribute with local name `name`, entities resolved.
fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .and_then(|a| {
            a.normalized_value(XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

/// Appends an entity or character reference (`&amp;`, `&#x4E2D;`).
fn push_ref(out: &mut String, r: &BytesRef<'_>) {
    if let Ok(Some(c)) = r.resolve_char_ref() {
        out.push(c);
        return;
    }
    let c = match &**r {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => return,
    };
    out.push(c);
}

/// One paragraph being read.
#[derive(Debug, Default)]
struct Para {
    text: String,
    style: Option<String>,
    /// `w:ilvl` of a numbered/bulleted paragraph (`Some(0)` without an explicit level).
    list_level: Option<u8>,
    outline: Option<u8>,
}

/// The document body as blocks, and the title candidates found on the way.
struct Body {
    builder: TextBuilder,
    first_title: Option<String>,
    first_h1: Option<String>,
}

/// Reads `word/document.xml` into blocks.
fn read_body(xml: &str, styles: &HashMap<String, StyleInfo>) -> Result<Body, String> {
    let mut body = Body {
        builder: TextBuilder::default(),
        first_title: None,
        first_h1: None,
    };
    let mut reader = Reader::from_str(xml);
    // Open paragraphs: more than one inside a text box.
    let mut paras: Vec<Para> = Vec::new();
    let mut in_ppr = 0usize;
    let mut in_numpr = false;
    let mut in_text = false;
    // Inside `mc:Fallback`: a second copy of content already read from `mc:Choice`.
    let mut fallback = 0usize;
    let mut table_depth = 0usize;
    let mut rows: Vec<String> = Vec::new();
    let mut cells: Vec<String> = Vec::new();
    let mut cell = String::new();
    let mut list: Vec<String> = Vec::new();

    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("word/document.xml: {e}"))?;
        match &event {
            Event::Start(e) if e.local_name().as_ref() == "Fallback" => {
                fallback += 1;
                continue;
            }
            Event::End(e) if e.local_name().as_ref() == "Fallback" => {
                fallback = fallback.saturating_sub(1);
                continue;
            }
            Event::Eof => break,
            _ if fallback > 0 => continue,
            _ => {}
        }
        match event {
            Event::Start(e) => match e.local_name().as_ref() {
                "p" => paras.push(Para::default()),
                "pPr" => in_ppr += 1,
                "numPr" if in_ppr > 0 => in_numpr = true,
                "t" if in_ppr == 0 => in_text = true,
                "tbl" => {
                    table_depth += 1;
                    if table_depth == 1 {
                        flush_list(&mut body.builder, &mut list);
                        rows.clear();
                    }
                }
                "tr" if table_depth == 1 => cells.clear(),
                "tc" if table_depth == 1 => cell.clear(),
                _ => para_property(&e, in_ppr, in_numpr, &mut paras),
            },
            Event::Empty(e) => match e.local_name().as_ref() {
                "tab" | "ptab" if in_ppr == 0 => push_char(&mut paras, '\t'),
                "br" | "cr" if in_ppr == 0 => push_char(&mut paras, '\n'),
                "noBreakHyphen" if in_ppr == 0 => push_char(&mut paras, '-'),
                "numPr" if in_ppr > 0 => {
                    if let Some(p) = paras.last_mut() {
                        p.list_level.get_or_insert(0);
                    }
                }
                _ => para_property(&e, in_ppr, in_numpr, &mut paras),
            },
            Event::Text(t) if in_text => {
                if let Some(p) = paras.last_mut() {
                    p.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) if in_text => {
                if let Some(p) = paras.last_mut() {
                    push_ref(&mut p.text, &r);
                }
            }
            Event::End(e) => match e.local_name().as_ref() {
                "t" => in_text = false,
                "pPr" => in_ppr = in_ppr.saturating_sub(1),
                "numPr" => in_numpr = false,
                "p" => {
                    let Some(para) = paras.pop() else { continue };
                    if let Some(outer) = paras.last_mut() {
                        // A text box inside a paragraph: its text joins the paragraph.
                        push_words(&mut outer.text, &para.text);
                    } else if table_depth > 0 {
                        push_words(&mut cell, &para.text);
                    } else {
                        add_paragraph(&mut body, &mut list, para, styles);
                    }
                }
                "tc" if table_depth == 1 => {
                    cells.push(cell.split_whitespace().collect::<Vec<_>>().join(" "));
                }
                "tr" if table_depth == 1 && cells.iter().any(|c| !c.is_empty()) => {
                    rows.push(cells.join(" | "));
                }
                "tbl" => {
                    table_depth = table_depth.saturating_sub(1);
                    if table_depth == 0 {
                        body.builder.push(BlockKind::Table, &rows.join("\n"));
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }
    flush_list(&mut body.builder, &mut list);
    Ok(body)
}

/// Paragraph properties that may come as start or empty tags.
fn para_property(e: &BytesStart<'_>, in_ppr: usize, in_numpr: bool, paras: &mut [Para]) {
    if in_ppr == 0 {
        return;
    }
    let Some(para) = paras.last_mut() else {
        return;
    };
    match e.local_name().as_ref() {
        "pStyle" => para.style = attr(e, "val"),
        "ilvl" if in_numpr => {
            let level = attr(e, "val").and_then(|v| v.trim().parse::<u8>().ok());
            para.list_level = Some(level.unwrap_or(0).min(8));
        }
        "numId" if in_numpr => {
            // numId 0 means "no numbering" (a style's list turned off).
            let id = attr(e, "val");
            if id.as_deref().map(str::trim) == Some("0") {
                para.list_level = None;
            } else {
                para.list_level.get_or_insert(0);
            }
        }
        "outlineLvl" => para.outline = attr(e, "val").and_then(|v| outline_level(&v)),
        _ => {}
    }
}

fn push_char(paras: &mut [Para], c: char) {
    if let Some(p) = paras.last_mut() {
        p.text.push(c);
    }
}

/// Appends `text` after a space (table cells and text boxes read as running text).
fn push_words(out: &mut String, text: &str) {
    let text = text.trim();
    if text.is_empty() {
        return;
    }
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(text);
}

/// Adds a finished top-level paragraph: a heading, a list item or a paragraph.
fn add_paragraph(
    body: &mut Body,
    list: &mut Vec<String>,
    para: Para,
    styles: &HashMap<String, StyleInfo>,
) {
    let text = para.text.trim();
    if text.is_empty() {
        // An empty paragraph is spacing: it neither adds text nor ends a list.
        return;
    }
    let style = para
        .style
        .as_deref()
        .map(|s| styles.get(s).copied().unwrap_or_else(|| style_meaning(s)))
        .unwrap_or_default();
    if let Some(level) = style.heading.or(para.outline) {
        flush_list(&mut body.builder, list);
        let heading = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if level == 0 && body.first_title.is_none() {
            body.first_title = Some(heading.clone());
        }
        if level == 1 && body.first_h1.is_none() {
            body.first_h1 = Some(heading.clone());
        }
        body.builder.heading(level, &heading);
    } else if para.list_level.is_some() || style.list {
        let depth = usize::from(para.list_level.unwrap_or(0));
        // An item's own line breaks stay inside the item.
        let item = text.lines().map(str::trim).collect::<Vec<_>>().join(" ");
        list.push(format!("{}- {item}", "  ".repeat(depth)));
    } else {
        flush_list(&mut body.builder, list);
        body.builder.push(BlockKind::Paragraph, text);
    }
}

/// Ends the list being collected, adding it as one block.
fn flush_list(builder: &mut TextBuilder, list: &mut Vec<String>) {
    if !list.is_empty() {
        builder.push(BlockKind::List, &list.join("\n"));
        list.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::test_blocks as blocks;
    use std::io::Write;
    use std::time::{Duration, Instant};
    use zip::write::SimpleFileOptions;

    const W: &str = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";

    /// A DOCX (ZIP) with the given parts, deflated.
    fn docx(parts: &[(&str, &str)]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, content) in parts {
            zip.start_file(*name, options).unwrap();
            zip.write_all(content.as_bytes()).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    fn document(body: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="{W}" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"><w:body>{body}<w:sectPr/></w:body></w:document>"#
        )
    }

    /// A paragraph with an optional style and one run.
    fn p(style: Option<&str>, text: &str) -> String {
        let ppr = style
            .map(|s| format!(r#"<w:pPr><w:pStyle w:val="{s}"/></w:pPr>"#))
            .unwrap_or_default();
        format!(r#"<w:p>{ppr}<w:r><w:t xml:space="preserve">{text}</w:t></w:r></w:p>"#)
    }

    fn item(level: u8, text: &str) -> String {
        format!(
            r#"<w:p><w:pPr><w:pStyle w:val="ListParagraph"/><w:numPr><w:ilvl w:val="{level}"/><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:t>{text}</w:t></w:r></w:p>"#
        )
    }

    const STYLES: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<w:styles xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">
<w:style w:type="paragraph" w:styleId="Normal"><w:name w:val="Normal"/></w:style>
<w:style w:type="paragraph" w:styleId="berschrift1"><w:name w:val="heading 1"/><w:pPr><w:outlineLvl w:val="0"/></w:pPr></w:style>
<w:style w:type="paragraph" w:styleId="berschrift2"><w:name w:val="heading 2"/></w:style>
<w:style w:type="paragraph" w:styleId="Kapitel"><w:name w:val="Kapitel"/><w:pPr><w:outlineLvl w:val="2"/></w:pPr></w:style>
</w:styles>"#;

    fn parse_ok(bytes: &[u8]) -> Parsed {
        parse(bytes, "report.docx", "report").unwrap()
    }

    #[test]
    fn headings_lists_and_tables() {
        let body = [
            p(Some("Title"), "Annual Report"),
            p(None, "Prepared by the finance team."),
            p(Some("Heading1"), "Results"),
            p(Some("Heading2"), "Revenue"),
            r#"<w:p><w:r><w:t>Revenue grew</w:t></w:r><w:r><w:tab/><w:t>12 %</w:t><w:br/><w:t>on &amp; on &#x4E2D;.</w:t></w:r></w:p>"#.to_string(),
            p(None, ""),
            item(0, "First point"),
            item(1, "A detail"),
            p(None, ""),
            item(0, "Second point"),
            p(None, "After the list."),
            r#"<w:tbl><w:tblPr/><w:tr><w:tc><w:p><w:r><w:t>Region</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>Sales</w:t></w:r></w:p></w:tc></w:tr>
               <w:tr><w:tc><w:p><w:r><w:t>North</w:t></w:r></w:p><w:p><w:r><w:t>and East</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>1 200</w:t></w:r></w:p></w:tc></w:tr>
               <w:tr><w:tc><w:p/></w:tc><w:tc><w:p/></w:tc></w:tr></w:tbl>"#.to_string(),
            p(Some("Heading1"), "Outlook"),
            p(None, "Steady."),
        ]
        .concat();
        let bytes = docx(&[
            ("[Content_Types].xml", "<Types/>"),
            ("word/document.xml", &document(&body)),
        ]);
        let parsed = parse_ok(&bytes);
        assert_eq!(parsed.title, "Annual Report");
        assert_eq!(parsed.pages, 1);
        use BlockKind::*;
        let ar = "Annual Report";
        assert_eq!(
            blocks(&parsed),
            vec![
                (Heading, ar, vec![ar]),
                (Paragraph, "Prepared by the finance team.", vec![ar]),
                (Heading, "Results", vec![ar, "Results"]),
                (Heading, "Revenue", vec![ar, "Results", "Revenue"]),
                (
                    Paragraph,
                    "Revenue grew\t12 %\non & on 中.",
                    vec![ar, "Results", "Revenue"]
                ),
                (
                    List,
                    "- First point\n  - A detail\n- Second point",
                    vec![ar, "Results", "Revenue"]
                ),
                (Paragraph, "After the list.", vec![ar, "Results", "Revenue"]),
                (
                    Table,
                    "Region | Sales\nNorth and East | 1 200",
                    vec![ar, "Results", "Revenue"]
                ),
                (Heading, "Outlook", vec![ar, "Outlook"]),
                (Paragraph, "Steady.", vec![ar, "Outlook"]),
            ]
        );
    }

    #[test]
    fn localised_style_ids_resolve_through_styles_xml() {
        let body = [
            p(Some("berschrift1"), "Einleitung"),
            p(Some("Normal"), "Text."),
            p(Some("berschrift2"), "Ziel"),
            p(Some("Kapitel"), "Kapitel drei"),
            p(None, "Mehr Text."),
        ]
        .concat();
        let core = r#"<?xml version="1.0"?><cp:coreProperties xmlns:cp="x" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Handbuch &amp; Mehr</dc:title></cp:coreProperties>"#;
        let bytes = docx(&[
            ("word/document.xml", &document(&body)),
            ("word/styles.xml", STYLES),
            ("docProps/core.xml", core),
        ]);
        let parsed = parse_ok(&bytes);
        assert_eq!(parsed.title, "Handbuch & Mehr");
        let b = blocks(&parsed);
        assert_eq!(b[0], (BlockKind::Heading, "Einleitung", vec!["Einleitung"]));
        assert_eq!(b[1].2, vec!["Einleitung"]);
        assert_eq!(
            b[2],
            (BlockKind::Heading, "Ziel", vec!["Einleitung", "Ziel"])
        );
        assert_eq!(
            b[4],
            (
                BlockKind::Paragraph,
                "Mehr Text.",
                vec!["Einleitung", "Ziel", "Kapitel drei"]
            )
        );
    }

    #[test]
    fn title_falls_back_to_first_heading_then_stem() {
        let bytes = docx(&[(
            "word/document.xml",
            &document(&[p(None, "Body first."), p(Some("Heading1"), "Main")].concat()),
        )]);
        assert_eq!(parse_ok(&bytes).title, "Main");
        let bytes = docx(&[("word/document.xml", &document(&p(None, "Only body.")))]);
        assert_eq!(parse_ok(&bytes).title, "report");
    }

    #[test]
    fn text_box_fallback_is_read_once() {
        let body = r#"<w:p><w:r><w:t>Before</w:t></w:r><w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><w:txbxContent><w:p><w:r><w:t>boxed</w:t></w:r></w:p></w:txbxContent></w:drawing></mc:Choice><mc:Fallback><w:pict><w:txbxContent><w:p><w:r><w:t>boxed</w:t></w:r></w:p></w:txbxContent></w:pict></mc:Fallback></mc:AlternateContent></w:r></w:p>"#;
        let bytes = docx(&[("word/document.xml", &document(body))]);
        assert_eq!(parse_ok(&bytes).text, "Before boxed");
    }

    #[test]
    fn not_a_docx_is_a_clear_error() {
        let e = parse(b"just some text", "a.docx", "a").unwrap_err();
        assert!(matches!(e, IngestError::NotDocx { .. }), "{e}");
        assert!(
            e.to_string().starts_with("a.docx: not a valid DOCX file"),
            "{e}"
        );
        let e = parse(&docx(&[("hello.txt", "hi")]), "a.docx", "a").unwrap_err();
        assert_eq!(
            e.to_string(),
            "a.docx: not a valid DOCX file (no word/document.xml in the archive)"
        );
        let e = parse(
            &docx(&[("word/document.xml", "<w:document><w:body></w:wrong>")]),
            "a.docx",
            "a",
        )
        .unwrap_err();
        assert!(matches!(e, IngestError::NotDocx { .. }), "{e}");
        let e = parse(
            &docx(&[("word/document.xml", &document(""))]),
            "a.docx",
            "a",
        )
        .unwrap_err();
        assert!(matches!(e, IngestError::Empty { .. }), "{e}");
    }

    #[test]
    fn truncated_files_fail_without_panicking() {
        let body = [p(Some("Heading1"), "H"), p(None, &"words ".repeat(200))].concat();
        let bytes = docx(&[
            ("word/document.xml", &document(&body)),
            ("word/styles.xml", STYLES),
        ]);
        assert!(parse(&bytes, "t.docx", "t").is_ok());
        for cut in (0..bytes.len() - 1).step_by(7) {
            let e = parse(&bytes[..cut], "t.docx", "t").unwrap_err();
            assert!(
                matches!(e, IngestError::NotDocx { .. } | IngestError::ZipBomb { .. }),
                "{cut}: {e}"
            );
        }
    }

    #[test]
    fn too_many_entries_are_refused() {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for i in 0..=MAX_ENTRIES {
            zip.start_file(format!("f{i}"), options).unwrap();
        }
        let bytes = zip.finish().unwrap().into_inner();
        let e = parse(&bytes, "many.docx", "many").unwrap_err();
        assert_eq!(
            e.to_string(),
            "many.docx: refused, the archive is too large when unpacked \
             (10001 entries, the limit is 10000)"
        );
    }

    #[test]
    fn a_300_mb_stream_of_zeros_is_refused_before_inflating() {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(9));
        zip.start_file("word/document.xml", options).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..300 {
            zip.write_all(&zeros).unwrap();
        }
        let bytes = zip.finish().unwrap().into_inner();
        assert!(bytes.len() < 1 << 20, "{}", bytes.len());
        let started = Instant::now();
        let e = parse(&bytes, "bomb.docx", "bomb").unwrap_err();
        assert!(matches!(e, IngestError::ZipBomb { .. }), "{e}");
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "{:?}",
            started.elapsed()
        );
    }

    /// Rewrites the uncompressed size of the only entry in a one-entry archive, in both
    /// the local header and the central directory.
    fn patch_size(bytes: &mut [u8], size: u32) {
        let find = |sig: &[u8]| bytes.windows(4).position(|w| w == sig).unwrap();
        let (local, central) = (find(b"PK\x03\x04"), find(b"PK\x01\x02"));
        bytes[local + 22..local + 26].copy_from_slice(&size.to_le_bytes());
        bytes[central + 24..central + 28].copy_from_slice(&size.to_le_bytes());
    }

    #[test]
    fn lying_and_huge_declared_sizes_are_refused() {
        let body = p(None, &"lorem ipsum ".repeat(50_000));
        let honest = docx(&[("word/document.xml", &document(&body))]);
        assert!(parse(&honest, "ok.docx", "ok").is_ok());

        // declares 1 000 bytes, inflates to 600 000: the read stops at 1 001
        let mut lying = honest.clone();
        patch_size(&mut lying, 1_000);
        let e = parse(&lying, "lie.docx", "lie").unwrap_err();
        assert!(matches!(e, IngestError::ZipBomb { .. }), "{e}");
        assert!(e.to_string().contains("past its declared size"), "{e}");

        // declares 4 GB
        let mut huge = honest;
        patch_size(&mut huge, 0xFFFF_FF00);
        let e = parse(&huge, "huge.docx", "huge").unwrap_err();
        assert!(matches!(e, IngestError::ZipBomb { .. }), "{e}");
    }
}
