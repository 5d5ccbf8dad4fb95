//! Loss, reorder and duplicate detection for one viewer of one topic, from the gap-free `seq`
//! the server gives every comment of a video.
//!
//! A viewer starts at the `last_seq` of its first join reply (the baseline) and from then on must
//! see every later `seq` exactly once and in order. A jump opens a gap (kept as ranges, so a long
//! outage costs one entry); a late arrival that fills a gap is out of order; anything already
//! seen is a duplicate. Comments replayed by a recovery join fill gaps without counting as out
//! of order. At the end, what is still missing (a hole below a `seq` that did arrive, or what the
//! server said it could not replay) is lost; everything after the highest `seq` seen up to the
//! topic's final `seq` is late: not delivered when the run stopped, which under overload is a
//! backlog rather than a loss, and is reported apart.
//!
//! A `comments_skipped` marker (the server's per-viewer delivery budget) accounts for its run:
//! those `seq`s are neither lost nor late, and are counted as skipped.
//!
//! Kept out: sockets and clocks. This is pure bookkeeping so it can be tested exactly.

/// Counts for one viewer of one topic (or, summed, for a whole run).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeqCounts {
    /// Distinct comments received live, in or out of order.
    pub delivered: u64,
    /// Distinct comments received in a recovery join reply.
    pub recovered: u64,
    /// Live comments that arrived after a higher `seq`.
    pub out_of_order: u64,
    /// Comments received again.
    pub duplicates: u64,
    /// Comments never received although a later one was, or that could not be replayed.
    pub lost: u64,
    /// Comments the server said it did not send this viewer (the delivery budget).
    #[serde(default)]
    pub skipped: u64,
    /// Comments after the last one received, still undelivered when the run stopped.
    pub late: u64,
    /// The window's size: every `seq` the viewer should have had.
    pub expected: u64,
}

#[derive(Clone, Debug)]
pub struct SeqTracker {
    baseline: i64,
    /// The highest `seq` received so far (starts at the baseline).
    highest: i64,
    /// The highest `seq` accounted for by what every viewer gets (comments other than the
    /// viewer's own, and markers). A gap above it may still be covered by a marker on its way
    /// (the viewer's own comment arrives at once, the marker of the run around it later), so at
    /// the end such a gap is late, not lost.
    shared: i64,
    /// Disjoint, sorted, inclusive ranges of missing `seq`s below `highest`.
    missing: Vec<(i64, i64)>,
    /// `seq`s abandoned because the server could not replay them (`recovered: false`).
    abandoned: u64,
    counts: SeqCounts,
}

impl SeqTracker {
    /// A viewer whose first join reported `last_seq`.
    pub fn new(baseline: i64) -> SeqTracker {
        SeqTracker {
            baseline,
            highest: baseline,
            shared: baseline,
            missing: Vec::new(),
            abandoned: 0,
            counts: SeqCounts::default(),
        }
    }

    /// The `since_seq` for a recovery join: below the oldest gap, else the highest seen.
    pub fn resume_from(&self) -> i64 {
        self.missing
            .first()
            .map_or(self.highest, |&(start, _)| start - 1)
    }

    pub fn highest(&self) -> i64 {
        self.highest
    }

    /// Moves `highest` up to `seq`, opening a gap for anything skipped; false if `seq` is not new.
    fn advance(&mut self, seq: i64) -> bool {
        if seq <= self.highest {
            return false;
        }
        if seq > self.highest + 1 {
            self.missing.push((self.highest + 1, seq - 1));
        }
        self.highest = seq;
        true
    }

    /// A live broadcast of the viewer's own comment (sent to its author even when the
    /// delivery budget skips it for everyone else).
    pub fn own(&mut self, seq: i64) {
        let shared = self.shared;
        self.live(seq);
        self.shared = shared;
    }

    /// A live broadcast.
    pub fn live(&mut self, seq: i64) {
        self.shared = self.shared.max(seq);
        if self.advance(seq) {
            self.counts.delivered += 1;
        } else if self.take_missing(seq) {
            self.counts.delivered += 1;
            self.counts.out_of_order += 1;
        } else {
            self.counts.duplicates += 1;
        }
    }

