//! `banter`: runs a node (`banter` or `banter serve`), applies migrations as a separate job
//! (`banter migrate`), or changes a user's role (`banter set-role <login> <role>`).

use std::path::PathBuf;

use anyhow::Context;
use banter_core::Role;
use banter_server::{Application, Settings, allocator, store_config, telemetry};
use banter_store::Store;
use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: allocator::Allocator = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "banter", version, about = "Live comments for video pages")]
struct Cli {
    /// A TOML configuration file (BANTER_* variables override it).
    #[arg(long, short, env = "BANTER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the node (the default).
    Serve,
    /// Apply database migrations and exit (for a separate migration job; pair with
    /// BANTER_MIGRATE_ON_START=false on the nodes).
    Migrate,
    /// Give a user (by email or username) the role user, moderator or admin.
    SetRole { login: String, role: String },
}

fn main() -> anyhow::Result<()> {
    allocator::tune();
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref())?;
    // Before any HTTP client (the OTLP exporter's, the JWKS fetcher's) is made.
    banter_api::install_tls_provider();
    // Outside the async runtime: the OTLP exporter's blocking HTTP client must not be created
    // or dropped inside it.
    let telemetry = telemetry::init(settings.log_format(), &settings.log_level, std::io::stdout)?;
    let command = cli.command.unwrap_or(Command::Serve);
    let result = actix_web::rt::System::new().block_on(run(command, settings));
    telemetry.shutdown();
    result
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            Application::build(settings)
                .await?
                .run_until_signalled()
                .await?
        }
        Command::Migrate => {
            let mut config = store_config(&settings);
            config.run_migrations = true;
            Store::connect(&config).await?.close().await;
            tracing::info!("migrations applied");
        }
        Command::SetRole { login, role } => {
            let role: Role = role
                .parse()
                .context("role must be user, moderator or admin")?;
            let store = Store::connect(&store_config(&settings)).await?;
            let (user, _) = store
                .primary()
                .find_credentials(&login)
                .await?
                .with_context(|| format!("no user {login:?}"))?;
            store
                .primary()
                .update_standing(user.id, Some(role), None)
                .await?;
            println!("{} is now {}", user.username, role);
            store.close().await;
        }
    }
    Ok(())
}
