//! `DeliveryBudget`: how many new comments per second one viewer of a topic is sent, and which.
//!
//! Above the budget a topic stops sending every comment to every viewer. Time is cut into slots
//! (`RealtimeConfig::budget_slot`, 250 ms by default) by each comment's commit time
//! (`created_at`, stored with the comment, so every node sees the same); in each slot the first
//! `budget × slot` comments in `seq` order are sent and the rest skipped. The sample is a
//! function of the comments alone, so every viewer on every node gets the same one (one thread
//! for everyone). A slot never goes backwards: a comment stamped earlier than the current slot
//! (clocks of two api nodes apart) counts in the current. A channel that starts in the middle
//! of a slot agrees with the others from the next slot.
//!
//! What was skipped is said exactly: a run of skipped `seq`s becomes one `comments_skipped`
//! marker `{from_seq, to_seq, count}`, sent in order before the next comment that is sent, or
//! on the channel's tick once the run is two slots old (a flood that stopped). Every
//! `seq` a viewer owes is either sent or inside a marker; an author's own comments are sent to
//! them even when skipped (they are inside the marker too).
//!
//! Kept out: sending (the channel), what the author's sockets are (the fan-out).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use time::OffsetDateTime;

/// A run of consecutive skipped `seq`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Skipped {
    pub from_seq: i64,
    pub to_seq: i64,
    pub count: u64,
}

impl Skipped {
    /// The `comments_skipped` payload.
    pub fn payload(&self) -> Value {
        json!({ "from_seq": self.from_seq, "to_seq": self.to_seq, "count": self.count })
    }
}

/// What to do with one comment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Announce this run of skipped comments first.
    pub marker: Option<Skipped>,
    /// Send the comment to every viewer; if false, to its author only.
    pub send: bool,
}

pub(crate) struct DeliveryBudget {
    /// Comments sent per slot; 0: no budget, every comment is sent.
    per_slot: u64,
    /// The unit of time: a slot's quota is `budget × slot`, so a flood is sampled evenly over
    /// each second instead of in one burst at its start, and each viewer of a flood gets one
    /// write a slot.
    slot_len: Duration,
    slot: i64,
    sent_in_slot: u64,
    run: Option<(Skipped, Instant)>,
}

impl DeliveryBudget {
    /// A budget of `per_second` comments per viewer (0: off), sampled per `slot` (at least 1 ms;
    /// the settings refuse a zero one at start).
    pub fn new(per_second: u32, slot: Duration) -> Self {
        let slot = slot.max(Duration::from_millis(1));
        let per_slot = (u64::from(per_second) * slot.as_millis() as u64).div_ceil(1000);
        Self {
            per_slot,
            slot_len: slot,
            slot: i64::MIN,
            sent_in_slot: 0,
            run: None,
        }
    }

    pub fn is_on(&self) -> bool {
        self.per_slot > 0
    }

    /// Whether the current slot's quota is used up: until the next slot, comments are skipped.
    pub fn slot_full(&self) -> bool {
        self.is_on() && self.sent_in_slot >= self.per_slot
    }

    /// The verdict for the next comment in `seq` order.
    pub fn admit(&mut self, seq: i64, created_at: OffsetDateTime) -> Verdict {
        if !self.is_on() {
            return Verdict {
                marker: None,
                send: true,
            };
        }
        let slot = (created_at.unix_timestamp_nanos() / self.slot_len.as_nanos() as i128) as i64;
        if slot > self.slot {
            self.slot = slot;
            self.sent_in_slot = 0;
        }
        if self.sent_in_slot < self.per_slot {
            self.sent_in_slot += 1;
            return Verdict {
                marker: self.run.take().map(|(run, _)| run),
                send: true,
            };
        }
        match &mut self.run {
            Some((run, _)) if run.to_seq + 1 == seq => {
                run.to_seq = seq;
                run.count += 1;
            }
            _ => {
                // A run is always followed by a sent comment or flushed, so none is open here
                // unless the order jumped (a restart resuming later); announce the old run then.
                let earlier = self.run.take().map(|(run, _)| run);
                self.run = Some((
                    Skipped {
                        from_seq: seq,
                        to_seq: seq,
                        count: 1,
                    },
                    Instant::now(),
                ));
                return Verdict {
                    marker: earlier,
                    send: false,
                };
            }
        }
        Verdict {
            marker: None,
            send: false,
        }
    }

