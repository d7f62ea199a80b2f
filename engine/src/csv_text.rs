//! Agencies' files as text, whatever saved them. They should be UTF-8, but Excel's "CSV (Comma
//! delimited)" and other Windows exports write Windows-1252: one `José` in a description must not
//! keep a whole state hotlist, NCIC extract or camera registry from loading.

/// The row as text: UTF-8 when it is, else read as Windows-1252.
pub(crate) fn text_record(record: csv::ByteRecord) -> csv::StringRecord {
    csv::StringRecord::from_byte_record(record).unwrap_or_else(|error| {
        let record = error.into_byte_record();
        let mut text = csv::StringRecord::with_capacity(record.as_slice().len(), record.len());
        for field in &record {
            text.push_field(
                &encoding_rs::WINDOWS_1252
                    .decode_without_bom_handling(field)
                    .0,
            );
        }
        text.set_position(record.position().cloned());
        text
    })
}

/// A line as text: UTF-8 when it is, else read as Windows-1252.
pub(crate) fn text_line(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|error| {
        encoding_rs::WINDOWS_1252
            .decode_without_bom_handling(error.as_bytes())
            .0
            .into_owned()
    })
}

/// Where the CSV reader is within the text, as the `csv` crate's own parser (csv-core, with the
/// defaults our loaders use: `,` delimiter, `"` quote, doubled quotes as escapes, any of CR, LF or
/// CRLF ending a record, empty lines skipped) sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuoteState {
    /// Before a record's first byte: line ends here are empty lines, which are skipped.
    BetweenRecords,
    /// After a delimiter.
    FieldStart,
    Unquoted,
    /// Inside a quoted field, which opened on this physical line.
    Quoted {
        opened_on_line: u64,
    },
    /// A quote inside a quoted field: closing it, or the first of an escaped `""`.
    QuoteInQuoted {
        opened_on_line: u64,
    },
}

/// Reads CSV text through to the `csv` crate while following its quoting, to know what the crate
/// does not tell: the physical line each record starts on (the crate's `Position::line` drifts
/// with CRLF endings and skipped empty lines) and whether the text ended inside a quoted field.
/// A quoted field may span lines, so a missing closing quote makes the crate read every row after
/// it into that one field, silently.
pub(crate) struct RecordLines<R> {
    inner: R,
    state: QuoteState,
    /// The physical line of the byte being looked at (1-based).
    line: u64,
    /// Start lines of the records read ahead of the CSV parser, oldest first.
    record_starts: std::collections::VecDeque<u64>,
}

impl<R> RecordLines<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            state: QuoteState::BetweenRecords,
            line: 1,
            record_starts: std::collections::VecDeque::new(),
        }
    }

    /// The physical line the next record the CSV parser returns starts on. Call once per record,
    /// the header included, in order.
    pub(crate) fn next_record_line(&mut self) -> Option<u64> {
        self.record_starts.pop_front()
    }

    /// Once the text is read to its end: the line a quoted field opened on that was never closed.
    pub(crate) fn unterminated_quote_line(&self) -> Option<u64> {
        match self.state {
            QuoteState::Quoted { opened_on_line } => Some(opened_on_line),
            _ => None,
        }
    }

    fn step(&mut self, byte: u8) {
        use QuoteState::*;
        let line_end = byte == b'\n' || byte == b'\r';
        self.state = match (self.state, byte) {
            (BetweenRecords, _) if line_end => BetweenRecords,
            (BetweenRecords, _) => {
                self.record_starts.push_back(self.line);
                self.state = FieldStart;
                return self.step(byte);
            }
            (FieldStart, b'"') => Quoted {
                opened_on_line: self.line,
            },
            (FieldStart | Unquoted, b',') => FieldStart,
            (FieldStart | Unquoted, _) if line_end => BetweenRecords,
            (FieldStart | Unquoted, _) => Unquoted,
            (Quoted { opened_on_line }, b'"') => QuoteInQuoted { opened_on_line },
            (Quoted { .. }, _) => self.state,
            (QuoteInQuoted { opened_on_line }, b'"') => Quoted { opened_on_line },
            (QuoteInQuoted { .. }, b',') => FieldStart,
            (QuoteInQuoted { .. }, _) if line_end => BetweenRecords,
            // csv-core keeps what follows a closing quote as the rest of the field, unquoted.
            (QuoteInQuoted { .. }, _) => Unquoted,
        };
        if byte == b'\n' {
            self.line += 1;
        }
    }
}

impl<R: std::io::Read> std::io::Read for RecordLines<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        for &byte in &buf[..read] {
            self.step(byte);
        }
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn follow(text: &str) -> (Vec<u64>, Option<u64>) {
        let mut lines = RecordLines::new(text.as_bytes());
        std::io::copy(&mut (&mut lines).take(u64::MAX), &mut std::io::sink()).unwrap();
        let starts = std::iter::from_fn(|| lines.next_record_line()).collect();
        (starts, lines.unterminated_quote_line())
    }

    #[test]
    fn records_start_on_their_physical_lines_whatever_the_line_ends() {
        assert_eq!(
            follow("a,b\r\nc,d\r\n\r\n\r\ne,f\r\n"),
            (vec![1, 2, 5], None)
        );
        assert_eq!(follow("a,b\n\n\n\nc,\"d\ne\"\nf\n"), (vec![1, 5, 7], None));
        assert_eq!(follow("a\rb\r\n"), (vec![1, 1], None));
    }

    #[test]
    fn a_quoted_field_left_open_at_the_end_names_the_line_it_opened_on() {
        assert_eq!(follow("a,b\nc,\"d\ne,f\n").1, Some(2));
        assert_eq!(follow("a,\"b\"\"c\"\nd\n").1, None);
        assert_eq!(
            follow("a,x\"b\nd\n").1,
            None,
            "a quote inside a field is text"
        );
        assert_eq!(follow("a,\"b\"x\"\n").1, None);
    }
}
