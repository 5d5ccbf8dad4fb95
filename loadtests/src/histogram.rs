//! Latency histograms: HdrHistogram in microseconds (1 µs to 1 h, 3 significant digits), stored
//! in reports as base64 of the standard V2 compressed encoding so that reports from several
//! generators merge exactly and other HdrHistogram tools can read them.
//!
//! Kept out: which latencies are measured (`recorder`).

use base64::{Engine, engine::general_purpose::STANDARD};
use hdrhistogram::{
    Histogram,
    serialization::{Deserializer, Serializer, V2DeflateSerializer},
};
use serde::{Deserialize, Serialize};

const HIGHEST_US: u64 = 3_600_000_000;

#[derive(Clone, Debug)]
pub struct Latency(pub Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Latency(Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("static bounds are valid"))
    }
}

impl Latency {
    pub fn record_us(&mut self, us: u64) {
        self.0.saturating_record(us.clamp(1, HIGHEST_US));
    }

    pub fn add(&mut self, other: &Latency) {
        // Same bounds everywhere, so this cannot fail; saturate rather than panic if a report
        // from another build used wider ones.
        if self.0.add(&other.0).is_err() {
            for v in other.0.iter_recorded() {
                self.0
                    .saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// Milliseconds at quantile `q`.
    pub fn ms_at(&self, q: f64) -> f64 {
        self.0.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn summary(&self) -> Summary {
        Summary {
            count: self.count(),
            min_ms: self.0.min() as f64 / 1000.0,
            p50_ms: self.ms_at(0.5),
            p90_ms: self.ms_at(0.9),
            p99_ms: self.ms_at(0.99),
            p999_ms: self.ms_at(0.999),
            max_ms: self.0.max() as f64 / 1000.0,
            mean_ms: self.0.mean() / 1000.0,
        }
    }
}

/// Percentiles for people; recomputed from the histogram, never merged themselves.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Serialize for Latency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.0, &mut bytes)
            .map_err(|e| serde::ser::Error::custom(format!("histogram: {e:?}")))?;
        s.serialize_str(&STANDARD.encode(bytes))
    }
}

impl<'de> Deserialize<'de> for Latency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = STANDARD
            .decode(text.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("histogram is not base64: {e}")))?;
        let h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| serde::de::Error::custom(format!("histogram: {e:?}")))?;
        let mut out = Latency::default();
        out.add(&Latency(h));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_through_json_is_exact() {
        let mut a = Latency::default();
        let mut b = Latency::default();
        let mut both = Latency::default();
        for v in 1..=10_000u64 {
            let us = v * 37 % 50_000 + 1;
            if v % 3 == 0 {
                a.record_us(us)
            } else {
                b.record_us(us)
            }
            both.record_us(us);
        }
        let a2: Latency = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        let b2: Latency = serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
        let mut merged = Latency::default();
        merged.add(&a2);
        merged.add(&b2);
        assert_eq!(merged.0, both.0);
        assert_eq!(merged.summary(), both.summary());
        assert_eq!(merged.count(), 10_000);
    }

    #[test]
    fn out_of_range_values_saturate() {
        let mut h = Latency::default();
        h.record_us(0);
        h.record_us(u64::MAX);
        assert_eq!(h.count(), 2);
        assert!(h.summary().max_ms >= 3_600_000.0 * 0.999);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(serde_json::from_str::<Latency>("\"!!\"").is_err());
        assert!(serde_json::from_str::<Latency>("\"aGVsbG8=\"").is_err());
    }
}
