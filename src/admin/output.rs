//! Output: aligned text tables for people, JSON for programs (`--json`).

use serde_json::Value;

/// A text table with a header row; columns are as wide as their widest cell.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        widen(&mut widths, &self.rows);
        let mut out = line(&widths, &self.headers);
        for row in &self.rows {
            out.push_str(&line(&widths, row));
        }
        out
    }
}

/// Widens `widths` to the widest cell of each column in `rows`.
fn widen(widths: &mut [usize], rows: &[Vec<String>]) {
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
}

/// One table line: cells padded to `widths`, the last one not, a final newline.
fn line(widths: &[usize], cells: &[String]) -> String {
    let mut out = String::new();
    for (i, width) in widths.iter().enumerate() {
        let cell = cells.get(i).map(String::as_str).unwrap_or("");
        if i + 1 == widths.len() {
            out.push_str(cell);
        } else {
            out.push_str(&format!("{cell:<width$}  "));
        }
    }
    let mut out = out.trim_end().to_string();
    out.push('\n');
    out
}

/// Rows a listing writes as it reads them (a million keys are never all in memory), as an
/// aligned table or, for `--json`, one JSON array. The table is aligned a page at a time:
/// columns are as wide as the widest cell so far, so up to [`PAGE`] rows it is the same as a
/// [`Table`], and past that a column widens only where a longer cell comes.
pub struct Listing<'w> {
    out: &'w mut dyn std::io::Write,
    json: bool,
    headers: Vec<String>,
    widths: Vec<usize>,
    page: Vec<Vec<String>>,
    written: usize,
}

/// Rows aligned together in a [`Listing`].
pub const PAGE: usize = 1000;

impl<'w> Listing<'w> {
    pub fn new(out: &'w mut dyn std::io::Write, json: bool, headers: &[&str]) -> Listing<'w> {
        Listing {
            out,
            json,
            headers: headers.iter().map(|h| h.to_string()).collect(),
            widths: headers.iter().map(|h| h.chars().count()).collect(),
            page: Vec::new(),
            written: 0,
        }
    }

    /// One item: `cells` in the table, `value` in JSON.
    pub fn push(&mut self, cells: Vec<String>, value: &Value) -> std::io::Result<()> {
        if self.json {
            let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into());
            let separator = if self.written == 0 { "[\n" } else { ",\n" };
            let indented: Vec<String> = text.lines().map(|l| format!("  {l}")).collect();
            let item = format!("{separator}{}", indented.join("\n"));
            self.out.write_all(item.as_bytes())?;
            self.written += 1;
            return Ok(());
        }
        self.page.push(cells);
        if self.page.len() == PAGE {
            self.flush_page()?;
        }
        Ok(())
    }

    fn flush_page(&mut self) -> std::io::Result<()> {
        widen(&mut self.widths, &self.page);
        if self.written == 0 {
            self.out
                .write_all(line(&self.widths, &self.headers).as_bytes())?;
        }
        for row in std::mem::take(&mut self.page) {
            self.out.write_all(line(&self.widths, &row).as_bytes())?;
            self.written += 1;
        }
        Ok(())
    }

    /// The end of the listing (the header alone, `[]`, when there was nothing).
    pub fn finish(mut self) -> std::io::Result<()> {
        if self.json {
            let end = if self.written == 0 { "[]\n" } else { "\n]\n" };
            self.out.write_all(end.as_bytes())?;
        } else {
            self.flush_page()?;
        }
        self.out.flush()
    }
}

/// `key: value` lines, keys aligned.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    pairs
        .iter()
        .map(|(k, v)| format!("{:<width$} {v}\n", format!("{k}:")))
        .collect()
}

/// Pretty JSON with a final newline.
pub fn json(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into());
    text.push('\n');
    text
}

/// An optional value for a table cell.
pub fn or_dash(value: Option<String>) -> String {
    value
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "-".into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let mut table = Table::new(&["A", "LONGER"]);
        table.row(vec!["wide-cell".into(), "x".into()]);
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "A          LONGER");
        assert_eq!(lines[1], "wide-cell  x");
    }

    #[test]
    fn fields_align() {
        let text = fields(&[("a", "1".into()), ("long", "2".into())]);
        assert_eq!(text, "a:    1\nlong: 2\n");
    }
}
