//! What Firehose itself would do at a given ingest rate (`FIREHOSE_CONTRACT.md` §5), so a load run can
//! answer "at 5 MB/s this transformer needs p99 X ms and N concurrent instances".
//!
//! Firehose buffers incoming data and invokes the transformer when the buffer reaches the size hint
//! (0.2–3 MB, default 1 MB) or when the buffer interval (0–900 s, default 60 s) runs out, whichever
//! comes first. Each shard buffers on its own and may have at most 5 invocations outstanding. So, with
//! ingest `I` bytes/s spread over `n` shards, size hint `S` and interval `T`:
//!
//! - a shard fills its buffer in `S / (I/n)` seconds; if that is within `T`, batches are `S` bytes,
//!   otherwise the interval fires first with `I·T/n` bytes;
//! - the invocation rate is `I / batch`;
//! - at most `5·n` invocations are outstanding: beyond that Firehose falls behind, which the engine
//!   shows as late sends.

use std::time::Duration;

use firehose_generators::wire::{BUFFER_HINT_MAX, BUFFER_HINT_MIN};

use crate::values::{format_count, format_duration};

/// Outstanding invocations Firehose allows per shard for S3, Redshift and OpenSearch destinations
/// (`FIREHOSE_CONTRACT.md` §5; Splunk's 10 is not modelled).
pub const OUTSTANDING_PER_SHARD: u32 = 5;

/// The longest buffer interval Firehose accepts.
pub const MAX_BUFFER_INTERVAL: Duration = Duration::from_secs(900);

/// What the user tells us about their delivery stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FirehoseSettings {
    /// Bytes per second arriving at the stream, all shards together.
    pub ingest: f64,
    /// The Lambda processor's buffer-size hint, in bytes.
    pub buffer_size: u64,
    pub buffer_interval: Duration,
    pub shards: u32,
}

/// Which buffer hint ends a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Size,
    Interval,
}

/// What Firehose would do with those settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FirehoseModel {
    pub settings: FirehoseSettings,
    /// Invocations per second over all shards.
    pub rate: f64,
    /// Bytes of records per invocation (before base64).
    pub batch_bytes: u64,
    /// The outstanding-invocation limit over all shards: the in-flight cap of the run.
    pub outstanding: u32,
    pub trigger: Trigger,
}

impl FirehoseSettings {
    /// Check the settings against Firehose's legal ranges, then derive the model.
    pub fn derive(self) -> Result<FirehoseModel, String> {
        if !(self.ingest.is_finite() && self.ingest > 0.0) {
            return Err("the ingest rate must be more than zero".into());
        }
        if !(BUFFER_HINT_MIN as u64..=BUFFER_HINT_MAX as u64).contains(&self.buffer_size) {
            return Err(format!(
                "--buffer-size {} bytes is outside Firehose's range for Lambda processors, {}..{} bytes",
                format_count(self.buffer_size),
                format_count(BUFFER_HINT_MIN as u64),
                format_count(BUFFER_HINT_MAX as u64)
            ));
        }
        if self.buffer_interval > MAX_BUFFER_INTERVAL {
            return Err(format!(
                "--buffer-interval {} is over Firehose's maximum of 900s",
                format_duration(self.buffer_interval)
            ));
        }
        if self.shards == 0 {
            return Err("--firehose-shards must be at least 1".into());
        }
        let per_shard = self.ingest / f64::from(self.shards);
        let by_interval = per_shard * self.buffer_interval.as_secs_f64();
        let (batch, trigger) = if by_interval >= self.buffer_size as f64 {
            (self.buffer_size as f64, Trigger::Size)
        } else {
            (by_interval, Trigger::Interval)
        };
        if batch < 1.0 {
            return Err(format!(
                "at {}/s over {} shard(s), a {} buffer interval collects less than one byte; raise the ingest or the interval",
                format_count(self.ingest as u64),
                self.shards,
                format_duration(self.buffer_interval)
            ));
        }
        Ok(FirehoseModel {
            settings: self,
            rate: self.ingest / batch,
            batch_bytes: batch.round() as u64,
            outstanding: OUTSTANDING_PER_SHARD * self.shards,
            trigger,
        })
    }
}

