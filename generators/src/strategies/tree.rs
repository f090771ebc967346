//! Shrinking a failing batch in O(log n) invocations.
//!
//! proptest's collection trees drop one element per step, which would take a million invocations to
//! shrink a 1 MB record. This tree works on [`BatchSpec`]s instead and bisects:
//!
//! 1. **records** — delta debugging: drop halves, then quarters, … of the record list;
//! 2. **sizes** — scale every record by a bisected factor, then bisect each record's size (small batches);
//! 3. **content** — the plainest variant of each family, then plain text;
//! 4. **compression** — none, for all records at once, then one by one;
//! 5. **record ids** — short ones;
//! 6. **source** — Direct PUT.
//!
//! and repeats while a pass changed anything. Content is regenerated from each record's seed, so a
//! candidate costs nothing to hold.
//!
//! Every candidate stays inside the [`GenConfig`] the batch was drawn from: no fewer records than
//! `--records MIN`, no record under `--record-size MIN`, and only the sources, families and
//! compressions selected — a minimal case the user's stream could never carry proves nothing.
//!
//! The tree also learns which input dimensions the failure depends on: a simplification that makes the
//! failure go away (the caller calls `complicate`) marks its dimension.
//!
//! Protocol (proptest's [`ValueTree`]): `simplify` means "the current value failed, go simpler";
//! `complicate` means "the current value passed, back off". Both return whether there is a new value to
//! test; when they return false, `current()` is the minimal failing batch.

use std::collections::BTreeSet;

use proptest::strategy::ValueTree;

use crate::payload::{Compression, PayloadFamily};
use crate::spec::{BatchSpec, IdStyle};
use crate::wire::Source;

use super::GenConfig;
use super::ddmin::Ddmin;

/// An input dimension a failure can depend on, each with the flag that narrows a run along it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    Source,
    PayloadFamily,
    Compression,
    RecordSize,
    BatchSize,
    RecordIds,
}

impl Dimension {
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Source => "source",
            Dimension::PayloadFamily => "payload family",
            Dimension::Compression => "compression",
            Dimension::RecordSize => "record size",
            Dimension::BatchSize => "batch size",
            Dimension::RecordIds => "record ids",
        }
    }

    /// The `check` flag that narrows the run along this dimension.
    pub fn flag(self) -> &'static str {
        match self {
            Dimension::Source => "--source",
            Dimension::PayloadFamily => "--payload",
            Dimension::Compression => "--compression",
            Dimension::RecordSize => "--record-size",
            Dimension::BatchSize => "--buffer-size / --records",
            Dimension::RecordIds => "(record ids are chosen by Firehose, not by you)",
        }
    }
}

const SCALE: u32 = 1024;
/// Per-record size bisection is worth its invocations only for small batches.
const SIZE_EACH_MAX_RECORDS: usize = 16;
const MAX_PASSES: u8 = 3;

#[derive(Debug, Clone)]
enum Phase {
    Drop(Ddmin),
    ScaleAll {
        lo: u32,
        hi: u32,
        mid: u32,
        base: Vec<usize>,
    },
    SizeEach {
        rec: usize,
        lo: usize,
        hi: usize,
        mid: usize,
    },
    Content {
        rec: usize,
        step: u8,
    },
    CompressionAll,
    CompressionEach {
        rec: usize,
    },
    Ids,
    Source,
    Done,
}

/// The value tree of [`super::BatchStrategy`].
#[derive(Debug, Clone)]
pub struct BatchTree {
    config: GenConfig,
    /// The fewest records a candidate may hold: `--records MIN`, or fewer if the batch had fewer.
    min_records: usize,
    accepted: BatchSpec,
    candidate: Option<BatchSpec>,
    phase: Phase,
    changed_this_pass: bool,
    passes: u8,
    depends: BTreeSet<Dimension>,
    size_floor_known: bool,
}

impl BatchTree {
    /// A tree over `spec`, which was drawn from `config`; every candidate stays inside `config`.
    pub fn new(spec: BatchSpec, config: &GenConfig) -> Self {
        let drop = Ddmin::new(spec.records.len());
        BatchTree {
            min_records: (*config.records.start()).clamp(1, spec.records.len().max(1)),
            config: config.clone(),
            accepted: spec,
            candidate: None,
            phase: Phase::Drop(drop),
            changed_this_pass: false,
            passes: 0,
            depends: BTreeSet::new(),
            size_floor_known: false,
        }
    }

