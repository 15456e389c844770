//! Printing helpers: colours that switch off when piped, tables, CSV.

use std::io::IsTerminal;

use comfy_table::{Cell, Color, ContentArrangement, Table, presets};
use kir_detect::Level;

use crate::cli::{ColorChoice, Global};

/// Whether stdout is a terminal, asked of the system once: a table of thousands of findings asked
/// it for every cell (a system call each), which was a tenth of a large hunt's serial end.
pub fn stdout_is_terminal() -> bool {
    static TERMINAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TERMINAL.get_or_init(|| std::io::stdout().is_terminal())
}

pub fn use_color(global: &Global) -> bool {
    match global.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => stdout_is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
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
    if !stdout_is_terminal() {
        // Piped tables keep their full width: lines are for grep, not for a screen.
        t.set_content_arrangement(ContentArrangement::Disabled);
    }
    t.set_header(header.iter().map(Cell::new));
    t
}

/// A table whose first column is each row's severity (coloured when `color`), as [`table`] lays
/// it out. Piped without colours (a hunt's thousands of findings into a file or `grep`) it is
/// laid out here, as comfy_table lays it out, without its general machinery: that was most of a
/// large hunt's serial end.
pub fn severity_table(color: bool, header: &[&str], rows: Vec<(Level, Vec<String>)>) -> String {
    if !color && !stdout_is_terminal() {
        let rows: Vec<Vec<String>> = rows
            .into_iter()
            .map(|(level, cells)| std::iter::once(level.as_str().to_uppercase()).chain(cells).collect())
            .collect();
        if let Some(text) = plain_table(header, &rows) {
            return text;
        }
        let mut t = table(color, header);
        t.add_rows(rows);
        return t.to_string();
    }
    let mut t = table(color, header);
    for (level, cells) in rows {
        t.add_row(std::iter::once(severity_cell(level, color)).chain(cells.into_iter().map(Cell::new)));
    }
    t.to_string()
}

/// [`table`]'s layout when piped without colours: each cell padded to its column's display width,
/// a space on either side. `None` when a cell holds a control character (comfy_table splits
/// lines at a line break, and the width of the others is its own call).
fn plain_table(header: &[&str], rows: &[Vec<String>]) -> Option<String> {
    // Printable ASCII (control characters are refused below) is one column a byte.
    let width = |s: &str| if s.is_ascii() { s.len() } else { unicode_width::UnicodeWidthStr::width(s) };
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in rows {
        if row.len() != header.len() {
            return None;
        }
        for (column, cell) in widths.iter_mut().zip(row) {
            if cell.bytes().any(|b| b < 0x20 || b == 0x7f) {
                return None;
            }
            *column = (*column).max(width(cell));
        }
    }
    let line_width: usize = widths.iter().map(|w| w + 2).sum::<usize>() + 1;
    let mut out = String::with_capacity(line_width * (rows.len() + 1));
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        if !out.is_empty() {
            out.push('\n');
        }
        for (cell, column) in cells.zip(&widths) {
            out.push(' ');
            out.push_str(cell);
            out.extend(std::iter::repeat_n(' ', column - width(cell) + 1));
        }
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    Some(out)
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
    if !stdout_is_terminal() || text.chars().count() <= max {
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
    use proptest::prelude::*;

    /// comfy_table as [`super::table`] sets it up when piped without colours.
    fn comfy(header: &[&str], rows: &[Vec<String>]) -> String {
        let mut t = comfy_table::Table::new();
        t.load_style(comfy_table::presets::NOTHING);
        t.force_no_tty();
        t.set_content_arrangement(comfy_table::ContentArrangement::Disabled);
        t.set_header(header.iter().map(comfy_table::Cell::new));
        t.add_rows(rows.iter().cloned());
        t.to_string()
    }

    proptest! {
        #[test]
        fn plain_tables_are_laid_out_as_comfy_table_lays_them_out(
            rows in prop::collection::vec(prop::collection::vec("[a-z0-9 :/é漢字😀\u{301}…-]{0,12}", 3), 0..6),
        ) {
            let header = ["SEVERITY", "A", "LONGER HEADER"];
            prop_assert_eq!(super::plain_table(&header, &rows), Some(comfy(&header, &rows)));
        }
    }

    #[test]
    fn cells_with_control_characters_are_left_to_comfy_table() {
        let rows = vec![vec!["a\nb".to_string()], vec!["c".to_string()]];
        assert_eq!(super::plain_table(&["H"], &rows), None);
        assert_eq!(super::plain_table(&["H"], &[vec!["\t".to_string()]]), None);
    }

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