impl FirehoseModel {
    /// One sentence a person can check against the AWS console.
    pub fn describe(&self) -> String {
        let s = &self.settings;
        let why = match self.trigger {
            Trigger::Size => format!(
                "the {}-byte buffer fills before the {} interval",
                format_count(s.buffer_size),
                format_duration(s.buffer_interval)
            ),
            Trigger::Interval => format!(
                "the {} interval ends before the {}-byte buffer fills",
                format_duration(s.buffer_interval),
                format_count(s.buffer_size)
            ),
        };
        format!(
            "at {} bytes/s over {} shard{}, Firehose invokes {:.3}/s with batches of about {} bytes ({why}) and allows {} outstanding invocations",
            format_count(s.ingest.round() as u64),
            s.shards,
            if s.shards == 1 { "" } else { "s" },
            self.rate,
            format_count(self.batch_bytes),
            self.outstanding
        )
    }
}

/// What a load run measured, for the model's verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measured {
    /// Invocations per second achieved.
    pub rate: f64,
    /// Mean service time, seconds.
    pub mean_service_s: f64,
    /// Corrected response time, µs.
    pub p99_us: u64,
    pub peak_in_flight: u64,
    /// Sends that waited for the outstanding limit.
    pub waited_for_limit: u64,
    /// How long the measured run lasted.
    pub run: Duration,
}

impl FirehoseModel {
    /// The verdict, formula included, so a reader can redo it: "at 5,000,000 bytes/s: 0.61
    /// instances by Little's law (5.000/s × 122.4 ms mean service time) of 5 allowed; p99 250 ms
    /// against the 60s buffer interval — met".
    pub fn verdict(&self, m: &Measured) -> String {
        let s = &self.settings;
        let instances = m.rate * m.mean_service_s;
        let interval = s.buffer_interval.as_micros() as u64;
        let fits_limit = instances <= f64::from(self.outstanding) && m.waited_for_limit == 0;
        let fits_interval = interval == 0 || m.p99_us <= interval;
        let mut out = format!(
            "at {} bytes/s: {:.2} instances by Little's law ({:.3}/s achieved × {:.1} ms mean service time) of {} outstanding allowed, peak {}; p99 {} (corrected) against the {} buffer interval — {}",
            format_count(s.ingest.round() as u64),
            instances,
            m.rate,
            m.mean_service_s * 1000.0,
            self.outstanding,
            m.peak_in_flight,
            firehose_reports::markdown::micros(m.p99_us),
            format_duration(s.buffer_interval),
            if fits_limit && fits_interval {
                "met"
            } else {
                "not met"
            }
        );
        if m.waited_for_limit > 0 {
            out.push_str(&format!(
                "; {} invocations waited for the outstanding limit, as Firehose's own buffer would back up",
                format_count(m.waited_for_limit)
            ));
        } else if !fits_interval {
            out.push_str(
                "; an invocation slower than the buffer interval lets the next batch wait",
            );
        }
        out
    }

