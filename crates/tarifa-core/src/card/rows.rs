//! CSV records as the card parsers need them: every record with the physical line it starts on
//! (quoted cells may span lines, blank lines are kept in the count), ragged rows allowed.

use super::error::CardError;

pub(super) struct Row {
    /// 1-based line where the record starts.
    pub(super) line: usize,
    pub(super) cells: Vec<String>,
}

impl Row {
    /// Cell `i`, trimmed; `""` past the end.
    pub(super) fn cell(&self, i: usize) -> &str {
        self.cells.get(i).map_or("", |c| c.trim())
    }

    pub(super) fn is_blank(&self) -> bool {
        self.cells.iter().all(|c| c.trim().is_empty())
    }

    /// The row as one text: unquoted titles and notes are split at their commas by the CSV
    /// reader, so join the cells back and drop the trailing empty ones.
    pub(super) fn joined(&self) -> String {
        let end = self
            .cells
            .iter()
            .rposition(|c| !c.trim().is_empty())
            .map_or(0, |i| i + 1);
        self.cells[..end].join(",").trim().to_owned()
    }
}

/// Reads every record (quoted cells may span lines); ragged rows are fine.
pub(super) fn read_rows(text: &str, source: &str) -> Result<Vec<Row>, CardError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    // `csv::Position::line` does not count the blank lines the reader skips, so lines are
    // counted from the byte offset instead (offsets only grow: one pass over the text).
    let bytes = text.as_bytes();
    let mut counted_to = 0usize;
    let mut line = 1usize;
    let mut line_at = |pos: Option<&csv::Position>| -> usize {
        let Some(pos) = pos else { return 0 };
        let mut at = (pos.byte() as usize).min(bytes.len());
        while at < bytes.len() && matches!(bytes[at], b'\r' | b'\n') {
            at += 1;
        }
        if at >= counted_to {
            line += bytes[counted_to..at]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            counted_to = at;
        }
        line
    };
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => rows.push(Row {
                line: line_at(record.position()),
                cells: record.iter().map(str::to_owned).collect(),
            }),
            Ok(false) => return Ok(rows),
            Err(e) => {
                let line = line_at(e.position());
                return Err(CardError::new(source, line, format!("CSV: {e}")));
            }
        }
    }
}
