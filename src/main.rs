//! The `tracemap` binary: parse the command line, set up logging, dispatch, print the whole
//! error chain and set the exit code. Everything else lives in the library.

use clap::Parser;
use tracemap::cli::{Cli, Command};

/// jemalloc, not the system allocator: under a long mixed load glibc's malloc let the
/// server's RSS grow far past its live heap (fragmentation it never returned), while
/// jemalloc purges freed pages back to the OS.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => {
                let config = args.load_config()?;
                tracemap::server::init_tracing(config.log_format);
                Ok(tracemap::server::serve(config).await?)
            }
            other => {
                tracemap::server::init_tracing(tracemap::config::LogFormat::Text);
                tracemap::cli::run(other).await
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
