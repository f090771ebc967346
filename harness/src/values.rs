//! The value grammar: one parser for every flag and scenario key (DESIGN.md).
//!
//! - durations `250ms`, `5s`, `1m30s`, `2h` — a unit is required;
//! - sizes `512`, `64KiB`, `1MB` — `KB`/`MB`/`GB` are powers of ten, `KiB`/`MiB`/`GiB` powers of two;
//! - ranges `MIN..MAX` of either (`1..500`, `0..64KiB`); `N` alone means `N..N`;
//! - rates `50`, `50/s`, `120/m`, `0.5/s`;
//! - stages `30s:100,1m:100,30s:0`;
//! - byte rates `5MB/s`, `300MB/m` (the Firehose model's ingest);
//! - ratios `0.1%` or `0.001` (error-rate thresholds, tolerances);
//! - partitions `I/N`, 1-based (`--partition 2/4` is the second quarter of the schedule).
//!
//! Errors are one line that quotes the input and shows a valid example.

use std::time::Duration;

/// Parse a duration. A unit is required so `--timeout 5` cannot silently mean milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a duration; write e.g. 250ms, 5s, 1m30s");
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += n * secs;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() || total > 1e9 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(total))
}

/// `1m30s`, `250ms`, `5s` — the shortest exact spelling.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return format!("{}µs", d.as_micros());
    }
    if ms % 1000 != 0 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

/// Parse a size in bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || {
        format!("`{s}` is not a size; write e.g. 512, 64KiB, 1MB (KB/MB = 1000s, KiB/MiB = 1024s)")
    };
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_' || c == ','))
        .unwrap_or(t.len());
    let digits: String = t[..split]
        .chars()
        .filter(|c| *c != '_' && *c != ',')
        .collect();
    if digits.is_empty() {
        return Err(bad());
    }
    let n: f64 = digits.parse().map_err(|_| bad())?;
    let mult = match t[split..].trim() {
        "" | "B" | "b" => 1.0,
        "KB" | "kB" | "K" | "k" => 1e3,
        "MB" | "M" => 1e6,
        "GB" | "G" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let v = n * mult;
    if !v.is_finite() || !(0.0..=1e15).contains(&v) || v.fract() != 0.0 {
        return Err(bad());
    }
    Ok(v as u64)
}

pub use firehose_reports::format_count;

/// Parse `MIN..MAX` (or `N`) with `item` for each end.
pub fn parse_range<T: PartialOrd + Copy + std::fmt::Display>(
    s: &str,
    item: impl Fn(&str) -> Result<T, String>,
) -> Result<(T, T), String> {
    let (lo, hi) = match s.split_once("..") {
        Some((lo, hi)) => (item(lo)?, item(hi.trim_start_matches('='))?),
        None => {
            let v = item(s)?;
            (v, v)
        }
    };
    if lo > hi {
        return Err(format!("`{s}`: the range is empty ({lo} > {hi})"));
    }
    Ok((lo, hi))
}

/// A rate in events per second: `50`, `50/s`, `120/m`, `0.5/s`, `3600/h`.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let bad = || format!("`{s}` is not a rate; write e.g. 50, 50/s, 120/m, 0.5/s");
    let (n, per) = match s.trim().split_once('/') {
        Some((n, unit)) => (
            n,
            match unit {
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => return Err(bad()),
            },
        ),
        None => (s.trim(), 1.0),
    };
    let v: f64 = n.parse().map_err(|_| bad())?;
    if !v.is_finite() || v < 0.0 {
        return Err(bad());
    }
    Ok(v / per)
}

/// One k6-style stage: ramp linearly to `target` per second over `duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub target: f64,
}

