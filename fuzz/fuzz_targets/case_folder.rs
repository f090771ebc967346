//! Arbitrary case folders (event.json, case.json, response.body) to `replay`'s and the regression
//! gate's reader: three parts of the input split at 0xFF bytes; a missing part is a missing file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0xFF);
    let event = parts.next();
    let case = parts.next();
    let body = parts.next().unwrap_or_default();
    firehose_harness_fuzz::case_folder(event, case, body);
});
