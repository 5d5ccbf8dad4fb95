//! `banter-load`: the WebSocket load generator for Banter. It speaks Phoenix Channels V2 to a
//! server over the network only, measures with HDR histograms, and writes reports that merge
//! exactly across generators.
//!
//! - `scenario`: the TOML scenario and command-line overrides.
//! - `run`: one generator's run of a scenario; `client`: one simulated viewer or poster.
//! - `wire`: client-side frames; `topics`: which video a client watches; `sources`: source
//!   addresses and the file-descriptor limit; `accounts`: poster sign-up.
//! - `recorder`, `histogram`, `seq_tracker`: the measurements; `proc_watch`: local CPU and RSS.
//! - `report`, `chart`: the JSON report, its merge, the summary and the SVG chart.
//!
//! Kept out: anything that reaches into the server other than its public HTTP and WebSocket API.

pub mod accounts;
pub mod chart;
pub mod client;
pub mod histogram;
pub mod proc_watch;
pub mod recorder;
pub mod report;
pub mod run;
pub mod scenario;
pub mod seq_tracker;
pub mod sources;
pub mod topics;
pub mod windows;
pub mod wire;

pub use report::{Report, Verdict};
pub use run::{RunOptions, run};
pub use scenario::Scenario;