    /// A comment replayed by a recovery join. Comments the viewer already had are expected
    /// there (the replay starts below the oldest gap) and are not duplicates.
    pub fn replayed(&mut self, seq: i64) {
        self.shared = self.shared.max(seq);
        if self.advance(seq) || self.take_missing(seq) {
            self.counts.recovered += 1;
        }
    }

    /// The server said it did not send `from..=to` (a `comments_skipped` marker, or a
    /// recovery's `skipped` run). Those `seq`s are accounted for unless they already arrived
    /// (an author's own comments are sent to them anyway).
    pub fn skipped(&mut self, from: i64, to: i64) {
        self.shared = self.shared.max(to);
        let from = from.max(self.baseline + 1);
        if to < from {
            return;
        }
        let mut kept = Vec::with_capacity(self.missing.len() + 1);
        for &(start, end) in &self.missing {
            let (lo, hi) = (start.max(from), end.min(to));
            if lo > hi {
                kept.push((start, end));
                continue;
            }
            self.counts.skipped += (hi - lo + 1) as u64;
            if start < lo {
                kept.push((start, lo - 1));
            }
            if hi < end {
                kept.push((hi + 1, end));
            }
        }
        self.missing = kept;
        if to > self.highest {
            let lo = from.max(self.highest + 1);
            if lo > self.highest + 1 {
                self.missing.push((self.highest + 1, lo - 1));
            }
            self.counts.skipped += (to - lo + 1) as u64;
            self.highest = to;
        }
    }

    /// The server answered a recovery join with `recovered: false`: everything missing below
    /// `oldest_replayed` will never come.
    pub fn abandon_below(&mut self, oldest_replayed: i64) {
        let mut kept = Vec::with_capacity(self.missing.len());
        for &(start, end) in &self.missing {
            if end < oldest_replayed {
                self.abandoned += (end - start + 1) as u64;
            } else if start < oldest_replayed {
                self.abandoned += (oldest_replayed - start) as u64;
                kept.push((oldest_replayed, end));
            } else {
                kept.push((start, end));
            }
        }
        self.missing = kept;
    }

    fn take_missing(&mut self, seq: i64) -> bool {
        let Some(i) = self
            .missing
            .iter()
            .position(|&(start, end)| start <= seq && seq <= end)
        else {
            return false;
        };
        let (start, end) = self.missing[i];
        match (seq == start, seq == end) {
            (true, true) => {
                self.missing.remove(i);
            }
            (true, false) => self.missing[i].0 = seq + 1,
            (false, true) => self.missing[i].1 = seq - 1,
            (false, false) => {
                self.missing[i].1 = seq - 1;
                self.missing.insert(i + 1, (seq + 1, end));
            }
        }
        true
    }

    /// The final counts once the topic's last `seq` is known.
    pub fn finish(&self, final_seq: i64) -> SeqCounts {
        let final_seq = final_seq.max(self.highest);
        // Gaps above what everyone was told may still be covered by a marker in flight.
        let (mut gaps, mut pending) = (0u64, 0u64);
        for &(start, end) in &self.missing {
            let lost_end = end.min(self.shared);
            if lost_end >= start {
                gaps += (lost_end - start + 1) as u64;
            }
            let pending_start = start.max(self.shared + 1);
            if end >= pending_start {
                pending += (end - pending_start + 1) as u64;
            }
        }
        SeqCounts {
            lost: gaps + self.abandoned,
            late: (final_seq - self.highest) as u64 + pending,
            expected: (final_seq - self.baseline) as u64,
            ..self.counts
        }
    }
}

