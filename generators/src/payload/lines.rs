//! Line-oriented log formats: Apache combined, syslog (RFC 3164 and 5424), CSV. Each emits whole lines
//! while they fit in `size`, and always at least one line.

use std::io::Write;

use crate::rng::FastRng;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "HEAD"];
const PATHS: &[&str] = &[
    "/",
    "/index.html",
    "/api/v1/orders",
    "/static/app.js",
    "/login?next=%2Fhome",
    "/health",
    "/images/logo.png",
    "/search?q=fire+hose",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "curl/8.5.0",
    "Mozilla/4.08 [en] (Win98; I ;Nav)",
    "ELB-HealthChecker/2.0",
];
const HOSTS: &[&str] = &["web-01", "ip-10-0-1-17", "db.example.com", "mymachine"];
const APPS: &[&str] = &["sshd", "su", "cron", "nginx", "kernel", "app"];

/// Emit lines produced by `line` while they fit; at least one.
fn whole_lines(
    rng: &mut FastRng,
    size: usize,
    out: &mut Vec<u8>,
    mut line: impl FnMut(&mut FastRng, &mut Vec<u8>),
) {
    let end = out.len() + size;
    let mut buf = Vec::with_capacity(256);
    let mut wrote = false;
    loop {
        buf.clear();
        line(rng, &mut buf);
        if wrote && out.len() + buf.len() > end {
            break;
        }
        out.extend_from_slice(&buf);
        wrote = true;
        if out.len() >= end {
            break;
        }
    }
}

fn ip(rng: &mut FastRng) -> String {
    format!(
        "{}.{}.{}.{}",
        rng.range(1, 223),
        rng.below(256),
        rng.below(256),
        rng.range(1, 254)
    )
}

pub(super) fn apache(rng: &mut FastRng, size: usize, out: &mut Vec<u8>) {
    whole_lines(rng, size, out, |rng, b| {
        let _ = writeln!(
            b,
            r#"{} - {} [{:02}/{}/20{:02}:{:02}:{:02}:{:02} +0000] "{} {} HTTP/1.1" {} {} "{}" "{}""#,
            ip(rng),
            if rng.chance(1, 3) { "frank" } else { "-" },
            rng.range(1, 28),
            rng.pick(&MONTHS),
            rng.range(10, 26),
            rng.below(24),
            rng.below(60),
            rng.below(60),
            rng.pick(METHODS),
            rng.pick(PATHS),
            rng.pick(&[200, 200, 200, 301, 404, 500]),
            rng.below(50_000),
            if rng.chance(1, 2) {
                "-"
            } else {
                "https://example.com/start"
            },
            rng.pick(AGENTS),
        );
    });
}

pub(super) fn syslog(rng: &mut FastRng, variant: u8, size: usize, out: &mut Vec<u8>) {
    whole_lines(rng, size, out, |rng, b| {
        let pri = rng.below(192);
        let (host, app, pid) = (rng.pick(HOSTS), rng.pick(APPS), rng.range(1, 65_535));
        if variant == 0 {
            let _ = writeln!(
                b,
                "<{pri}>{} {:2} {:02}:{:02}:{:02} {host} {app}[{pid}]: session opened for user {} from {}",
                rng.pick(&MONTHS),
                rng.range(1, 28),
                rng.below(24),
                rng.below(60),
                rng.below(60),
                rng.pick(&["root", "ubuntu", "ec2-user"]),
                ip(rng),
            );
        } else {
            let _ = writeln!(
                b,
                r#"<{pri}>1 20{:02}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z {host} {app} {pid} ID{} [exampleSDID@32473 iut="{}" eventSource="Application"] An application event log entry"#,
                rng.range(10, 26),
                rng.range(1, 12),
                rng.range(1, 28),
                rng.below(24),
                rng.below(60),
                rng.below(60),
                rng.below(1000),
                rng.below(100),
                rng.below(10),
            );
        }
    });
}

pub(super) fn csv(rng: &mut FastRng, variant: u8, size: usize, out: &mut Vec<u8>) {
    let header = b"id,timestamp,user,amount,comment\n";
    if size >= header.len() {
        out.extend_from_slice(header);
    }
    let size = size.saturating_sub(header.len());
    let mut id = 0u64;
    whole_lines(rng, size, out, |rng, b| {
        id += 1;
        let comment = if variant == 1 && rng.chance(1, 2) {
            r#""said ""hi"", then left, quickly""#
        } else {
            "plain"
        };
        let _ = writeln!(
            b,
            "{id},{},{},{}.{:02},{comment}",
            1_760_000_000 + rng.below(10_000_000),
            rng.pick(&["alice", "bob", "carol", "dave"]),
            rng.below(10_000),
            rng.below(100),
        );
    });
}