/// `30s:100,1m:100,30s:0`.
pub fn parse_stages(s: &str) -> Result<Vec<Stage>, String> {
    let stages = s
        .split(',')
        .map(|part| {
            let (d, r) = part
                .split_once(':')
                .ok_or_else(|| format!("stage `{part}` is not DURATION:RATE, e.g. 30s:100"))?;
            Ok(Stage {
                duration: parse_duration(d)?,
                target: parse_rate(r)?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    if stages.iter().all(|st| st.duration.is_zero()) {
        return Err(format!("`{s}`: the stages last no time"));
    }
    Ok(stages)
}

/// A byte rate in bytes per second: `5MB/s`, `300MB/m`, `1GiB/h` (sizes as in [`parse_size`]).
pub fn parse_byte_rate(s: &str) -> Result<f64, String> {
    let bad = || format!("`{s}` is not a byte rate; write e.g. 5MB/s, 300MB/m");
    let (size, per) = s.trim().split_once('/').ok_or_else(bad)?;
    let per = match per {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    let bytes = parse_size(size).map_err(|_| bad())?;
    Ok(bytes as f64 / per)
}

/// A ratio: `0.1%` is 0.001, `0.001` is 0.001. Percentages say what they mean, so prefer them.
pub fn parse_ratio(s: &str) -> Result<f64, String> {
    let bad = || format!("`{s}` is not a ratio; write e.g. 0.1% or 0.001");
    let t = s.trim();
    let (n, scale) = match t.strip_suffix('%') {
        Some(n) => (n, 0.01),
        None => (t, 1.0),
    };
    let v: f64 = n.trim().parse().map_err(|_| bad())?;
    if !v.is_finite() || v < 0.0 {
        return Err(bad());
    }
    Ok(v * scale)
}

/// `I/N`: the I-th of N equal slices, 1-based, as `cargo nextest --partition count:I/N` counts.
pub fn parse_partition(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("`{s}` is not a partition; write I/N with 1 <= I <= N, e.g. 2/4");
    let (i, n) = s.trim().split_once('/').ok_or_else(bad)?;
    let i: u32 = i.trim().parse().map_err(|_| bad())?;
    let n: u32 = n.trim().parse().map_err(|_| bad())?;
    if n == 0 || i == 0 || i > n {
        return Err(bad());
    }
    Ok((i, n))
}

/// Split a comma list, trimming items and dropping empty ones.
pub fn parse_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// `K=V` for `--env`.
pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

/// `K: V` for `--header`.
pub fn parse_header(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(format!("`{s}` is not a header; write 'Name: value'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("0.5s").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        for bad in ["5", "", "s", "5 parsecs", "1m30", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1MB").unwrap(), 1_000_000);
        assert_eq!(parse_size("64KiB").unwrap(), 65_536);
        assert_eq!(parse_size("0.2MB").unwrap(), 200_000);
        assert_eq!(parse_size("1_024_000").unwrap(), 1_024_000);
        assert_eq!(parse_size("512").unwrap(), 512);
        for bad in ["", "MB", "1XB", "-1", "0.5"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(format_count(6_291_456), "6,291,456");
    }

    #[test]
    fn ranges_rates_stages() {
        assert_eq!(parse_range("1..500", parse_size).unwrap(), (1, 500));
        assert_eq!(parse_range("0..64KiB", parse_size).unwrap(), (0, 65_536));
        assert_eq!(parse_range("7", parse_size).unwrap(), (7, 7));
        assert!(parse_range("9..3", parse_size).is_err());
        assert_eq!(parse_rate("120/m").unwrap(), 2.0);
        assert_eq!(parse_rate("0.5/s").unwrap(), 0.5);
        assert_eq!(parse_rate("50").unwrap(), 50.0);
        assert!(parse_rate("fast").is_err());
        let st = parse_stages("30s:100,1m:100,30s:0").unwrap();
        assert_eq!(st.len(), 3);
        assert_eq!(st[1].duration, Duration::from_secs(60));
        assert!(parse_stages("30s").is_err());
        assert!(parse_stages("30s:fast").is_err());
        assert!(parse_stages("0s:10").is_err());
    }

    #[test]
    fn byte_rates_ratios_partitions() {
        assert_eq!(parse_byte_rate("5MB/s").unwrap(), 5_000_000.0);
        assert_eq!(parse_byte_rate("60MB/m").unwrap(), 1_000_000.0);
        assert!(parse_byte_rate("5MB").is_err());
        assert!(parse_byte_rate("5MB/day").is_err());
        assert!((parse_ratio("0.1%").unwrap() - 0.001).abs() < 1e-12);
        assert_eq!(parse_ratio("0.25").unwrap(), 0.25);
        assert!(parse_ratio("-1%").is_err());
        assert!(parse_ratio("lots").is_err());
        assert_eq!(parse_partition("2/4").unwrap(), (2, 4));
        assert_eq!(parse_partition("1/1").unwrap(), (1, 1));
        for bad in ["0/4", "5/4", "1/0", "1", "a/b"] {
            assert!(parse_partition(bad).is_err(), "{bad}");
        }
    }
}
