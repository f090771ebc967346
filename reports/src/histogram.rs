//! Latency figures that merge exactly: percentiles for people, the V2+DEFLATE serialised histogram
//! (base64) for machines. `report merge` adds histograms; it never averages percentiles.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Percentiles in microseconds, plus the histogram they came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LatencySummary {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    /// HdrHistogram V2 + DEFLATE, base64: what HdrHistogram's own tools read.
    pub histogram: String,
}

#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    #[error("the histogram is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("the histogram cannot be decoded: {0}")]
    Decode(String),
    #[error("the histograms cannot be added: {0}")]
    Add(String),
}

impl LatencySummary {
    /// A histogram as V2 + DEFLATE, base64: the form `report.json` and interval logs carry.
    pub fn encode(h: &Histogram<u64>) -> String {
        let mut bytes = Vec::new();
        // Serialising into a Vec only fails for histograms too large for the format, which ours are not.
        V2DeflateSerializer::new()
            .serialize(h, &mut bytes)
            .expect("histogram serialisation");
        STANDARD.encode(bytes)
    }

    /// Decode what [`LatencySummary::encode`] wrote.
    pub fn decode(encoded: &str) -> Result<Histogram<u64>, HistogramError> {
        let bytes = STANDARD.decode(encoded)?;
        Deserializer::new()
            .deserialize(&mut &bytes[..])
            .map_err(|e| HistogramError::Decode(e.to_string()))
    }

    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        let empty = h.is_empty();
        LatencySummary {
            count: h.len(),
            min: if empty { 0 } else { h.min() },
            mean: if empty { 0.0 } else { h.mean() },
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            histogram: Self::encode(h),
        }
    }

    pub fn histogram(&self) -> Result<Histogram<u64>, HistogramError> {
        Self::decode(&self.histogram)
    }

    /// The exact union of two summaries' histograms.
    pub fn merge(&self, other: &LatencySummary) -> Result<LatencySummary, HistogramError> {
        let mut a = self.histogram()?;
        let b = other.histogram()?;
        a.add(&b).map_err(|e| HistogramError::Add(e.to_string()))?;
        Ok(LatencySummary::from_histogram(&a))
    }
}

/// A histogram for microsecond latencies: 1 µs to 1 hour, 3 significant figures, auto-resizing.
pub fn new_latency_histogram() -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
    h.auto(true);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_merge_are_exact() {
        let mut a = new_latency_histogram();
        let mut b = new_latency_histogram();
        let mut whole = new_latency_histogram();
        for v in 1..=10_000u64 {
            let h = if v % 3 == 0 { &mut a } else { &mut b };
            h.record(v * 7).unwrap();
            whole.record(v * 7).unwrap();
        }
        let merged = LatencySummary::from_histogram(&a)
            .merge(&LatencySummary::from_histogram(&b))
            .unwrap();
        assert_eq!(merged, LatencySummary::from_histogram(&whole));
        assert_eq!(merged.count, 10_000);
    }
}
