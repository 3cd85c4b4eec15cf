//! HTML parsing: the readable content of a web page, with its headings, lists, tables
//! and code, via `scraper` (html5ever, the spec's tree builder; entities decoded).
//!
//! The charset comes from the document: a byte-order mark, else a `<meta charset>` or
//! `http-equiv` content type within the first 1024 bytes, else detection
//! ([`decode::decode_declared`]); a declared charset the bytes are malformed in falls
//! back to detection.
//!
//! Boilerplate is dropped: `script`, `style`, `noscript`, `template`, `nav`, `aside`,
//! `form` and other widgets, page-level `header`/`footer` (those inside `main`,
//! `article` or `section` belong to the content and stay), and hidden elements
//! (`hidden`, `aria-hidden="true"`, inline `display:none` / `visibility:hidden`).
//! When the page has a `<main>` (else `<article>`s) with text, only that is read.
//!
//! The extracted text is built here: one block per paragraph-like element (`p`, `div`,
//! `blockquote`, `dt`, `dd`, ...), per heading (`h1`–`h6`, which set the heading path),
//! per list (items on their own lines as `- item`, nested lists indented), per `pre`
//! (a code block, whitespace kept) and per table (one row per line, cells joined by
//! ` | `); blocks are separated by a blank line. The title is `<title>`, else the first
//! `h1`, else the file stem.

use super::decode;
use super::{BlockKind, Parsed, TextBuilder, clip_title};
use crate::error::IngestError;
use ego_tree::NodeId;
use ego_tree::iter::Edge;
use scraper::{ElementRef, Html, Node};

/// How far into the file a `<meta>` charset declaration is looked for (as browsers do).
const PRESCAN_BYTES: usize = 1024;
/// Element nesting the block walker follows; deeper content is read as inline text
/// (iteratively), so a hostile page cannot overflow the stack.
const MAX_DEPTH: usize = 128;
/// Deepest element nesting accepted. The HTML tree builder's scope checks walk the
/// stack of open elements, so parsing time grows with the square of the nesting depth
/// (20 000 nested lists take seconds); no real page comes near this.
const MAX_NESTING: usize = 2048;
/// List nesting kept as indentation; deeper lists are flattened into their item.
const MAX_LIST_DEPTH: usize = 16;

pub(crate) fn parse(bytes: &[u8], file: &str, stem: &str) -> Result<Parsed, IngestError> {
    let declared = declared_charset(bytes);
    let (source, encoding) =
        decode::decode_declared(bytes, declared).map_err(|_| IngestError::Encoding {
            file: file.to_string(),
        })?;
    tracing::debug!(
        file,
        declared = declared.map(|e| e.name()),
        encoding = encoding.name(),
        "decoded HTML"
    );
    if source.trim().is_empty() {
        return Err(IngestError::Empty {
            file: file.to_string(),
        });
    }
    if nesting_depth(&source) > MAX_NESTING {
        return Err(IngestError::TooDeep {
            file: file.to_string(),
            limit: MAX_NESTING,
        });
    }
    let html = Html::parse_document(&source);
    let root = html.root_element();

    let mut builder = TextBuilder::default();
    for content in content_roots(root) {
        Walker::new(&mut builder).block(content, true, 0);
    }
    if !has_content(&builder) {
        // No main/article, or one without text: read the whole body.
        builder = TextBuilder::default();
        Walker::new(&mut builder).block(root, false, 0);
    }
    if builder.is_empty() {
        return Err(IngestError::Empty {
            file: file.to_string(),
        });
    }

    let title = first_named(root, "title")
        .map(|t| inline_text(t, false))
        .filter(|t| !t.is_empty())
        .or_else(|| first_named(root, "h1").map(|h| inline_text(h, false)))
        .map(|t| clip_title(&t))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| stem.to_string());
    let (text, blocks) = builder.finish();
    Ok(Parsed {
        text,
        title,
        mime: "text/html",
        pages: 1,
        blocks,
    })
}

