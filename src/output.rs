//! Printers: every command result is printed once, either for people or as JSON. Commands
//! build a value and hand it to the [`Printer`] chosen from `--json`; no `if json` in logic.

use serde::Serialize;
use std::io::{self, Write};

/// A command result that can be shown to a person (and, through `Serialize`, as JSON).
pub trait Render: Serialize {
    fn human(&self, out: &mut dyn Write) -> io::Result<()>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Printer {
    Human,
    Json,
}

impl Printer {
    pub fn new(json: bool) -> Self {
        if json { Printer::Json } else { Printer::Human }
    }

    pub fn print<T: Render>(self, value: &T) -> anyhow::Result<()> {
        let stdout = io::stdout();
        let mut out = stdout.lock();
        match self {
            Printer::Human => value.human(&mut out)?,
            Printer::Json => {
                serde_json::to_writer_pretty(&mut out, value)?;
                writeln!(out)?;
            }
        }
        out.flush()?;
        Ok(())
    }
}

/// Shortens text to about `max` characters on a char boundary, on one line.
pub fn snippet(text: &str, max: usize) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let cut: String = one_line.chars().take(max).collect();
    format!("{cut}…")
}

/// The progress bar of a long command: `what`, a spinner, elapsed time, the bar, done/total
/// and the current item. indicatif draws it only on a terminal (stderr), so it stays out of
/// piped and `--json` output; `quiet` hides it everywhere.
pub fn progress_bar(len: u64, what: &str, quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    let prefix = if what.is_empty() {
        String::new()
    } else {
        format!("{what} ")
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{prefix}{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {{wide_msg}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

#[cfg(test)]
mod tests {
    use super::snippet;

    #[test]
    fn snippet_cuts_on_char_boundaries_and_joins_lines() {
        assert_eq!(snippet("a\n  b", 10), "a b");
        assert_eq!(snippet("配置网络接口", 3), "配置网…");
    }
}