impl std::ops::AddAssign for SeqCounts {
    fn add_assign(&mut self, o: SeqCounts) {
        self.delivered += o.delivered;
        self.recovered += o.recovered;
        self.out_of_order += o.out_of_order;
        self.duplicates += o.duplicates;
        self.lost += o.lost;
        self.skipped += o.skipped;
        self.late += o.late;
        self.expected += o.expected;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_stream_is_all_delivered() {
        let mut t = SeqTracker::new(10);
        for s in 11..=20 {
            t.live(s);
        }
        let c = t.finish(20);
        assert_eq!((c.delivered, c.lost, c.expected), (10, 0, 10));
        assert_eq!((c.out_of_order, c.duplicates), (0, 0));
    }

    #[test]
    fn skipped_runs_are_neither_lost_nor_late_and_own_comments_inside_count_once() {
        let mut t = SeqTracker::new(0);
        t.live(1);
        t.live(2);
        t.live(7); // the viewer's own comment, inside the run 3..=9
        t.skipped(3, 9);
        t.live(10);
        t.skipped(11, 12);
        let c = t.finish(12);
        assert_eq!((c.delivered, c.skipped, c.lost, c.late), (4, 8, 0, 0));
        assert_eq!(c.delivered + c.skipped + c.lost + c.late, c.expected);
        // A marker past a real gap leaves the gap lost.
        let mut t = SeqTracker::new(0);
        t.live(1);
        t.skipped(4, 5);
        let c = t.finish(5);
        assert_eq!((c.delivered, c.skipped, c.lost), (1, 2, 2));
    }

    #[test]
    fn a_gap_before_an_own_comment_with_no_marker_yet_is_late_not_lost() {
        let mut t = SeqTracker::new(0);
        t.live(1);
        t.own(5); // 2..=4 skipped for everyone; their marker is still on its way at the stop
        let c = t.finish(5);
        assert_eq!((c.delivered, c.lost, c.late), (2, 0, 3));
        // Once a later comment for everyone arrived, the gap is a real loss.
        let mut t = SeqTracker::new(0);
        t.live(1);
        t.own(5);
        t.live(6);
        let c = t.finish(6);
        assert_eq!((c.delivered, c.lost, c.late), (3, 3, 0));
    }

    #[test]
    fn reports_a_gap_and_a_duplicate() {
        let mut t = SeqTracker::new(0);
        for s in [1, 2, 4, 5, 5, 6] {
            t.live(s);
        }
        let c = t.finish(6);
        assert_eq!(c.lost, 1, "seq 3 never came");
        assert_eq!(c.duplicates, 1, "seq 5 came twice");
        assert_eq!(c.delivered, 5);
        assert_eq!(c.delivered + c.lost + c.late, c.expected);
    }

    #[test]
    fn late_arrival_is_out_of_order_not_lost() {
        let mut t = SeqTracker::new(0);
        for s in [1, 4, 2, 3, 5] {
            t.live(s);
        }
        let c = t.finish(5);
        assert_eq!(
            (c.delivered, c.out_of_order, c.lost, c.duplicates),
            (5, 2, 0, 0)
        );
        t.live(3);
        assert_eq!(t.finish(5).duplicates, 1);
    }

    #[test]
    fn filling_the_middle_of_a_gap_splits_it() {
        let mut t = SeqTracker::new(0);
        t.live(10);
        t.live(5);
        assert_eq!(t.missing, vec![(1, 4), (6, 9)]);
        assert_eq!(t.resume_from(), 0);
        let c = t.finish(12);
        assert_eq!((c.lost, c.late), (8, 2));
    }

    #[test]
    fn tail_after_the_last_seen_is_late_not_lost() {
        let mut t = SeqTracker::new(3);
        t.live(4);
        let c = t.finish(9);
        assert_eq!((c.delivered, c.lost, c.late, c.expected), (1, 0, 5, 6));
    }

    #[test]
    fn recovery_fills_gaps_without_reordering_and_skips_what_was_seen() {
        let mut t = SeqTracker::new(0);
        for s in [1, 2, 5] {
            t.live(s);
        }
        assert_eq!(t.resume_from(), 2);
        for s in 3..=8 {
            t.replayed(s);
        }
        let c = t.finish(8);
        assert_eq!((c.delivered, c.recovered, c.lost), (3, 5, 0));
        assert_eq!((c.out_of_order, c.duplicates), (0, 0));
        assert_eq!(c.delivered + c.recovered + c.lost + c.late, c.expected);
    }

    #[test]
    fn unrecoverable_gap_is_lost() {
        let mut t = SeqTracker::new(0);
        t.live(1);
        t.live(2000);
        t.abandon_below(1950);
        for s in 1950..2000 {
            t.replayed(s);
        }
        let c = t.finish(2000);
        assert_eq!(c.lost, 1948);
        assert_eq!(c.delivered + c.recovered + c.lost + c.late, c.expected);
    }
}
