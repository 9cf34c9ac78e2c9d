//! The figures of a run: every round's figure per scenario, module, thread count and key kind;
//! printed as a Markdown table (the median of the rounds, and its ratio to raw OpenSSL's median
//! in the same run) and written as JSON, one record per figure.

use std::path::Path;

use serde::Serialize;

use crate::measure::median;
use crate::modules::KeyKind;
use crate::scenarios::Scenario;
use crate::Result;

/// The column of the baseline.
pub const OPENSSL: &str = "OpenSSL";

/// One figure's rounds, or why the module could not run it.
struct Cell {
    scenario: usize,
    threads: usize,
    kind: Option<KeyKind>,
    module: String,
    rounds: Vec<f64>,
    error: Option<String>,
}

/// The machine and the run's settings, at the head of the output.
#[derive(Serialize)]
pub struct Header {
    pub date: String,
    pub machine: String,
    pub load_before: String,
    pub load_after: String,
    pub seconds_per_figure: f64,
    pub ops_per_figure: Option<u64>,
    pub rounds: usize,
    pub lookup_keys: usize,
    /// Per module column: the library's own description and version.
    pub modules: Vec<(String, String)>,
}

#[derive(Default)]
pub struct Report {
    cells: Vec<Cell>,
    /// Columns in order, OpenSSL first.
    columns: Vec<String>,
}

#[derive(Serialize)]
struct Record<'a> {
    scenario: &'a str,
    title: &'a str,
    module: &'a str,
    threads: usize,
    key: Option<&'a str>,
    ops_per_s: Option<f64>,
    rounds: &'a [f64],
    openssl_ops_per_s: Option<f64>,
    ratio: Option<f64>,
    error: Option<&'a str>,
}

impl Report {
    pub fn new(modules: impl IntoIterator<Item = String>) -> Report {
        Report {
            cells: Vec::new(),
            columns: std::iter::once(OPENSSL.to_owned()).chain(modules).collect(),
        }
    }

    fn cell(
        &mut self,
        scenario: usize,
        threads: usize,
        kind: Option<KeyKind>,
        module: &str,
    ) -> &mut Cell {
        let at = self.cells.iter().position(|c| {
            c.scenario == scenario && c.threads == threads && c.kind == kind && c.module == module
        });
        let at = at.unwrap_or_else(|| {
            self.cells.push(Cell {
                scenario,
                threads,
                kind,
                module: module.to_owned(),
                rounds: Vec::new(),
                error: None,
            });
            self.cells.len() - 1
        });
        &mut self.cells[at]
    }

    /// Records one round's figure (or the reason there is none).
    pub fn add(
        &mut self,
        scenario: usize,
        threads: usize,
        kind: Option<KeyKind>,
        module: &str,
        figure: Result<f64>,
    ) {
        let cell = self.cell(scenario, threads, kind, module);
        match figure {
            Ok(f) => cell.rounds.push(f),
            Err(e) => cell.error = Some(e.to_string()),
        }
    }

    /// Whether this module already failed this scenario (it is not tried again).
    pub fn failed(&self, scenario: usize, kind: Option<KeyKind>, module: &str) -> bool {
        self.cells.iter().any(|c| {
            c.scenario == scenario && c.kind == kind && c.module == module && c.error.is_some()
        })
    }

    fn median_of(
        &self,
        scenario: usize,
        threads: usize,
        kind: Option<KeyKind>,
        module: &str,
    ) -> Option<f64> {
        self.cells
            .iter()
            .find(|c| {
                c.scenario == scenario
                    && c.threads == threads
                    && c.kind == kind
                    && c.module == module
                    && c.error.is_none()
            })
            .and_then(|c| median(&c.rounds))
    }

    fn baseline(&self, scenario: usize, threads: usize) -> Option<f64> {
        self.median_of(scenario, threads, None, OPENSSL)
    }

    /// The table: one row per scenario, thread count and key kind; each module's median with
    /// its ratio to raw OpenSSL's.
    pub fn table(&self, scenarios: &[&Scenario]) -> String {
        let mut out = String::new();
        out.push_str("| scenario | threads | key |");
        for column in &self.columns {
            out.push_str(&format!(" {column} |"));
        }
        out.push_str("\n| --- | ---: | --- |");
        out.push_str(&" ---: |".repeat(self.columns.len()));
        out.push('\n');
        let mut rows: Vec<(usize, usize, KeyKind)> = Vec::new();
        for c in &self.cells {
            if let Some(kind) = c.kind {
                if !rows.contains(&(c.scenario, c.threads, kind)) {
                    rows.push((c.scenario, c.threads, kind));
                }
            }
        }
        rows.sort_by_key(|&(s, t, k)| (s, t, k == KeyKind::Session));
        for (scenario, threads, kind) in rows {
            let raw = self.baseline(scenario, threads);
            out.push_str(&format!(
                "| {} | {threads} | {} |",
                scenarios[scenario].title,
                kind.name()
            ));
            for column in &self.columns {
                let text = if column == OPENSSL {
                    raw.map_or_else(|| "—".to_owned(), |r| format!("{}/s", number(r)))
                } else {
                    match self.median_of(scenario, threads, Some(kind), column) {
                        Some(m) => match raw {
                            Some(r) => format!("{}/s ({:.2}×)", number(m), m / r),
                            None => format!("{}/s", number(m)),
                        },
                        None => "—".to_owned(),
                    }
                };
                out.push_str(&format!(" {text} |"));
            }
            out.push('\n');
        }
        out
    }

    /// Why a module has no figure for a scenario, once per module and scenario.
    pub fn failures(&self, scenarios: &[&Scenario]) -> Vec<String> {
        let mut seen = Vec::new();
        for c in &self.cells {
            if let Some(e) = &c.error {
                let line = format!("{}: {}: {e}", c.module, scenarios[c.scenario].id);
                if !seen.contains(&line) {
                    seen.push(line);
                }
            }
        }
        seen
    }

    pub fn write_json(&self, path: &Path, header: &Header, scenarios: &[&Scenario]) -> Result<()> {
        let records: Vec<Record<'_>> = self
            .cells
            .iter()
            .map(|c| {
                let ops = if c.error.is_none() {
                    median(&c.rounds)
                } else {
                    None
                };
                let raw = self.baseline(c.scenario, c.threads);
                Record {
                    scenario: scenarios[c.scenario].id,
                    title: scenarios[c.scenario].title,
                    module: &c.module,
                    threads: c.threads,
                    key: c.kind.map(KeyKind::name),
                    ops_per_s: ops,
                    rounds: &c.rounds,
                    openssl_ops_per_s: raw,
                    ratio: ops.zip(raw).map(|(m, r)| m / r),
                    error: c.error.as_deref(),
                }
            })
            .collect();
        let document = serde_json::json!({ "run": header, "records": records });
        std::fs::write(path, serde_json::to_string_pretty(&document)? + "\n")?;
        Ok(())
    }
}

/// A figure for the table: three significant digits at most below 1 000, then whole numbers
/// with a space between thousands (`43 460`).
pub fn number(x: f64) -> String {
    if x < 10.0 {
        return format!("{x:.2}");
    }
    if x < 100.0 {
        return format!("{x:.1}");
    }
    let digits = format!("{:.0}", x);
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(ch);
    }
    out
}