    /// The simplest batch known to fail.
    pub fn minimal(&self) -> &BatchSpec {
        &self.accepted
    }

    /// The input dimensions the failure was seen to depend on so far.
    pub fn dependencies(&self) -> BTreeSet<Dimension> {
        let mut deps = self.depends.clone();
        if self.accepted.records.len() > 1 {
            deps.insert(Dimension::BatchSize);
        }
        deps
    }

    fn set(&mut self, spec: BatchSpec) -> bool {
        self.candidate = Some(spec);
        true
    }

    /// Move to the next candidate, or report that shrinking is over.
    fn propose(&mut self) -> bool {
        loop {
            let n = self.accepted.records.len();
            match &mut self.phase {
                Phase::Drop(ddmin) => {
                    let Some(range) = ddmin.next(n) else {
                        self.phase = self.scale_phase();
                        continue;
                    };
                    if n - range.len() < self.min_records {
                        ddmin.kept();
                        continue;
                    }
                    let mut c = self.accepted.clone();
                    c.records.drain(range);
                    return self.set(c);
                }
                Phase::ScaleAll { lo, hi, mid, base } => {
                    if *lo >= *hi {
                        if *hi > 0 {
                            self.size_floor_known = true;
                            self.depends.insert(Dimension::RecordSize);
                        }
                        self.phase = if n <= SIZE_EACH_MAX_RECORDS {
                            self.size_each_phase(0)
                        } else {
                            Phase::Content { rec: 0, step: 0 }
                        };
                        continue;
                    }
                    *mid = *lo + (*hi - *lo) / 2;
                    let m = *mid as usize;
                    let floor = *self.config.record_size.start();
                    let sizes: Vec<usize> = base
                        .iter()
                        .map(|s| (s * m / SCALE as usize).max(floor.min(*s)))
                        .collect();
                    if sizes
                        .iter()
                        .zip(&self.accepted.records)
                        .all(|(s, r)| *s == r.size)
                    {
                        // Same batch as the accepted one: known to fail, no need to ask.
                        *hi = *mid;
                        continue;
                    }
                    let mut c = self.accepted.clone();
                    for (r, s) in c.records.iter_mut().zip(sizes) {
                        r.size = s;
                    }
                    return self.set(c);
                }
                Phase::SizeEach { rec, lo, hi, mid } => {
                    if *rec >= n {
                        self.phase = Phase::Content { rec: 0, step: 0 };
                        continue;
                    }
                    if *lo >= *hi {
                        let next = *rec + 1;
                        self.phase = self.size_each_phase(next);
                        continue;
                    }
                    *mid = *lo + (*hi - *lo) / 2;
                    let mut c = self.accepted.clone();
                    c.records[*rec].size = *mid;
                    return self.set(c);
                }
                Phase::Content { rec, step } => {
                    if *rec >= n {
                        self.phase = Phase::CompressionAll;
                        continue;
                    }
                    let r = &self.accepted.records[*rec];
                    let text_allowed = self.config.families.contains(&PayloadFamily::Text)
                        && PayloadFamily::Text.allows(r.compression);
                    let candidate = match *step {
                        0 if r.variant != 0 => Some((r.family, 0)),
                        1 if text_allowed
                            && (!matches!(
                                r.family,
                                PayloadFamily::Text | PayloadFamily::Empty
                            ) || r.variant != 0) =>
                        {
                            Some((PayloadFamily::Text, 0))
                        }
                        0 | 1 => None,
                        _ => {
                            *rec += 1;
                            *step = 0;
                            continue;
                        }
                    };
                    match candidate {
                        None => *step += 1,
                        Some((family, variant)) => {
                            let mut c = self.accepted.clone();
                            c.records[*rec].family = family;
                            c.records[*rec].variant = variant;
                            return self.set(c);
                        }
                    }
                }
                Phase::CompressionAll => {
                    if !self
                        .accepted
                        .records
                        .iter()
                        .any(|r| Self::can_decompress(&self.config, r))
                    {
                        self.phase = Phase::Ids;
                        continue;
                    }
                    let mut c = self.accepted.clone();
                    for r in c.records.iter_mut() {
                        if Self::can_decompress(&self.config, r) {
                            r.compression = Compression::None;
                        }
                    }
                    return self.set(c);
                }
                Phase::CompressionEach { rec } => {
                    if *rec >= n {
                        self.phase = Phase::Ids;
                        continue;
                    }
                    if !Self::can_decompress(&self.config, &self.accepted.records[*rec]) {
                        *rec += 1;
                        continue;
                    }
                    let mut c = self.accepted.clone();
                    c.records[*rec].compression = Compression::None;
                    return self.set(c);
                }
                Phase::Ids => {
                    if !self.config.id_styles.contains(&IdStyle::Short)
                        || self
                            .accepted
                            .records
                            .iter()
                            .all(|r| r.id_style == IdStyle::Short)
                    {
                        self.phase = Phase::Source;
                        continue;
                    }
                    let mut c = self.accepted.clone();
                    c.records
                        .iter_mut()
                        .for_each(|r| r.id_style = IdStyle::Short);
                    return self.set(c);
                }
                Phase::Source => {
                    if self.accepted.source == Source::DirectPut
                        || !self.config.sources.contains(&Source::DirectPut)
                    {
                        self.phase = Phase::Done;
                        continue;
                    }
                    let mut c = self.accepted.clone();
                    c.source = Source::DirectPut;
                    return self.set(c);
                }
                Phase::Done => {
                    if self.changed_this_pass && self.passes + 1 < MAX_PASSES {
                        self.passes += 1;
                        self.changed_this_pass = false;
                        self.phase = Phase::Drop(Ddmin::new(n));
                        continue;
                    }
                    return false;
                }
            }
        }
    }