    /// A run of skipped comments with no sent comment after it is announced after this long:
    /// two slots, so that in a flood the next slot's sample announces it.
    fn flush_after(&self) -> Duration {
        self.slot_len * 2
    }

    /// The open run of skipped comments, if it began at least [`Self::flush_after`] before
    /// `now`.
    pub fn flush_due(&mut self, now: Instant) -> Option<Skipped> {
        match self.run {
            Some((_, since)) if now.duration_since(since) >= self.flush_after() => {
                self.run.take().map(|(run, _)| run)
            }
            _ => None,
        }
    }

    /// Samples a recovery's replay with a budget of its own: the comments to send, and the runs
    /// skipped between them (in order, the last one included). `keep` names comments sent
    /// whatever the budget (the joiner's own).
    pub fn sample<T>(
        per_second: u32,
        slot: Duration,
        comments: Vec<T>,
        key: impl Fn(&T) -> (i64, OffsetDateTime),
        keep: impl Fn(&T) -> bool,
    ) -> (Vec<T>, Vec<Skipped>) {
        let mut budget = DeliveryBudget::new(per_second, slot);
        let mut sent = Vec::new();
        let mut runs = Vec::new();
        for comment in comments {
            let (seq, created_at) = key(&comment);
            let verdict = budget.admit(seq, created_at);
            runs.extend(verdict.marker);
            if verdict.send || keep(&comment) {
                sent.push(comment);
            }
        }
        runs.extend(budget.run.take().map(|(run, _)| run));
        (sent, runs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slot these tests count in (20/s: 5 a slot).
    const QUARTER: Duration = Duration::from_millis(250);

    fn at(ms: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap()
    }

    /// Runs a stream of `(seq, commit ms)` through a budget; returns the sent seqs and markers.
    fn run(per_second: u32, stream: &[(i64, i64)]) -> (Vec<i64>, Vec<Skipped>) {
        run_in(QUARTER, per_second, stream)
    }

    fn run_in(slot: Duration, per_second: u32, stream: &[(i64, i64)]) -> (Vec<i64>, Vec<Skipped>) {
        let mut budget = DeliveryBudget::new(per_second, slot);
        let mut sent = Vec::new();
        let mut markers = Vec::new();
        for &(seq, ms) in stream {
            let v = budget.admit(seq, at(ms));
            markers.extend(v.marker);
            if v.send {
                sent.push(seq);
            }
        }
        markers.extend(budget.run.take().map(|(r, _)| r));
        (sent, markers)
    }

    #[test]
    fn below_the_budget_every_comment_is_sent() {
        // 20/s: 5 per 250 ms slot; 4 comments per slot pass untouched.
        let stream: Vec<(i64, i64)> = (1..=40).map(|s| (s, s * 60)).collect();
        let (sent, markers) = run(20, &stream);
        assert_eq!(sent, (1..=40).collect::<Vec<_>>());
        assert!(markers.is_empty());
    }

    #[test]
    fn a_flood_is_sampled_per_slot_and_every_skipped_seq_is_in_exactly_one_marker() {
        // 1,000 comments/s for 2 s, one per millisecond.
        let stream: Vec<(i64, i64)> = (1..=2000).map(|s| (s, 10_000 + s - 1)).collect();
        let (sent, markers) = run(20, &stream);
        assert_eq!(sent.len(), 8 * 5, "5 in each of the 8 slots");
        assert_eq!(markers.len(), 8, "one run per slot");
        let mut covered: Vec<i64> = sent.clone();
        for m in &markers {
            assert_eq!(m.count as i64, m.to_seq - m.from_seq + 1);
            covered.extend(m.from_seq..=m.to_seq);
        }
        covered.sort_unstable();
        assert_eq!(
            covered,
            (1..=2000).collect::<Vec<_>>(),
            "sent ∪ markers = all, once each"
        );
        // A marker comes right before the first comment of the next slot.
        assert_eq!(markers[0].from_seq, sent[4] + 1);
        assert_eq!(markers[0].to_seq + 1, sent[5]);
    }

    #[test]
    fn a_longer_slot_sends_the_same_rate_in_half_as_many_bursts() {
        // The same flood as above, sampled per half-second: 10 a slot, one run after each.
        let stream: Vec<(i64, i64)> = (1..=2000).map(|s| (s, 10_000 + s - 1)).collect();
        let (sent, markers) = run_in(Duration::from_millis(500), 20, &stream);
        assert_eq!(sent.len(), 40, "the same 20 a second");
        assert_eq!(markers.len(), 4, "4 slots instead of 8");
        let firsts: Vec<i64> = (0..4).map(|slot| 1 + slot * 500).collect();
        for first in firsts {
            assert_eq!(
                sent.iter()
                    .filter(|&&s| (first..first + 10).contains(&s))
                    .count(),
                10,
                "the slot's first 10 from seq {first}"
            );
        }
    }

    #[test]
    fn two_budgets_fed_the_same_comments_send_the_same_sample() {
        let stream: Vec<(i64, i64)> = (1..=3000).map(|s| (s, 50_000 + s * 7 / 10)).collect();
        assert_eq!(run(20, &stream), run(20, &stream));
        // One that starts mid-slot agrees from the next slot on.
        let late = run(20, &stream[100..]);
        let full = run(20, &stream);
        let next_slot = full.0.iter().find(|&&s| s > 100 + 200).copied().unwrap();
        let tail = |v: &[i64]| {
            v.iter()
                .filter(|&&s| s >= next_slot)
                .copied()
                .collect::<Vec<_>>()
        };
        assert_eq!(tail(&late.0), tail(&full.0));
    }

    #[test]
    fn a_clock_behind_counts_in_the_current_slot() {
        // The second api node's clock is 300 ms behind: its comments do not reopen old slots.
        let stream: Vec<(i64, i64)> = (1..=40)
            .map(|s| (s, if s % 2 == 0 { 1000 } else { 700 }))
            .collect();
        let (sent, _) = run(20, &stream);
        assert_eq!(
            sent,
            vec![1, 2, 3, 4, 5, 6],
            "1 opens slot 2, 2 moves to slot 4"
        );
    }

    #[test]
    fn an_open_run_is_flushed_after_a_while_and_not_before() {
        let mut budget = DeliveryBudget::new(4, QUARTER); // one per slot
        assert!(budget.admit(1, at(0)).send);
        assert!(!budget.admit(2, at(1)).send);
        assert!(!budget.admit(3, at(2)).send);
        let now = Instant::now();
        assert_eq!(budget.flush_due(now), None);
        assert_eq!(
            budget.flush_due(now + QUARTER),
            None,
            "the next slot may announce it"
        );
        let flushed = budget.flush_due(now + QUARTER * 2).unwrap();
        assert_eq!(
            flushed,
            Skipped {
                from_seq: 2,
                to_seq: 3,
                count: 2
            }
        );
        assert_eq!(budget.flush_due(now + QUARTER * 4), None);
    }

    #[test]
    fn off_sends_everything() {
        let stream: Vec<(i64, i64)> = (1..=500).map(|s| (s, 0)).collect();
        assert_eq!(run(0, &stream).0.len(), 500);
    }

    #[test]
    fn a_replay_keeps_the_joiners_own_comments_and_lists_every_skipped_run() {
        let comments: Vec<(i64, i64)> = (11..=110).map(|s| (s, 0)).collect();
        let (sent, runs) = DeliveryBudget::sample(
            20,
            QUARTER,
            comments,
            |&(s, ms)| (s, at(ms)),
            |&(s, _)| s == 50,
        );
        let seqs: Vec<i64> = sent.iter().map(|c| c.0).collect();
        assert_eq!(seqs, vec![11, 12, 13, 14, 15, 50]);
        assert_eq!(
            runs,
            vec![Skipped {
                from_seq: 16,
                to_seq: 110,
                count: 95
            }]
        );
    }
}
