//! The command line: `tracemap serve`, the CI client (`tracemap upload …`) and local tools
//! (`debug-files check`, `sourcemaps inject`, `symbolicate`). Argument parsing only; each
//! command lives in its own module. `anyhow` is used here and nowhere in the library.

pub mod check;
pub mod inject;
pub mod symbolicate;
pub mod upload;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, LogFormat, Overrides};

#[derive(Debug, Parser)]
#[command(
    name = "tracemap",
    version,
    about = "Self-hosted symbolication for JavaScript and native stack traces"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (embedded default: ./tracemap-data, 127.0.0.1:7878).
    Serve(ServeArgs),
    /// Upload release artifacts or debug files to a Tracemap server.
    #[command(subcommand)]
    Upload(UploadCommand),
    /// Local tools for native debug files.
    #[command(subcommand, name = "debug-files")]
    DebugFiles(DebugFilesCommand),
    /// Local tools for source maps.
    #[command(subcommand)]
    Sourcemaps(SourcemapsCommand),
    /// Send an event's stack traces to the server and print them resolved.
    Symbolicate(symbolicate::SymbolicateArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML config file (see tracemap.example.toml).
    #[arg(long, env = "TRACEMAP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7878].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Local data directory [default: ./tracemap-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Object store URL (s3://bucket/prefix, file:///path, ...) or an absolute path to a local
    /// directory, instead of {data_dir}/store.
    #[arg(long)]
    pub store_url: Option<String>,
    /// Log format: text or json.
    #[arg(long, value_parser = parse_log_format)]
    pub log_format: Option<LogFormat>,
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("unknown log format {other:?}; use text or json")),
    }
}

impl ServeArgs {
    pub fn load_config(&self) -> Result<Config, crate::config::ConfigError> {
        Config::load(
            self.config.as_deref(),
            std::env::vars(),
            &Overrides {
                listen: self.listen,
                data_dir: self.data_dir.clone(),
                store_url: self.store_url.clone(),
                log_format: self.log_format,
            },
        )
    }
}

/// Where the server is and how to authenticate.
#[derive(Debug, Args, Clone)]
pub struct ServerArgs {
    /// Base URL of the Tracemap server.
    #[arg(long, env = "TRACEMAP_URL", default_value = "http://127.0.0.1:7878")]
    pub server: String,
    /// Bearer token (scope `upload` for uploads, `symbolicate` for symbolicate).
    #[arg(long, env = "TRACEMAP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum UploadCommand {
    /// Upload minified JavaScript, source maps and sources of a build directory.
    Sourcemaps(upload::SourcemapsArgs),
    /// Upload native debug files found in files, directories and zips.
    #[command(name = "debug-files")]
    DebugFiles(upload::DebugFilesArgs),
}

#[derive(Debug, Subcommand)]
pub enum DebugFilesCommand {
    /// Print what the server would store for debug files: kind, arch, IDs, features of each
    /// object. Takes what `upload debug-files` takes: files, directories (dSYM) and zips.
    Check {
        /// The file, directory or zip to inspect.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum SourcemapsCommand {
    /// Write debug IDs into .js files and their source maps (sentry-cli 3.x format).
    Inject {
        /// Build directory to process.
        dir: PathBuf,
        /// Only report what would change.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Runs a client command (everything but `serve`).
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(_) => unreachable!("serve is dispatched by main"),
        Command::Upload(UploadCommand::Sourcemaps(args)) => upload::sourcemaps(args).await,
        Command::Upload(UploadCommand::DebugFiles(args)) => upload::debug_files(args).await,
        Command::DebugFiles(DebugFilesCommand::Check { file }) => check::check(&file),
        Command::Sourcemaps(SourcemapsCommand::Inject { dir, dry_run }) => {
            let mode = if dry_run {
                inject::Mode::DryRun
            } else {
                inject::Mode::Write
            };
            inject::run(&dir, mode)
        }
        Command::Symbolicate(args) => symbolicate::run(args).await,
    }
}
