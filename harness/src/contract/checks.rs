//! The check table: stable ids users type in `--checks`, codes reports print, and what each guards.

use std::fmt;

/// One rule of the Firehose contract. Ids are stable: scripts and `--checks` depend on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CheckId {
    InvocationSucceeded,
    WithinTimeout,
    ResponseIsJson,
    ResponseShape,
    NoMissingRecordIds,
    NoDuplicateRecordIds,
    NoUnknownRecordIds,
    ResultIsLegal,
    OkHasData,
    DataIsBase64,
    ResponseWithinLimit,
    PartitionKeysValid,
    Deterministic,
    NewlineDelimited,
}

/// Whether a violation fails the run or only warns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

impl CheckId {
    pub const ALL: [CheckId; 14] = [
        CheckId::InvocationSucceeded,
        CheckId::WithinTimeout,
        CheckId::ResponseIsJson,
        CheckId::ResponseShape,
        CheckId::NoMissingRecordIds,
        CheckId::NoDuplicateRecordIds,
        CheckId::NoUnknownRecordIds,
        CheckId::ResultIsLegal,
        CheckId::OkHasData,
        CheckId::DataIsBase64,
        CheckId::ResponseWithinLimit,
        CheckId::PartitionKeysValid,
        CheckId::Deterministic,
        CheckId::NewlineDelimited,
    ];

