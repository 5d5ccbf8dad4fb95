//! The `banter` node: configuration, logging, wiring of store and API into one HTTP server,
//! health probes, and graceful shutdown. It holds no business logic; tests start exactly this
//! application (`Application::build` on port 0).

pub mod allocator;
mod app;
mod descriptor_limit;
mod gateway;
mod health;
mod listener;
mod methods;
pub mod metrics;
mod principals;
mod public_videos;
pub mod settings;
pub mod telemetry;

pub use app::{Application, StopHandle, store_config};
pub use settings::Settings;
