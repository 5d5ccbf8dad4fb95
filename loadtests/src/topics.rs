//! Which video each client watches: one hot video, uniform over V videos, or Zipf over V videos
//! (rank k drawn with weight 1/k^s, by inverse CDF over the exact weights).
//!
//! Kept out: how clients join (`client`); the scenario's TOML shape (`scenario`).

use rand::Rng;

use crate::scenario::TopicDistribution;

pub struct TopicPicker {
    prefix: String,
    /// Cumulative weights for Zipf; empty for the other kinds.
    cumulative: Vec<f64>,
    videos: usize,
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    Hot,
    Uniform,
    Zipf,
}

impl TopicPicker {
    pub fn new(dist: &TopicDistribution, prefix: &str) -> TopicPicker {
        let (kind, videos, cumulative) = match *dist {
            TopicDistribution::Hot => (Kind::Hot, 1, Vec::new()),
            TopicDistribution::Uniform { videos } => (Kind::Uniform, videos, Vec::new()),
            TopicDistribution::Zipf { videos, exponent } => {
                let mut total = 0.0;
                let cumulative = (1..=videos)
                    .map(|k| {
                        total += 1.0 / (k as f64).powf(exponent);
                        total
                    })
                    .collect();
                (Kind::Zipf, videos, cumulative)
            }
        };
        TopicPicker {
            prefix: prefix.to_owned(),
            cumulative,
            videos: videos.max(1),
            kind,
        }
    }

    /// A video's rank, 0 being the most popular.
    pub fn pick_rank(&self, rng: &mut impl Rng) -> usize {
        match self.kind {
            Kind::Hot => 0,
            Kind::Uniform => rng.random_range(0..self.videos),
            Kind::Zipf => {
                let total = *self.cumulative.last().unwrap_or(&1.0);
                let x = rng.random::<f64>() * total;
                self.cumulative
                    .partition_point(|&c| c <= x)
                    .min(self.videos - 1)
            }
        }
    }

    /// The video id of a rank: `<prefix>-<rank>`.
    pub fn video(&self, rank: usize) -> String {
        format!("{}-{rank}", self.prefix)
    }

    pub fn topic(video: &str) -> String {
        format!("comments:{video}")
    }
}

#[cfg(test)]
mod tests {
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;

    fn histogram(dist: TopicDistribution, n: usize) -> Vec<usize> {
        let picker = TopicPicker::new(&dist, "v");
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = vec![0; 10];
        for _ in 0..n {
            counts[picker.pick_rank(&mut rng)] += 1;
        }
        counts
    }

    #[test]
    fn hot_is_always_the_first_video() {
        assert_eq!(histogram(TopicDistribution::Hot, 100)[0], 100);
    }

    #[test]
    fn uniform_covers_every_video_evenly() {
        let counts = histogram(TopicDistribution::Uniform { videos: 10 }, 100_000);
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn zipf_rank_frequencies_fall_as_one_over_k() {
        let counts = histogram(
            TopicDistribution::Zipf {
                videos: 10,
                exponent: 1.0,
            },
            200_000,
        );
        // H(10) = 2.929: rank 1 gets 34.1 %, rank 2 17.1 %, rank 10 3.4 %.
        let share = |k: usize| counts[k] as f64 / 200_000.0;
        assert!((share(0) - 0.3414).abs() < 0.01, "{counts:?}");
        assert!((share(1) - 0.1707).abs() < 0.01, "{counts:?}");
        assert!((share(9) - 0.0341).abs() < 0.005, "{counts:?}");
    }
}