    fn scale_phase(&self) -> Phase {
        let base: Vec<usize> = self.accepted.records.iter().map(|r| r.size).collect();
        if base.iter().all(|s| *s == 0) {
            return Phase::SizeEach {
                rec: usize::MAX,
                lo: 0,
                hi: 0,
                mid: 0,
            };
        }
        Phase::ScaleAll {
            lo: 0,
            hi: SCALE,
            mid: SCALE,
            base,
        }
    }

    fn size_each_phase(&self, rec: usize) -> Phase {
        let hi = self.accepted.records.get(rec).map_or(0, |r| r.size);
        Phase::SizeEach {
            rec,
            lo: (*self.config.record_size.start()).min(hi),
            hi,
            mid: hi,
        }
    }

    /// Whether `r` may be sent uncompressed under the configuration.
    fn can_decompress(config: &GenConfig, r: &crate::spec::RecordSpec) -> bool {
        r.compression != Compression::None
            && config.compressions.contains(&Compression::None)
            && r.family.allows(Compression::None)
    }

    /// The candidate failed: it becomes the accepted batch.
    fn on_fail(&mut self) {
        let Some(c) = self.candidate.take() else {
            return;
        };
        self.accepted = c;
        self.changed_this_pass = true;
        match &mut self.phase {
            Phase::Drop(ddmin) => ddmin.removed(),
            Phase::ScaleAll { hi, mid, .. } => *hi = *mid,
            Phase::SizeEach { hi, mid, .. } => *hi = *mid,
            Phase::Content { step, .. } => *step += 1,
            Phase::CompressionAll | Phase::CompressionEach { .. } => self.phase = Phase::Ids,
            Phase::Ids => self.phase = Phase::Source,
            Phase::Source => self.phase = Phase::Done,
            Phase::Done => {}
        }
    }

    /// The candidate passed: back off and remember which dimension mattered.
    fn on_pass(&mut self) {
        if self.candidate.take().is_none() {
            return;
        }
        match &mut self.phase {
            Phase::Drop(ddmin) => ddmin.kept(),
            Phase::ScaleAll { lo, mid, .. } => *lo = *mid + 1,
            Phase::SizeEach { lo, mid, .. } => {
                *lo = *mid + 1;
                self.depends.insert(Dimension::RecordSize);
            }
            Phase::Content { step, .. } => {
                *step += 1;
                self.depends.insert(Dimension::PayloadFamily);
            }
            Phase::CompressionAll => {
                self.depends.insert(Dimension::Compression);
                self.phase = Phase::CompressionEach { rec: 0 };
            }
            Phase::CompressionEach { rec } => {
                self.depends.insert(Dimension::Compression);
                *rec += 1;
            }
            Phase::Ids => {
                self.depends.insert(Dimension::RecordIds);
                self.phase = Phase::Source;
            }
            Phase::Source => {
                self.depends.insert(Dimension::Source);
                self.phase = Phase::Done;
            }
            Phase::Done => {}
        }
    }
}

