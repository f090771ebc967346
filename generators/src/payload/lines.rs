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

/// Append `n` in decimal.
fn num(b: &mut Vec<u8>, n: u64) {
    b.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Append `n` (< 100) as two digits.
fn two(b: &mut Vec<u8>, n: u64) {
    b.push(b'0' + (n / 10 % 10) as u8);
    b.push(b'0' + (n % 10) as u8);
}

fn ip(rng: &mut FastRng, b: &mut Vec<u8>) {
    num(b, rng.range(1, 223));
    for _ in 0..2 {
        b.push(b'.');
        num(b, rng.below(256));
    }
    b.push(b'.');
    num(b, rng.range(1, 254));
}

/// `HH:MM:SS`
fn clock(rng: &mut FastRng, b: &mut Vec<u8>) {
    two(b, rng.below(24));
    b.push(b':');
    two(b, rng.below(60));
    b.push(b':');
    two(b, rng.below(60));
}

// Lines are assembled by hand rather than with `write!`: formatting machinery would make these the
// slowest families, and generation must never limit a load test.

pub(super) fn apache(rng: &mut FastRng, size: usize, out: &mut Vec<u8>) {
    whole_lines(rng, size, out, |rng, b| {
        ip(rng, b);
        b.extend_from_slice(if rng.chance(1, 3) {
            b" - frank ["
        } else {
            b" - - ["
        });
        two(b, rng.range(1, 28));
        b.push(b'/');
        b.extend_from_slice(rng.pick(&MONTHS).as_bytes());
        b.extend_from_slice(b"/20");
        two(b, rng.range(10, 26));
        b.push(b':');
        clock(rng, b);
        b.extend_from_slice(b" +0000] \"");
        b.extend_from_slice(rng.pick(METHODS).as_bytes());
        b.push(b' ');
        b.extend_from_slice(rng.pick(PATHS).as_bytes());
        b.extend_from_slice(b" HTTP/1.1\" ");
        num(b, *rng.pick(&[200, 200, 200, 301, 404, 500]));
        b.push(b' ');
        num(b, rng.below(50_000));
        b.extend_from_slice(if rng.chance(1, 2) {
            b" \"-\" \""
        } else {
            b" \"https://example.com/start\" \""
        });
        b.extend_from_slice(rng.pick(AGENTS).as_bytes());
        b.extend_from_slice(b"\"\n");
    });
}

pub(super) fn syslog(rng: &mut FastRng, variant: u8, size: usize, out: &mut Vec<u8>) {
    // Variants 0 and 1 are RFC 3164 and RFC 5424 as sent over the network; 2 and 3 the same lines
    // without `<PRI>`, as rsyslog writes them to files that agents then ship.
    whole_lines(rng, size, out, |rng, b| {
        if variant < 2 {
            b.push(b'<');
            num(b, rng.below(192));
            b.push(b'>');
        }
        let (host, app, pid) = (*rng.pick(HOSTS), *rng.pick(APPS), rng.range(1, 65_535));
        if variant % 2 == 0 {
            // RFC 3164: `<34>Oct 11 22:14:15 host app[pid]: message`
            b.extend_from_slice(rng.pick(&MONTHS).as_bytes());
            let day = rng.range(1, 28);
            let _ = write!(b, " {day:>2} ");
            clock(rng, b);
            let user = rng.pick(&["root", "ubuntu", "ec2-user"]);
            let _ = write!(
                b,
                " {host} {app}[{pid}]: session opened for user {user} from "
            );
            ip(rng, b);
        } else {
            // RFC 5424: `<165>1 2003-10-11T22:14:15.003Z host app pid ID47 [sd] message`
            if variant < 2 {
                b.extend_from_slice(b"1 ");
            }
            let (year, month, day) = (rng.range(10, 26), rng.range(1, 12), rng.range(1, 28));
            let _ = write!(b, "20{year:02}-{month:02}-{day:02}T");
            clock(rng, b);
            let (ms, msgid, iut) = (rng.below(1000), rng.below(100), rng.below(10));
            let _ = write!(
                b,
                ".{ms:03}Z {host} {app} {pid} ID{msgid} [exampleSDID@32473 iut=\"{iut}\" \
                 eventSource=\"Application\"] An application event log entry"
            );
        }
        b.push(b'\n');
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
