//! `report.json`: the model, pretty-printed.

use std::io::Write;

use crate::Report;

pub fn write(report: &Report, out: &mut impl Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    out.write_all(b"\n")
}

/// Read a `report.json` back (for `report merge` and `report compare`).
pub fn read(bytes: &[u8]) -> Result<Report, serde_json::Error> {
    serde_json::from_slice(bytes)
}
