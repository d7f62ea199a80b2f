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