/// The charset a `<meta>` tag in the first [`PRESCAN_BYTES`] declares, if any and known.
/// Per the HTML standard a UTF-16 label there means UTF-8 (a page that really is UTF-16
/// has a BOM), and `x-user-defined` means windows-1252.
fn declared_charset(bytes: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    let head = bytes[..bytes.len().min(PRESCAN_BYTES)].to_ascii_lowercase();
    let mut pos = 0;
    while let Some(found) = find(&head[pos..], b"<meta") {
        let start = pos + found + b"<meta".len();
        let end = find(&head[start..], b">").map_or(head.len(), |e| start + e);
        let tag = &head[start..end];
        pos = end;
        let Some(at) = find(tag, b"charset") else {
            continue;
        };
        let rest = tag[at + b"charset".len()..].trim_ascii_start();
        let Some(rest) = rest.strip_prefix(b"=") else {
            continue;
        };
        let rest = rest.trim_ascii_start();
        let rest = rest
            .strip_prefix(b"\"")
            .or_else(|| rest.strip_prefix(b"'"))
            .unwrap_or(rest);
        let label_end = rest
            .iter()
            .position(|b| matches!(b, b'"' | b'\'' | b';' | b'/') || b.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let encoding = encoding_rs::Encoding::for_label(&rest[..label_end])?;
        return Some(
            if encoding == encoding_rs::UTF_16LE || encoding == encoding_rs::UTF_16BE {
                encoding_rs::UTF_8
            } else if encoding == encoding_rs::X_USER_DEFINED {
                encoding_rs::WINDOWS_1252
            } else {
                encoding
            },
        );
    }
    None
}

/// Elements without an end tag, or whose end tag is optional (the tree builder closes
/// them itself): they add no nesting.
const NO_NESTING: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr", "param", "keygen", "html", "head", "body", "p", "li", "dt", "dd", "tr", "td", "th",
    "thead", "tbody", "tfoot", "option", "optgroup", "colgroup", "caption", "rb", "rt", "rtc",
    "rp",
];
/// Elements whose content is raw text, up to their end tag.
const RAW_TEXT: &[&str] = &[
    "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes",
];

/// An estimate, from the tags alone (before building a tree), of how deeply elements
/// nest: start tags that need an end tag open a level, end tags close one. Comments,
/// doctype and the content of `script`/`style`/... are skipped. Linear in the input.
fn nesting_depth(source: &str) -> usize {
    let bytes = source.as_bytes();
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while let Some(lt) = bytes[i..].iter().position(|b| *b == b'<') {
        i += lt + 1;
        let rest = &bytes[i..];
        if rest.starts_with(b"!--") {
            i += find(rest, b"-->").map_or(rest.len(), |e| e + 3);
            continue;
        }
        let closing = rest.first() == Some(&b'/');
        let name_start = usize::from(closing);
        let name_len = rest[name_start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        if name_len == 0 || !rest[name_start].is_ascii_alphabetic() {
            continue;
        }
        let name = rest[name_start..name_start + name_len].to_ascii_lowercase();
        let name = std::str::from_utf8(&name).unwrap_or_default();
        let tag_end = rest.iter().position(|b| *b == b'>').unwrap_or(rest.len());
        i += tag_end;
        if NO_NESTING.contains(&name) {
            continue;
        }
        if closing {
            depth = depth.saturating_sub(1);
        } else if rest[..tag_end].ends_with(b"/") {
            // self-closing (foreign content)
        } else if RAW_TEXT.contains(&name) {
            let end_tag = format!("</{name}");
            i += bytes[i..]
                .windows(end_tag.len())
                .position(|w| w.eq_ignore_ascii_case(end_tag.as_bytes()))
                .unwrap_or(bytes.len() - i);
        } else {
            depth += 1;
            deepest = deepest.max(depth);
        }
    }
    deepest
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The elements holding the page's main content: the first visible `<main>`, else every
/// outermost visible `<article>`; empty when the page has neither.
fn content_roots(root: ElementRef<'_>) -> Vec<ElementRef<'_>> {
    let visible = |e: &ElementRef<'_>| {
        !hidden(*e)
            && !e
                .ancestors()
                .filter_map(ElementRef::wrap)
                .any(|a| hidden(a) || dropped(a.value().name(), false))
    };
    let elements = || root.descendants().filter_map(ElementRef::wrap);
    if let Some(main) = elements().find(|e| e.value().name() == "main" && visible(e)) {
        return vec![main];
    }
    elements()
        .filter(|e| e.value().name() == "article" && visible(e))
        .filter(|e| {
            !e.ancestors()
                .filter_map(ElementRef::wrap)
                .any(|a| a.value().name() == "article")
        })
        .collect()
}

/// Whether the builder holds a block other than a heading.
fn has_content(builder: &TextBuilder) -> bool {
    !builder.is_empty() && builder.has_kind_other_than(BlockKind::Heading)
}

/// The first element named `name` in document order.
fn first_named<'a>(root: ElementRef<'a>, name: &str) -> Option<ElementRef<'a>> {
    root.descendants()
        .filter_map(ElementRef::wrap)
        .find(|e| e.value().name() == name && !hidden(*e))
}

