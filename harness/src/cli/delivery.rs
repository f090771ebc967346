//! `--s3-prefix` (and `load --keep-delivered`): flags → a [`DeliveryLog`], and its files → the report.

use std::path::Path;
use std::sync::Arc;

use clap::Args;

use crate::delivery::{DeliveryLog, S3Prefix, Settings};
use crate::errors::CliError;
use crate::targets::TargetSpec;

/// Where delivered records are filed (shared by `check`, `replay` and `load`).
#[derive(Debug, Clone, Args)]
pub struct DeliveryArgs {
    /// File delivered records under the S3 prefix Firehose would use, in its syntax:
    /// 'data/!{partitionKeyFromLambda:customer}/!{timestamp:yyyy/MM/dd}/' (needs --report-dir).
    #[arg(long, value_name = "EXPR")]
    pub s3_prefix: Option<String>,
}

impl DeliveryArgs {
    /// The log a run writes to `REPORT_DIR`, or `None` without a report dir (nowhere to write).
    pub fn log(
        &self,
        report_dir: Option<&Path>,
        target: &TargetSpec,
    ) -> Result<Option<Arc<DeliveryLog>>, CliError> {
        let s3_prefix = self
            .s3_prefix
            .as_deref()
            .map(S3Prefix::parse)
            .transpose()
            .map_err(|e| CliError::usage(format!("--s3-prefix: {e}; {}", e.hint())))?;
        let Some(dir) = report_dir else {
            if s3_prefix.is_some() {
                return Err(CliError::usage(
                    "--s3-prefix files records under --report-dir; give one",
                ));
            }
            return Ok(None);
        };
        let function_name = match target {
            TargetSpec::InvokeHttp { function, .. } => function.clone(),
            _ => "function".into(),
        };
        let settings = Settings {
            s3_prefix,
            function_name,
            ..Settings::default()
        };
        let log = DeliveryLog::create(settings, dir).map_err(|e| {
            CliError::Io(format!(
                "cannot create delivered/ and processing-failed/ under {}: {e}",
                dir.display()
            ))
        })?;
        Ok(Some(Arc::new(log)))
    }
}

/// Finish the log under `dir` and add its section (and its warnings) to `report`; a failure to
/// write is a note, not a lost report.
pub fn finish(log: &DeliveryLog, dir: &Path, report: &mut firehose_reports::Report) {
    match log.finish() {
        Ok(section) => {
            if section.undelimited_records > 0
                && let Some(note) = section.notes.first()
            {
                report.notes.push(note.clone());
            }
            report.delivery = Some(section);
        }
        Err(e) => report.notes.push(format!(
            "delivered/ and processing-failed/ could not be written under {}: {e}",
            dir.display()
        )),
    }
}

/// One line for the terminal: where the records went.
pub fn summary_line(section: &firehose_reports::DeliverySection, dir: &Path) -> String {
    format!(
        "delivery: {} records Ok in {} · {} in {} · {} Dropped ({})",
        section.delivered_records,
        dir.join(&section.delivered_dir).display(),
        section.failed_records,
        dir.join(&section.processing_failed_dir).display(),
        section.dropped_records,
        dir.join(&section.dropped_file).display(),
    )
}
