//! Delta debugging over a list: try removing halves, then quarters, … until single elements. Shared by
//! every tree that shrinks a batch by dropping records.

use std::ops::Range;

/// Where delta debugging stands; it proposes ranges to remove from a list of `n` elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ddmin {
    chunk: usize,
    pos: usize,
}

impl Ddmin {
    pub fn new(n: usize) -> Self {
        Ddmin {
            chunk: n / 2,
            pos: 0,
        }
    }

    /// The next range to try removing from a list of `n` elements (never all of it); `None` when done.
    pub fn next(&mut self, n: usize) -> Option<Range<usize>> {
        loop {
            if n <= 1 || self.chunk == 0 {
                return None;
            }
            if self.pos >= n {
                self.chunk /= 2;
                self.pos = 0;
                continue;
            }
            let range = self.pos..(self.pos + self.chunk).min(n);
            if range.len() >= n {
                self.pos = range.end;
                continue;
            }
            return Some(range);
        }
    }

    /// The last range was removed and the list still fails: try the same position again.
    pub fn removed(&mut self) {}

    /// The last range was needed: move past it.
    pub fn kept(&mut self) {
        self.pos += self.chunk;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_needed_element_in_log_steps() {
        let mut list: Vec<u32> = (0..1000).collect();
        let mut d = Ddmin::new(list.len());
        let mut steps = 0;
        while let Some(r) = d.next(list.len()) {
            steps += 1;
            let mut candidate = list.clone();
            candidate.drain(r);
            if candidate.contains(&613) {
                list = candidate;
                d.removed();
            } else {
                d.kept();
            }
        }
        assert_eq!(list, [613]);
        assert!(steps < 40, "{steps}");
    }
}