/// Elements whose content is never text of the page. `header` and `footer` are page
/// boilerplate only outside a sectioning element (`in_section`).
fn dropped(name: &str, in_section: bool) -> bool {
    match name {
        "header" | "footer" => !in_section,
        "script" | "style" | "noscript" | "template" | "nav" | "aside" | "form" | "head"
        | "iframe" | "object" | "embed" | "svg" | "math" | "canvas" | "button" | "select"
        | "textarea" | "input" | "dialog" | "menu" | "audio" | "video" | "map" => true,
        _ => false,
    }
}

/// Hidden by attribute or inline style.
fn hidden(e: ElementRef<'_>) -> bool {
    let el = e.value();
    if el.attr("hidden").is_some()
        || el
            .attr("aria-hidden")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    {
        return true;
    }
    el.attr("style").is_some_and(|style| {
        let style: String = style
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        style.contains("display:none") || style.contains("visibility:hidden")
    })
}

/// Elements that end the paragraph before them and start a new one after them.
fn paragraph_like(name: &str) -> bool {
    matches!(
        name,
        "html"
            | "body"
            | "main"
            | "article"
            | "section"
            | "header"
            | "footer"
            | "p"
            | "div"
            | "blockquote"
            | "dl"
            | "dt"
            | "dd"
            | "li"
            | "figure"
            | "figcaption"
            | "address"
            | "center"
            | "details"
            | "summary"
            | "fieldset"
            | "legend"
            | "caption"
            | "hgroup"
            | "search"
    )
}

/// Walks the DOM, turning elements into blocks.
struct Walker<'b> {
    out: &'b mut TextBuilder,
    /// The paragraph being collected: inline text with whitespace collapsed.
    para: String,
}

impl<'b> Walker<'b> {
    fn new(out: &'b mut TextBuilder) -> Self {
        Walker {
            out,
            para: String::new(),
        }
    }

    /// Reads a paragraph-like element: what came before it and its own inline text are
    /// separate blocks.
    fn block(&mut self, e: ElementRef<'_>, in_section: bool, depth: usize) {
        self.flush();
        self.children(e, in_section, depth);
        self.flush();
    }

    fn children(&mut self, e: ElementRef<'_>, in_section: bool, depth: usize) {
        for child in e.children() {
            match child.value() {
                Node::Text(t) => push_collapsed(&mut self.para, t),
                Node::Element(_) => {
                    if let Some(el) = ElementRef::wrap(child) {
                        self.element(el, in_section, depth + 1);
                    }
                }
                _ => {}
            }
        }
    }

