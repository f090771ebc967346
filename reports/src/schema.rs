//! `report.json`'s JSON Schema, derived from the model ([`crate::Report`]) so the two cannot drift.
//!
//! The schema ships in the repository as `reports/report.schema.json`, for readers in other
//! languages and for editors; a test holds the shipped file equal to the generated one, and the
//! harness's golden reports validate against it.

/// The schema as shipped in the repository.
pub const SHIPPED: &str = include_str!("../report.schema.json");

/// The schema of [`crate::Report`], generated from the model.
pub fn generate() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(crate::Report))
        // A schema is plain JSON: turning it into a `Value` cannot fail.
        .expect("a JSON Schema is JSON")
}

/// [`generate`], pretty-printed as the shipped file is.
pub fn render() -> String {
    let mut s = serde_json::to_string_pretty(&generate()).expect("a JSON Schema is JSON");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `UPDATE_SCHEMA=1 cargo test -p firehose-reports schema` rewrites the shipped file after a
    /// model change (and `SCHEMA_VERSION` is bumped if readers could break).
    #[test]
    fn the_shipped_schema_is_the_generated_one() {
        let generated = render();
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("report.schema.json");
            std::fs::write(&path, &generated).unwrap();
            return;
        }
        assert!(
            SHIPPED == generated,
            "reports/report.schema.json is stale: run UPDATE_SCHEMA=1 cargo test -p firehose-reports schema"
        );
    }

    #[test]
    fn the_schema_pins_the_fields_scripts_read() {
        let schema = generate();
        // `seed` is nullable, so the schema cannot require it; the rest must be there.
        let required = schema["required"].as_array().unwrap();
        for field in [
            "schema_version",
            "verdict",
            "exit_code",
            "target",
            "checks",
            "failures",
        ] {
            assert!(
                required.iter().any(|r| r == field),
                "{field} is not required"
            );
        }
        assert_eq!(
            schema["$defs"]["CheckStatus"]["enum"],
            serde_json::json!(["pass", "fail", "warn", "skipped"])
        );
    }
}