    /// A run shorter than one buffer interval cannot show what Firehose would do when the interval
    /// ends a batch: say so, rather than squeeze a minute's buffer into ten seconds without a word.
    pub fn short_run_warning(&self, run: Duration) -> Option<String> {
        let interval = self.settings.buffer_interval;
        (self.trigger == Trigger::Interval && run < interval).then(|| {
            format!(
                "the run ({}) is shorter than one {} buffer interval: Firehose would invoke about {:.2} times in it, so these figures describe only the first batches, not a steady state; run for several intervals (--duration {})",
                format_duration(run),
                format_duration(interval),
                self.rate * run.as_secs_f64(),
                format_duration(interval * 3)
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(ingest: f64, size: u64, interval: u64, shards: u32) -> FirehoseSettings {
        FirehoseSettings {
            ingest,
            buffer_size: size,
            buffer_interval: Duration::from_secs(interval),
            shards,
        }
    }

    #[test]
    fn size_hint_fills_first_at_high_ingest() {
        let m = settings(5e6, 1_000_000, 60, 1).derive().unwrap();
        assert_eq!(m.trigger, Trigger::Size);
        assert_eq!(m.batch_bytes, 1_000_000);
        assert!((m.rate - 5.0).abs() < 1e-9);
        assert_eq!(m.outstanding, 5);
        assert!(m.describe().contains("5.000/s"), "{}", m.describe());
    }

    #[test]
    fn interval_fires_first_at_low_ingest() {
        // 10 KB/s, 60 s: 600 KB per batch, one per minute.
        let m = settings(10_000.0, 1_000_000, 60, 1).derive().unwrap();
        assert_eq!(m.trigger, Trigger::Interval);
        assert_eq!(m.batch_bytes, 600_000);
        assert!((m.rate - 1.0 / 60.0).abs() < 1e-9);
    }

    #[test]
    fn shards_buffer_separately_and_raise_the_outstanding_limit() {
        // 4 shards at 100 KB/s each, 60 s interval: each fills 1 MB in 10 s.
        let m = settings(400_000.0, 1_000_000, 60, 4).derive().unwrap();
        assert_eq!(m.trigger, Trigger::Size);
        assert!((m.rate - 0.4).abs() < 1e-9);
        assert_eq!(m.outstanding, 20);
        // 4 shards at 1 KB/s: the interval fires with 60 KB each.
        let m = settings(4_000.0, 1_000_000, 60, 4).derive().unwrap();
        assert_eq!(m.batch_bytes, 60_000);
        assert!((m.rate - 4.0 / 60.0).abs() < 1e-9);
    }

    #[test]
    fn the_verdict_states_its_formula_and_short_runs_are_flagged() {
        let m = settings(5e6, 1_000_000, 60, 1).derive().unwrap();
        let v = m.verdict(&Measured {
            rate: 5.0,
            mean_service_s: 0.2,
            p99_us: 250_000,
            peak_in_flight: 2,
            waited_for_limit: 0,
            run: Duration::from_secs(30),
        });
        assert!(v.contains("1.00 instances by Little's law"), "{v}");
        assert!(v.contains("5.000/s achieved × 200.0 ms"), "{v}");
        assert!(v.ends_with("— met"), "{v}");
        let slow = m.verdict(&Measured {
            p99_us: 61_000_000,
            ..Measured {
                rate: 5.0,
                mean_service_s: 0.2,
                p99_us: 0,
                peak_in_flight: 2,
                waited_for_limit: 0,
                run: Duration::from_secs(30),
            }
        });
        assert!(slow.contains("not met"), "{slow}");
        // 10 KB/s: the 60 s interval ends every batch; a 10 s run is shorter than one.
        let low = settings(10_000.0, 1_000_000, 60, 1).derive().unwrap();
        assert!(
            low.short_run_warning(Duration::from_secs(10))
                .unwrap()
                .contains("shorter than one 1m buffer interval")
        );
        assert!(low.short_run_warning(Duration::from_secs(120)).is_none());
        assert!(m.short_run_warning(Duration::from_secs(10)).is_none());
    }

    #[test]
    fn illegal_settings_say_why() {
        assert!(
            settings(5e6, 100_000, 60, 1)
                .derive()
                .unwrap_err()
                .contains("range")
        );
        assert!(
            settings(5e6, 1_000_000, 901, 1)
                .derive()
                .unwrap_err()
                .contains("900s")
        );
        assert!(settings(0.0, 1_000_000, 60, 1).derive().is_err());
        assert!(settings(5e6, 1_000_000, 60, 0).derive().is_err());
        assert!(settings(5e6, 1_000_000, 0, 1).derive().is_err());
    }
}