    fn element(&mut self, e: ElementRef<'_>, in_section: bool, depth: usize) {
        let name = e.value().name();
        if dropped(name, in_section) || hidden(e) {
            return;
        }
        if depth >= MAX_DEPTH {
            push_collapsed(&mut self.para, " ");
            push_collapsed(&mut self.para, &inline_text(e, false));
            push_collapsed(&mut self.para, " ");
            return;
        }
        match name {
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                self.flush();
                let level = name.as_bytes()[1] - b'0';
                self.out.heading(level, &inline_text(e, false));
            }
            "ul" | "ol" => {
                self.flush();
                let mut list = String::new();
                list_items(e, 0, &mut list);
                self.out.push(BlockKind::List, &list);
            }
            "pre" => {
                self.flush();
                let code = raw_text(e);
                self.out
                    .push(BlockKind::Code, code.trim_start_matches('\n'));
            }
            "table" => {
                self.flush();
                let mut rows = Vec::new();
                table_rows(e, &mut rows);
                self.out.push(BlockKind::Table, &rows.join("\n"));
            }
            "br" => {
                trim_trailing_spaces(&mut self.para);
                self.para.push('\n');
            }
            "hr" => self.flush(),
            "main" | "article" | "section" => self.block(e, true, depth),
            _ if paragraph_like(name) => self.block(e, in_section, depth),
            _ => self.children(e, in_section, depth),
        }
    }

    /// Ends the paragraph being collected, adding it as a block if it has text.
    fn flush(&mut self) {
        let para = std::mem::take(&mut self.para);
        let lines: Vec<&str> = para
            .split('\n')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        self.out.push(BlockKind::Paragraph, &lines.join("\n"));
    }
}

