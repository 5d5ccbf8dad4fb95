//! `Pace`: how often a big topic writes comment events to each of its viewers.
//!
//! A topic with `RealtimeConfig::paced_topic_viewers` viewers on this node sends at most about
//! `max_writes_per_second_per_viewer` writes of comments a second to each. An event that comes
//! within one interval (`1 / max_writes_per_second_per_viewer`) of the topic's last write to
//! everyone is held; the held events go together when the interval is over, or at once when
//! they are a whole batch: as many as the topic's recent rate brings per interval. So at twice
//! the write rate comments go in pairs, the first waiting for the second (not for the end of
//! the interval), and a comment after a quiet interval goes at once.
//!
//! Kept out: holding and sending (the channel), the delivery budget's sample (`budget.rs`).

use std::time::{Duration, Instant};

pub(crate) struct Pace {
    /// Between two writes to everyone; `None`: pacing off.
    interval: Option<Duration>,
    min_viewers: usize,
    last_write: Option<Instant>,
    /// Events for everyone counted in the current second (from `window_start`), and in the one
    /// before it.
    window_start: Option<Instant>,
    this_second: u32,
    last_second: u32,
}

impl Pace {
    pub fn new(writes_per_second: u32, min_viewers: usize) -> Self {
        Self {
            interval: (writes_per_second > 0).then(|| Duration::from_secs(1) / writes_per_second),
            min_viewers: min_viewers.max(1),
            last_write: None,
            window_start: None,
            this_second: 0,
            last_second: 0,
        }
    }

    /// Until when an event for everyone of a topic with `viewers` here waits (`None`: it need
    /// not): one interval after the last write to everyone.
    pub fn until(&self, viewers: usize) -> Option<Instant> {
        let interval = self.interval?;
        if viewers < self.min_viewers {
            return None;
        }
        self.last_write.map(|at| at + interval)
    }

    /// How many held events make a batch that goes before the interval is over: the events
    /// of the busier of the last two seconds per interval, rounded up (at least 2, so that a
    /// lone event waits for the interval).
    pub fn batch(&self) -> usize {
        let Some(interval) = self.interval else {
            return 1;
        };
        let per_second = self.this_second.max(self.last_second) as u128;
        let per_interval = (per_second * interval.as_millis()).div_ceil(1000);
        (per_interval as usize).max(2)
    }

    /// An event for everyone, sent or held.
    pub fn counted(&mut self, now: Instant) {
        match self.window_start {
            Some(start) if now < start + Duration::from_secs(1) => {}
            Some(start) => {
                self.last_second = if now < start + Duration::from_secs(2) {
                    self.this_second
                } else {
                    0
                };
                self.this_second = 0;
                self.window_start = Some(now);
            }
            None => self.window_start = Some(now),
        }
        self.this_second = self.this_second.saturating_add(1);
    }

    /// Comment events went to everyone at `now`.
    pub fn wrote(&mut self, now: Instant) {
        self.last_write = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_or_small_topics_never_wait() {
        let now = Instant::now();
        let mut off = Pace::new(0, 1);
        off.wrote(now);
        assert_eq!(off.until(10_000), None);
        let mut pace = Pace::new(5, 1000);
        pace.wrote(now);
        assert_eq!(pace.until(999), None);
        assert_eq!(pace.until(1000), Some(now + Duration::from_millis(200)));
    }

    #[test]
    fn the_batch_is_the_recent_rate_per_interval() {
        let start = Instant::now();
        let mut pace = Pace::new(5, 1);
        assert_eq!(pace.batch(), 2, "a lone event waits");
        for i in 0..20 {
            pace.counted(start + Duration::from_millis(i * 50));
        }
        // 20 in this second: 4 per 200 ms.
        assert_eq!(pace.batch(), 4);
        // The next second keeps the last one's rate until it is busier...
        pace.counted(start + Duration::from_millis(1000));
        assert_eq!(pace.batch(), 4);
        // ...and a quiet second after it forgets it.
        pace.counted(start + Duration::from_millis(3000));
        assert_eq!(pace.batch(), 2);
    }
}