impl ValueTree for BatchTree {
    type Value = BatchSpec;

    fn current(&self) -> BatchSpec {
        self.candidate
            .clone()
            .unwrap_or_else(|| self.accepted.clone())
    }

    fn simplify(&mut self) -> bool {
        self.on_fail();
        self.propose()
    }

    fn complicate(&mut self) -> bool {
        if self.candidate.is_none() {
            return false;
        }
        self.on_pass();
        self.propose()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{GenConfig, sample};
    use super::*;

    /// Drive the tree with a synchronous predicate, as the conformance runner does with an async one.
    fn shrink(spec: BatchSpec, fails: impl Fn(&BatchSpec) -> bool) -> (BatchTree, usize) {
        assert!(fails(&spec));
        let mut tree = BatchTree::new(spec, &GenConfig::default());
        let mut steps = 0;
        let mut more = tree.simplify();
        while more {
            steps += 1;
            assert!(steps < 5_000, "shrinking does not terminate");
            more = if fails(&tree.current()) {
                tree.simplify()
            } else {
                tree.complicate()
            };
        }
        (tree, steps)
    }

    fn big_batch(seed: u64) -> BatchSpec {
        let cfg = GenConfig {
            records: 200..=400,
            record_size: 100..=3000,
            ..GenConfig::default()
        };
        sample(&cfg, seed)
    }

    #[test]
    fn drops_to_the_one_record_that_matters() {
        let spec = big_batch(1);
        let target = spec.records[137].serial;
        let (tree, steps) = shrink(spec, |s| s.records.iter().any(|r| r.serial == target));
        assert_eq!(tree.minimal().records.len(), 1);
        assert_eq!(tree.minimal().records[0].serial, target);
        assert_eq!(tree.minimal().records[0].size, 0);
        assert!(steps < 120, "{steps} steps");
    }

    #[test]
    fn large_records_bisect_to_the_threshold() {
        let cfg = GenConfig {
            records: 3..=3,
            record_size: 900_000..=1_000_000,
            ..GenConfig::default()
        };
        let spec = sample(&cfg, 3);
        let limit = 64 * 1024;
        let (tree, steps) = shrink(spec, |s| {
            s.records.iter().any(|r| r.payload().len() > limit)
        });
        let min = tree.minimal();
        assert_eq!(min.records.len(), 1);
        let len = min.records[0].payload().len();
        assert!(len > limit && len <= limit + 1024, "{len}");
        assert_eq!(min.records[0].compression, Compression::None);
        assert!(tree.dependencies().contains(&Dimension::RecordSize));
        assert!(steps < 200, "{steps} steps");
    }

    #[test]
    fn compression_and_source_dependencies_are_learned() {
        let mut spec = big_batch(5);
        spec.source = Source::Msk;
        spec.records[10].compression = Compression::Gzip;
        let (tree, _) = shrink(spec, |s| {
            s.source == Source::Msk && s.records.iter().any(|r| r.compression == Compression::Gzip)
        });
        let deps = tree.dependencies();
        assert!(deps.contains(&Dimension::Compression));
        assert!(deps.contains(&Dimension::Source));
        assert!(!deps.contains(&Dimension::BatchSize));
        assert_eq!(tree.minimal().records.len(), 1);
    }

    #[test]
    fn batch_size_dependency_keeps_many_records() {
        let spec = big_batch(9);
        let n = spec.records.len();
        let (tree, _) = shrink(spec, |s| s.records.len() > n / 2);
        assert_eq!(tree.minimal().records.len(), n / 2 + 1);
        assert!(tree.dependencies().contains(&Dimension::BatchSize));
    }
}