    pub fn id(self) -> &'static str {
        match self {
            CheckId::InvocationSucceeded => "invocation_succeeded",
            CheckId::WithinTimeout => "within_timeout",
            CheckId::ResponseIsJson => "response_is_json",
            CheckId::ResponseShape => "response_shape",
            CheckId::NoMissingRecordIds => "no_missing_record_ids",
            CheckId::NoDuplicateRecordIds => "no_duplicate_record_ids",
            CheckId::NoUnknownRecordIds => "no_unknown_record_ids",
            CheckId::ResultIsLegal => "result_is_legal",
            CheckId::OkHasData => "ok_has_data",
            CheckId::DataIsBase64 => "data_is_base64",
            CheckId::ResponseWithinLimit => "response_within_limit",
            CheckId::PartitionKeysValid => "partition_keys_valid",
            CheckId::Deterministic => "deterministic",
            CheckId::NewlineDelimited => "newline_delimited",
        }
    }

    /// Firehose's own error code where it documents one, else the harness's.
    pub fn code(self) -> &'static str {
        match self {
            CheckId::InvocationSucceeded => "Lambda.FunctionError",
            CheckId::WithinTimeout => "Harness.Timeout",
            CheckId::ResponseIsJson => "Lambda.JsonProcessingException",
            CheckId::ResponseShape => "Harness.InvalidResponseShape",
            CheckId::NoMissingRecordIds => "Lambda.MissingRecordId",
            CheckId::NoDuplicateRecordIds => "Lambda.DuplicatedRecordId",
            CheckId::NoUnknownRecordIds => "Harness.UnknownRecordId",
            CheckId::ResultIsLegal => "Harness.InvalidResult",
            CheckId::OkHasData => "Harness.MissingData",
            CheckId::DataIsBase64 => "Harness.InvalidBase64",
            CheckId::ResponseWithinLimit => "Harness.ResponseTooLarge",
            CheckId::PartitionKeysValid => "DynamicPartitioning.MetadataExtractionFailed",
            CheckId::Deterministic => "Harness.NonDeterministic",
            CheckId::NewlineDelimited => "Harness.NoDelimiter",
        }
    }

    /// One line: what the check guards, for `--help`, JUnit and summaries.
    pub fn summary(self) -> &'static str {
        match self {
            CheckId::InvocationSucceeded => {
                "the invocation succeeded (no function error, crash or 5xx)"
            }
            CheckId::WithinTimeout => "the transformer answered within the timeout",
            CheckId::ResponseIsJson => "the response body is JSON",
            CheckId::ResponseShape => "the response is an object with a records array of objects",
            CheckId::NoMissingRecordIds => "every input recordId is returned",
            CheckId::NoDuplicateRecordIds => "no recordId is returned twice",
            CheckId::NoUnknownRecordIds => "every returned recordId was in the input",
            CheckId::ResultIsLegal => "result is exactly Ok, Dropped or ProcessingFailed",
            CheckId::OkHasData => "every Ok record carries data (kafkaRecordValue for MSK)",
            CheckId::DataIsBase64 => "data is standard base64",
            CheckId::ResponseWithinLimit => "the response fits Lambda's 6,291,556-byte limit",
            CheckId::PartitionKeysValid => "metadata.partitionKeys is a map of non-empty strings",
            CheckId::Deterministic => {
                "the same batch twice gives the same output (Firehose retries)"
            }
            CheckId::NewlineDelimited => "every Ok record's data ends in a newline",
        }
    }

    /// Where Firehose's exact behaviour is undocumented, reports say so instead of guessing.
    pub fn firehose_documented(self) -> bool {
        matches!(
            self,
            CheckId::InvocationSucceeded
                | CheckId::ResponseIsJson
                | CheckId::NoMissingRecordIds
                | CheckId::NoDuplicateRecordIds
                | CheckId::PartitionKeysValid
        )
    }

    pub fn default_enabled(self) -> bool {
        !matches!(self, CheckId::Deterministic | CheckId::NewlineDelimited)
    }

    pub fn parse(s: &str) -> Option<CheckId> {
        CheckId::ALL.into_iter().find(|c| c.id() == s)
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// The checks a run evaluates: one bit per [`CheckId`], so asking costs one `and` (the oracle
/// asks for every record of every answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSet(u32);

const _: () = assert!(CheckId::ALL.len() <= 32);

impl Default for CheckSet {
    fn default() -> Self {
        CheckId::ALL
            .into_iter()
            .filter(|c| c.default_enabled())
            .collect()
    }
}

impl FromIterator<CheckId> for CheckSet {
    fn from_iter<I: IntoIterator<Item = CheckId>>(ids: I) -> Self {
        let mut set = CheckSet(0);
        for id in ids {
            set.insert(id);
        }
        set
    }
}

impl CheckSet {
    pub fn all() -> Self {
        CheckId::ALL.into_iter().collect()
    }

    pub fn contains(&self, id: CheckId) -> bool {
        self.0 & (1 << id as u32) != 0
    }

    fn insert(&mut self, id: CheckId) {
        self.0 |= 1 << id as u32;
    }

    fn remove(&mut self, id: CheckId) {
        self.0 &= !(1 << id as u32);
    }

    /// The checks in the set, in [`CheckId::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = CheckId> + '_ {
        CheckId::ALL.into_iter().filter(|c| self.contains(*c))
    }

    /// Apply one `--checks` value: `+id` adds, `-id` removes, a list without signs replaces the set.
    /// Items may be comma-separated; signed and unsigned items cannot be mixed in one value.
    pub fn apply(&mut self, spec: &str) -> Result<(), String> {
        let items: Vec<&str> = spec
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if items.is_empty() {
            return Err("empty check list".into());
        }
        let signed = items.iter().filter(|s| s.starts_with(['+', '-'])).count();
        if signed != 0 && signed != items.len() {
            return Err(format!(
                "`{spec}` mixes +/- items with plain ones; write `+a,-b` or `a,b`"
            ));
        }
        let lookup = |name: &str| {
            CheckId::parse(name).ok_or_else(|| {
                format!(
                    "unknown check `{name}`; known checks: {}",
                    CheckId::ALL.map(|c| c.id()).join(", ")
                )
            })
        };
        if signed == 0 {
            *self = items.iter().map(|s| lookup(s)).collect::<Result<_, _>>()?;
            return Ok(());
        }
        for item in items {
            let (sign, name) = item.split_at(1);
            let id = lookup(name)?;
            if sign == "+" {
                self.insert(id);
            } else {
                self.remove(id);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_list_grammar() {
        let mut set = CheckSet::default();
        assert!(!set.contains(CheckId::Deterministic));
        set.apply("+deterministic,-partition_keys_valid").unwrap();
        assert!(set.contains(CheckId::Deterministic));
        assert!(!set.contains(CheckId::PartitionKeysValid));
        set.apply("response_is_json,ok_has_data").unwrap();
        assert_eq!(set.iter().count(), 2);
        assert!(
            set.apply("+nope")
                .unwrap_err()
                .contains("unknown check `nope`")
        );
        assert!(set.apply("+a,b").is_err());
    }

    #[test]
    fn ids_are_unique_and_parse_back() {
        for c in CheckId::ALL {
            assert_eq!(CheckId::parse(c.id()), Some(c));
        }
    }
}
