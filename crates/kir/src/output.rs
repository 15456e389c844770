//! Printing helpers: colours that switch off when piped, tables, CSV.

use std::io::IsTerminal;

use comfy_table::{Cell, Color, ContentArrangement, Table, presets};
use kir_detect::Level;

use crate::cli::{ColorChoice, Global};

pub fn use_color(global: &Global) -> bool {
    match global.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

pub fn table(color: bool, header: &[&str]) -> Table {
    let mut t = Table::new();
    // Columns separated by spaces, as kubectl prints them: easy to read and to grep.
    t.load_style(presets::NOTHING);
    t.set_content_arrangement(ContentArrangement::Dynamic);
    if color {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    if !std::io::stdout().is_terminal() {
        // Piped tables keep their full width: lines are for grep, not for a screen.
        t.set_content_arrangement(ContentArrangement::Disabled);
    }
    t.set_header(header.iter().map(Cell::new));
    t
}

pub fn severity_cell(level: Level, color: bool) -> Cell {
    let cell = Cell::new(level.as_str().to_uppercase());
    if !color {
        return cell;
    }
    let cell = cell.fg(severity_color(level));
    if level >= Level::High { cell.add_attribute(comfy_table::Attribute::Bold) } else { cell }
}

pub fn severity_color(level: Level) -> Color {
    match level {
        Level::Critical => Color::Magenta,
        Level::High => Color::Red,
        Level::Medium => Color::Yellow,
        Level::Low => Color::Cyan,
        Level::Informational => Color::DarkGrey,
    }
}

/// One CSV field, quoted when it must be (RFC 4180). A field that a spreadsheet would run as a
/// formula (`=`, `+`, `-`, `@`, tab or carriage return first: user names, URIs and images are the
/// attacker's to choose) gets a leading `'`, so it shows as text; plain numbers stay numbers.
pub fn csv_field(value: &str) -> String {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']) && value.parse::<f64>().is_err();
    let value: std::borrow::Cow<str> = if formula { format!("'{value}").into() } else { value.into() };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

pub fn csv_line(fields: &[String]) -> String {
    fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",")
}

/// Cuts long text for a table cell on a screen; piped tables keep every character, for grep.
pub fn ellipsize(text: &str, max: usize) -> String {
    if !std::io::stdout().is_terminal() || text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Writes to stdout; a closed pipe (`kir … | head`) ends the output quietly instead of failing.
pub fn emit(text: &str) -> Result<(), crate::UserError> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(crate::UserError::usage(format!("writing the output: {e}")))
        }
        _ => Ok(()),
    }
}

/// `print!` that stops quietly on a closed pipe (needs a function returning `Result<_, UserError>`).
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::emit(&format!($($arg)*))? };
}

/// `println!` that stops quietly on a closed pipe.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::output::emit(&format!("{}\n", format_args!($($arg)*)))? };
}

pub(crate) use {out, outln};

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn formulas_become_text_and_numbers_stay() {
        assert_eq!(csv_field("=HYPERLINK(\"http://x\",\"y\")"), "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"");
        assert_eq!(csv_field("+cmd|' /C calc'!A0"), "'+cmd|' /C calc'!A0");
        assert_eq!(csv_field("@SUM(1)"), "'@SUM(1)");
        assert_eq!(csv_field("-2+3"), "'-2+3");
        assert_eq!(csv_field("\tx"), "'\tx");
        assert_eq!(csv_field("\r=1"), "\"'\r=1\"");
        assert_eq!(csv_field("-12.5"), "-12.5");
        assert_eq!(csv_field("system:anonymous"), "system:anonymous");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
}