/// Appends `text` with runs of whitespace collapsed to one space (none at the start of
/// a line).
fn push_collapsed(out: &mut String, text: &str) {
    for c in text.chars() {
        if c.is_whitespace() {
            if !(out.is_empty() || out.ends_with(' ') || out.ends_with('\n')) {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
}

fn trim_trailing_spaces(s: &mut String) {
    let keep = s.trim_end_matches(' ').len();
    s.truncate(keep);
}

/// The visible text inside `e` on one line, whitespace collapsed; nested lists are left
/// out when `skip_lists` (their items become lines of their own). Iterative, so any
/// nesting depth is safe.
fn inline_text(e: ElementRef<'_>, skip_lists: bool) -> String {
    let mut out = String::new();
    // The element whose subtree is being skipped.
    let mut skipping: Option<NodeId> = None;
    for edge in e.traverse() {
        match edge {
            Edge::Open(node) if skipping.is_none() => match node.value() {
                Node::Text(t) => push_collapsed(&mut out, t),
                Node::Element(el) if node.id() != e.id() => {
                    let name = el.name();
                    if dropped(name, true)
                        || ElementRef::wrap(node).is_some_and(hidden)
                        || (skip_lists && matches!(name, "ul" | "ol"))
                    {
                        skipping = Some(node.id());
                    } else if name == "br" || paragraph_like(name) {
                        push_collapsed(&mut out, " ");
                    }
                }
                _ => {}
            },
            Edge::Open(_) => {}
            Edge::Close(node) => {
                if skipping == Some(node.id()) {
                    skipping = None;
                } else if skipping.is_none()
                    && node.id() != e.id()
                    && let Node::Element(el) = node.value()
                    && (paragraph_like(el.name()) || matches!(el.name(), "td" | "th" | "tr"))
                {
                    push_collapsed(&mut out, " ");
                }
            }
        }
    }
    out.trim().to_string()
}

/// Every visible text node inside `e`, as is (for `pre`); iterative like [`inline_text`].
fn raw_text(e: ElementRef<'_>) -> String {
    let mut out = String::new();
    let mut skipping: Option<NodeId> = None;
    for edge in e.traverse() {
        match edge {
            Edge::Open(node) if skipping.is_none() => match node.value() {
                Node::Text(t) => out.push_str(t),
                Node::Element(el) if node.id() != e.id() => {
                    if dropped(el.name(), true) || ElementRef::wrap(node).is_some_and(hidden) {
                        skipping = Some(node.id());
                    } else if el.name() == "br" {
                        out.push('\n');
                    }
                }
                _ => {}
            },
            Edge::Open(_) => {}
            Edge::Close(node) => {
                if skipping == Some(node.id()) {
                    skipping = None;
                }
            }
        }
    }
    out
}

/// The items of list `e` as `- item` lines, nested lists indented two spaces a level.
fn list_items(e: ElementRef<'_>, depth: usize, out: &mut String) {
    for child in e.children().filter_map(ElementRef::wrap) {
        if hidden(child) {
            continue;
        }
        match child.value().name() {
            "li" if depth >= MAX_LIST_DEPTH => {
                out.push_str(&"  ".repeat(depth));
                out.push_str("- ");
                out.push_str(&inline_text(child, false));
                out.push('\n');
            }
            "li" => {
                let text = inline_text(child, true);
                if !text.is_empty() {
                    out.push_str(&"  ".repeat(depth));
                    out.push_str("- ");
                    out.push_str(&text);
                    out.push('\n');
                }
                for nested in child.descendants().filter_map(ElementRef::wrap) {
                    let name = nested.value().name();
                    if matches!(name, "ul" | "ol")
                        && !hidden(nested)
                        && nearest_list(nested).is_some_and(|l| l.id() == child.id())
                    {
                        list_items(nested, depth + 1, out);
                    }
                }
            }
            // Lists written without `li` wrappers around nested lists.
            "ul" | "ol" if depth < MAX_LIST_DEPTH => list_items(child, depth + 1, out),
            "ul" | "ol" => {
                out.push_str(&"  ".repeat(depth));
                out.push_str("- ");
                out.push_str(&inline_text(child, false));
                out.push('\n');
            }
            _ => {}
        }
    }
}

/// The nearest `li` above `e`.
fn nearest_list(e: ElementRef<'_>) -> Option<ElementRef<'_>> {
    e.ancestors()
        .filter_map(ElementRef::wrap)
        .find(|a| a.value().name() == "li")
}

/// The rows of table `e` (its own, not those of tables nested in cells), each as its
/// cells joined by ` | `; rows without text are left out.
fn table_rows(e: ElementRef<'_>, rows: &mut Vec<String>) {
    for child in e.children().filter_map(ElementRef::wrap) {
        if hidden(child) {
            continue;
        }
        match child.value().name() {
            "thead" | "tbody" | "tfoot" => table_rows(child, rows),
            "caption" => {
                let caption = inline_text(child, false);
                if !caption.is_empty() {
                    rows.push(caption);
                }
            }
            "tr" => {
                let cells: Vec<String> = child
                    .children()
                    .filter_map(ElementRef::wrap)
                    .filter(|c| matches!(c.value().name(), "td" | "th") && !hidden(*c))
                    .map(|c| inline_text(c, false))
                    .collect();
                if cells.iter().any(|c| !c.is_empty()) {
                    rows.push(cells.join(" | "));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::test_blocks as blocks;

    fn parse_ok(html: &[u8]) -> Parsed {
        parse(html, "page.html", "page").unwrap()
    }

    #[test]
    fn headings_build_paths_and_boilerplate_is_dropped() {
        let html = br#"<!doctype html><html><head><title>The  Guide</title>
            <style>body { color: red }</style><script>var x = "script text";</script></head>
            <body><header><a href="/">Home</a> site banner</header>
            <nav><ul><li>Menu one</li><li>Menu two</li></ul></nav>
            <h1>Guide</h1><p>Intro &amp; <b>welcome</b>
            to the   guide.</p>
            <h2>Install</h2><p>Run it.</p><noscript>Enable JS</noscript>
            <h3>On Linux</h3><div>Use <code>apt</code>.<br>Or build.</div>
            <h2>Configure</h2><p hidden>secret</p><p style="display: none">gone</p>
            <p>Edit the file.</p><aside>Related posts</aside>
            <form><label>Search</label><input value="q"></form>
            <template><p>template text</p></template>
            <footer>Copyright</footer></body></html>"#;
        let p = parse_ok(html);
        assert_eq!(p.title, "The Guide");
        assert_eq!(p.mime, "text/html");
        use BlockKind::*;
        assert_eq!(
            blocks(&p),
            vec![
                (Heading, "Guide", vec!["Guide"]),
                (Paragraph, "Intro & welcome to the guide.", vec!["Guide"]),
                (Heading, "Install", vec!["Guide", "Install"]),
                (Paragraph, "Run it.", vec!["Guide", "Install"]),
                (Heading, "On Linux", vec!["Guide", "Install", "On Linux"]),
                (
                    Paragraph,
                    "Use apt.\nOr build.",
                    vec!["Guide", "Install", "On Linux"]
                ),
                (Heading, "Configure", vec!["Guide", "Configure"]),
                (Paragraph, "Edit the file.", vec!["Guide", "Configure"]),
            ]
        );
        for gone in [
            "script text",
            "color",
            "Menu",
            "banner",
            "Enable JS",
            "secret",
            "gone",
            "Related",
            "Search",
            "template",
            "Copyright",
        ] {
            assert!(!p.text.contains(gone), "{gone} leaked into {:?}", p.text);
        }
    }

    #[test]
    fn lists_tables_code_and_quotes_keep_their_shape() {
        let html = b"<html><body>
            <ul><li>First item</li><li>Second <em>item</em>
              <ol><li>nested a</li><li>nested b</li></ol></li><li>Third</li></ul>
            <table><caption>Prices</caption>
              <thead><tr><th>Name</th><th>Price</th></tr></thead>
              <tbody><tr><td>Tea</td><td>3 &euro;</td></tr><tr><td></td><td></td></tr>
              <tr><td>Coffee</td><td>4 &euro;</td></tr></tbody></table>
            <pre>fn main() {\n    println!(\"hi\");\n}\n</pre>
            <blockquote><p>Quoted words.</p></blockquote>
            <dl><dt>Term</dt><dd>Its definition.</dd></dl>
            </body></html>";
        let p = parse_ok(html);
        use BlockKind::*;
        assert_eq!(
            blocks(&p),
            vec![
                (
                    List,
                    "- First item\n- Second item\n  - nested a\n  - nested b\n- Third",
                    vec![]
                ),
                (
                    Table,
                    "Prices\nName | Price\nTea | 3 €\nCoffee | 4 €",
                    vec![]
                ),
                (Code, "fn main() {\n    println!(\"hi\");\n}", vec![]),
                (Paragraph, "Quoted words.", vec![]),
                (Paragraph, "Term", vec![]),
                (Paragraph, "Its definition.", vec![]),
            ]
        );
        // the title falls back to the stem without <title> or <h1>
        assert_eq!(p.title, "page");
        // blocks are separated by blank lines, and spans are trimmed and in order
        assert!(p.text.starts_with("- First item\n"));
        assert!(p.text.contains("- Third\n\nPrices\n"));
    }

    #[test]
    fn main_content_is_preferred() {
        let html = b"<body><div class=sidebar><p>Sidebar links everywhere.</p></div>
            <main><header><h1>Article title</h1></header><p>The body text.</p>
            <footer>Posted on Monday</footer></main><div>Cookie banner</div></body>";
        let p = parse_ok(html);
        assert_eq!(p.title, "Article title");
        let b = blocks(&p);
        assert_eq!(
            b[0],
            (BlockKind::Heading, "Article title", vec!["Article title"])
        );
        assert_eq!(b[1].1, "The body text.");
        assert_eq!(b[2].1, "Posted on Monday");
        assert!(!p.text.contains("Sidebar") && !p.text.contains("Cookie"));

        // articles when there is no main; an empty main falls back to the body
        let html = b"<body><p>chrome</p><article><p>one</p></article>\
                     <article><p>two</p></article></body>";
        let p = parse_ok(html);
        assert_eq!(p.text, "one\n\ntwo");
        let html = b"<body><main></main><p>outside</p></body>";
        assert_eq!(parse_ok(html).text, "outside");
    }

    #[test]
    fn gb2312_page_with_meta_charset() {
        let page = "<html><head><meta charset=\"gb2312\"><title>检索系统</title></head>\
                    <body><h1>简介</h1><p>这是一个中文网页，用来测试编码。</p></body></html>";
        let (bytes, _, unmappable) = encoding_rs::GBK.encode(page);
        assert!(!unmappable);
        assert_eq!(declared_charset(&bytes), Some(encoding_rs::GBK));
        let p = parse_ok(&bytes);
        assert_eq!(p.title, "检索系统");
        assert_eq!(
            blocks(&p)[1],
            (
                BlockKind::Paragraph,
                "这是一个中文网页，用来测试编码。",
                vec!["简介"]
            )
        );
    }

    #[test]
    fn http_equiv_charset_is_read() {
        let page = b"<html><head><META HTTP-EQUIV='Content-Type' \
                     CONTENT='text/html; charset=ISO-8859-1'></head>\
                     <body><p>Caf\xe9 cr\xe8me</p></body></html>";
        assert_eq!(declared_charset(page), Some(encoding_rs::WINDOWS_1252));
        assert_eq!(parse_ok(page).text, "Café crème");
    }

    #[test]
    fn a_wrong_declared_charset_falls_back_to_detection() {
        // declares UTF-8, but is windows-1252
        let page = b"<html><head><meta charset=\"utf-8\"><title>Men\xfc</title></head>\
                     <body><p>Le caf\xe9 cr\xe8me co\xfbte deux euros \x80.</p></body></html>";
        let p = parse_ok(page);
        assert_eq!(p.title, "Menü");
        assert_eq!(p.text, "Le café crème coûte deux euros €.");
        assert!(!p.text.contains('\u{FFFD}'));
        // declares an unknown charset: detection
        let page = b"<meta charset=\"klingon\"><p>Une id\xe9e na\xefve: un caf\xe9 cr\xe8me.</p>";
        assert_eq!(parse_ok(page).text, "Une idée naïve: un café crème.");
    }

    #[test]
    fn deep_nesting_is_read_or_refused_quickly() {
        for (open, close) in [
            ("<div>", "</div>"),
            ("<span>", "</span>"),
            ("<ul><li>x", "</li></ul>"),
            ("<blockquote>", "</blockquote>"),
        ] {
            // deeper than the walker follows: read, on the 2 MiB stack of a test thread
            let n = 1000;
            let page = format!("<p>start</p>{}deep{}", open.repeat(n), close.repeat(n));
            assert_eq!(nesting_depth(&page), n);
            let p = parse_ok(page.as_bytes());
            assert!(p.text.starts_with("start"), "{open}");
            assert!(p.text.contains("deep"), "{open}");

            // hostile: refused before the tree builder sees it
            let n = 100_000;
            let page = format!("<p>start</p>{}deep{}", open.repeat(n), close.repeat(n));
            let started = std::time::Instant::now();
            let e = parse(page.as_bytes(), "deep.html", "deep").unwrap_err();
            assert_eq!(
                e.to_string(),
                "deep.html: the document is nested more than 2048 levels deep"
            );
            assert!(
                started.elapsed().as_secs() < 2,
                "{open}: {:?}",
                started.elapsed()
            );
        }
    }

    #[test]
    fn nesting_estimate_ignores_void_optional_and_raw_text() {
        let many = "<p>para<br><img src=x><li>item<td>cell".repeat(5000);
        assert_eq!(nesting_depth(&many), 0);
        let script = format!("<div><script>{}</SCRIPT></div>", "if (a<b) {}".repeat(5000));
        assert_eq!(nesting_depth(&script), 1);
        // many raw-text elements: still linear
        let scripts = "<script>x</script><style>y</style>".repeat(50_000);
        let started = std::time::Instant::now();
        assert_eq!(nesting_depth(&scripts), 0);
        assert!(started.elapsed().as_secs() < 1);
        let comment = format!(
            "<!-- {} --><div><svg><path d=''/></svg></div>",
            "<div>".repeat(9)
        );
        assert_eq!(nesting_depth(&comment), 2);
        assert_eq!(nesting_depth("a < b and c <3 d <"), 0);
    }

    #[test]
    fn empty_pages_are_refused() {
        for page in [
            &b""[..],
            b"   ",
            b"<html><head><title>Only a title</title></head><body></body></html>",
            b"<body><script>lots of script</script><nav>menu</nav></body>",
        ] {
            let e = parse(page, "blank.html", "blank").unwrap_err();
            assert!(matches!(e, IngestError::Empty { .. }), "{e}");
            assert_eq!(e.to_string(), "blank.html: empty document");
        }
        // binary junk with an .html name
        let e = parse(b"\x00\x01\x02\x03\xff\xfe", "x.html", "x").unwrap_err();
        assert!(matches!(e, IngestError::Encoding { .. }), "{e}");
    }
}
