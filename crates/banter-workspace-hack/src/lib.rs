//! No code: this crate exists for its `Cargo.toml`, which turns on, for the dependencies
//! `banter-server` shares with the rest of the workspace, the features the whole workspace
//! turns on. Building the server alone and building the workspace then agree on every shared
//! crate, so neither recompiles what the other built. `scripts/check-features` fails when they
//! drift apart.
