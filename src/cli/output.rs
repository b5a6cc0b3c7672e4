//! Tables for people, JSON for scripts.

use std::io::Write;

/// How results are printed.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// JSON instead of a table.
    pub json: bool,
}

impl Output {
    /// Prints rows as an aligned table (or `json` when `--json`).
    pub fn table(&self, headers: &[&str], rows: &[Vec<String>], json: serde_json::Value) {
        let mut stdout = std::io::stdout().lock();
        if self.json {
            let _ = writeln!(stdout, "{json}");
        } else {
            let _ = stdout.write_all(render_table(headers, rows).as_bytes());
        }
    }
}

/// Columns padded to their widest cell, two spaces apart.
pub fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let text: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = widths.get(i).copied().unwrap_or(0)))
            .collect();
        out.push_str(text.join("  ").trim_end());
        out.push('\n');
    };
    line(headers.to_vec(), &mut out);
    for row in rows {
        line(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_table_alignment() {
        let text = render_table(&["A", "LONGER"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(text, "A    LONGER\nxyz  1\n");
    }
}
