//! A scenario: what load to put on which server, read from TOML, with any field overridable from
//! the command line as `--set path.to.field=value` (the value in TOML syntax, or a bare string).
//!
//! Kept out: running it (`run`), the topic sampling (`topics`).

use std::path::Path;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The socket endpoint, e.g. `ws://127.0.0.1:4000/socket/websocket`.
    pub url: String,
    /// The REST base for sign-ups, REST posting and the final `seq` of each video; by default
    /// the socket URL's scheme, host and port as `http`.
    #[serde(default)]
    pub api_url: Option<String>,
    /// Sockets to open in all (watchers plus posters).
    pub connections: usize,
    /// New sockets per second during the ramp.
    #[serde(default = "default_ramp")]
    pub ramp_per_sec: f64,
    /// How long the steady phase lasts once the ramp is over.
    pub duration_secs: f64,
    /// After the last post, how long viewers keep listening before the loss count is taken.
    #[serde(default = "default_drain")]
    pub drain_secs: f64,
    /// Video ids are `<video_prefix>-<rank>`.
    #[serde(default = "default_prefix")]
    pub video_prefix: String,
    #[serde(default = "default_heartbeat")]
    pub heartbeat_secs: f64,
    #[serde(default)]
    pub topics: TopicDistribution,
    #[serde(default)]
    pub publish: Publish,
    #[serde(default)]
    pub storm: Option<Storm>,
    #[serde(default)]
    pub reconnect: Reconnect,
    #[serde(default)]
    pub source: Source,
    /// Tells this run's poster accounts apart from other runs'; random when absent.
    #[serde(default)]
    pub run_id: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum TopicDistribution {
    /// Every client on one video.
    #[default]
    Hot,
    Uniform {
        videos: usize,
    },
    Zipf {
        videos: usize,
        #[serde(default = "default_exponent")]
        exponent: f64,
    },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    #[default]
    Socket,
    Rest,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publish {
    /// Clients that sign up and post (they watch too); the rest only watch.
    #[serde(default)]
    pub posters: usize,
    /// Comments per second over all posters, spread evenly.
    #[serde(default)]
    pub rate_per_sec: f64,
    #[serde(default)]
    pub via: Via,
    /// Seconds after the ramp before posting starts.
    #[serde(default = "default_publish_delay")]
    pub start_delay_secs: f64,
}

impl Default for Publish {
    fn default() -> Self {
        Publish {
            posters: 0,
            rate_per_sec: 0.0,
            via: Via::Socket,
            start_delay_secs: default_publish_delay(),
        }
    }
}

/// Every client drops its socket at once (no close frame) and reconnects, rejoining with
/// `since_seq`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storm {
    /// Seconds into the steady phase.
    pub at_secs: f64,
    /// Each client waits a random 0..jitter before reconnecting (0: all at once).
    #[serde(default)]
    pub jitter_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reconnect {
    /// Reconnect after an unexpected disconnect (the `phoenix` client's backoff, then
    /// `max_backoff_ms`).
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_max_backoff")]
    pub max_backoff_ms: u64,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            enabled: true,
            max_backoff_ms: default_max_backoff(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Local addresses to connect from, in turn. Empty: when the target is a loopback address,
    /// 127.0.0.1, 127.0.0.2, … as many as needed; otherwise the system's choice.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Sockets per source address before the next is used. Keep it under both the ephemeral
    /// port range (about 28k) and the server's per-IP socket limit.
    #[serde(default = "default_per_address")]
    pub per_address: usize,
}

impl Default for Source {
    fn default() -> Self {
        Source {
            addresses: Vec::new(),
            per_address: default_per_address(),
        }
    }
}

fn default_ramp() -> f64 {
    1000.0
}
fn default_drain() -> f64 {
    3.0
}
fn default_prefix() -> String {
    "load".to_owned()
}
fn default_heartbeat() -> f64 {
    30.0
}
fn default_exponent() -> f64 {
    1.0
}
fn default_publish_delay() -> f64 {
    2.0
}
fn default_max_backoff() -> u64 {
    5000
}
fn default_per_address() -> usize {
    5000
}
fn yes() -> bool {
    true
}

impl Scenario {
    /// Reads a scenario file and applies `key=value` overrides in order.
    pub fn load(path: &Path, overrides: &[String]) -> anyhow::Result<Scenario> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read scenario {}", path.display()))?;
        Scenario::parse(&text, overrides).with_context(|| format!("in {}", path.display()))
    }

    pub fn parse(text: &str, overrides: &[String]) -> anyhow::Result<Scenario> {
        let mut table: toml::Table = toml::from_str(text).context("scenario is not valid TOML")?;
        for o in overrides {
            apply_override(&mut table, o)?;
        }
        let scenario: Scenario = toml::Value::Table(table)
            .try_into()
            .context("scenario has a wrong field")?;
        scenario.validate()?;
        Ok(scenario)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let url = url::Url::parse(&self.url).with_context(|| format!("url {:?}", self.url))?;
        match url.scheme() {
            "ws" => {}
            "wss" => bail!("url: wss:// is not supported yet; target the plain ws:// port"),
            other => bail!("url: scheme must be ws, not {other}"),
        }
        if self.connections == 0 {
            bail!("connections must be at least 1");
        }
        if !positive(self.ramp_per_sec) {
            bail!("ramp_per_sec must be positive");
        }
        if !positive(self.duration_secs) || !(positive(self.drain_secs) || self.drain_secs == 0.0) {
            bail!("duration_secs must be positive and drain_secs not negative");
        }
        if !positive(self.heartbeat_secs) {
            bail!("heartbeat_secs must be positive");
        }
        if self.publish.posters > self.connections {
            bail!(
                "publish.posters ({}) exceeds connections ({})",
                self.publish.posters,
                self.connections
            );
        }
        if self.publish.posters > 0 && !positive(self.publish.rate_per_sec) {
            bail!("publish.rate_per_sec must be positive when there are posters");
        }
        if self.publish.rate_per_sec > 0.0 && self.publish.posters == 0 {
            bail!("publish.rate_per_sec needs publish.posters > 0");
        }
        match self.topics {
            TopicDistribution::Uniform { videos } | TopicDistribution::Zipf { videos, .. }
                if videos == 0 =>
            {
                bail!("topics.videos must be at least 1")
            }
            TopicDistribution::Zipf { exponent, .. } if !positive(exponent) => {
                bail!("topics.exponent must be positive")
            }
            _ => {}
        }
        if let Some(storm) = &self.storm
            && !(storm.at_secs >= 0.0 && storm.at_secs < self.duration_secs)
        {
            bail!("storm.at_secs must lie within the steady phase (0..duration_secs)");
        }
        if self.source.per_address == 0 {
            bail!("source.per_address must be at least 1");
        }
        for a in &self.source.addresses {
            a.parse::<std::net::IpAddr>()
                .with_context(|| format!("source.addresses: {a:?} is not an IP address"))?;
        }
        Ok(())
    }

    /// The REST base URL.
    pub fn api_base(&self) -> String {
        if let Some(api) = &self.api_url {
            return api.trim_end_matches('/').to_owned();
        }
        let url = url::Url::parse(&self.url).expect("validated");
        let host = url.host_str().unwrap_or("127.0.0.1");
        let port = url.port_or_known_default().unwrap_or(80);
        format!("http://{host}:{port}")
    }
}

/// Finite and above zero (NaN and infinity are refused).
fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

fn apply_override(table: &mut toml::Table, assignment: &str) -> anyhow::Result<()> {
    let Some((path, raw)) = assignment.split_once('=') else {
        bail!("override {assignment:?} is not key=value");
    };
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
    let keys: Vec<&str> = path.trim().split('.').collect();
    let (last, parents) = keys.split_last().expect("split yields one");
    let mut node = table;
    for key in parents {
        let entry = node
            .entry(key.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = entry
            .as_table_mut()
            .with_context(|| format!("override {path}: {key} is not a table"))?;
    }
    node.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOT: &str = r#"
        name = "hot"
        url = "ws://127.0.0.1:4000/socket/websocket"
        connections = 100
        duration_secs = 10
        [topics]
        kind = "hot"
        [publish]
        posters = 5
        rate_per_sec = 10
    "#;

    #[test]
    fn parses_with_defaults() {
        let s = Scenario::parse(HOT, &[]).unwrap();
        assert_eq!(s.topics, TopicDistribution::Hot);
        assert_eq!((s.publish.posters, s.publish.via), (5, Via::Socket));
        assert_eq!(s.ramp_per_sec, 1000.0);
        assert_eq!(s.api_base(), "http://127.0.0.1:4000");
        assert!(s.storm.is_none());
    }

    #[test]
    fn overrides_reach_any_field_and_add_tables() {
        let s = Scenario::parse(
            HOT,
            &[
                "connections=7".into(),
                "publish.via=rest".into(),
                "topics.kind=zipf".into(),
                "topics.videos=50".into(),
                "storm.at_secs=2.5".into(),
                "url=ws://10.0.0.1:80/socket/websocket".into(),
            ],
        )
        .unwrap();
        assert_eq!(s.connections, 7);
        assert_eq!(s.publish.via, Via::Rest);
        assert_eq!(
            s.topics,
            TopicDistribution::Zipf {
                videos: 50,
                exponent: 1.0
            }
        );
        assert_eq!(s.storm.as_ref().unwrap().at_secs, 2.5);
        assert_eq!(s.api_base(), "http://10.0.0.1:80");
    }

    #[test]
    fn refuses_bad_scenarios_with_the_field_named() {
        let cases = [
            ("connections=0", "connections"),
            ("publish.posters=101", "posters"),
            ("topics.kind=\"pareto\"", "wrong field"),
            ("colour=\"red\"", "wrong field"),
            ("url=\"http://x/\"", "scheme"),
            ("url=\"wss://x/\"", "wss"),
            ("storm.at_secs=10", "storm"),
            ("source.addresses=[\"nope\"]", "source.addresses"),
            ("duration_secs", "key=value"),
        ];
        for (o, needle) in cases {
            let err = format!("{:#}", Scenario::parse(HOT, &[o.to_string()]).unwrap_err());
            assert!(err.contains(needle), "{o}: {err}");
        }
        assert!(Scenario::parse("name = ", &[]).is_err());
    }

    #[test]
    fn shipped_scenarios_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            Scenario::load(&path, &[]).unwrap();
            n += 1;
        }
        assert!(n >= 5, "expected the standard scenarios, found {n}");
    }
}
