//! `tracemap symbolicate --project P event.json`: sends an event's stack traces to the
//! server and prints them resolved, one frame a line, with the reason for every frame that
//! stays unresolved. Handy in CI and for support.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use super::ServerArgs;

#[derive(Debug, Args)]
pub struct SymbolicateArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Project to resolve against.
    #[arg(long, short = 'p', env = "TRACEMAP_PROJECT")]
    pub project: String,
    /// Treat the event as native (default: detected from `instruction_addr` in frames).
    #[arg(long)]
    pub native: bool,
    /// Print the raw JSON response instead of the readable trace.
    #[arg(long)]
    pub json: bool,
    /// A symbolicate request body (`{"stacktraces": …}`), or `-` for standard input.
    pub event: PathBuf,
}

pub async fn run(args: SymbolicateArgs) -> anyhow::Result<()> {
    let body = if args.event.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        s
    } else {
        std::fs::read_to_string(&args.event)
            .with_context(|| format!("reading {}", args.event.display()))?
    };
    let event: serde_json::Value = serde_json::from_str(&body).context("the event is not JSON")?;
    let platform = if args.native || body.contains("\"instruction_addr\"") {
        Platform::Native
    } else {
        Platform::Js
    };
    let url = format!(
        "{}/api/v1/projects/{}/symbolicate/{}",
        args.server.server.trim_end_matches('/'),
        super::upload::seg(&args.project),
        platform.as_str()
    );
    let mut rb = reqwest::Client::new().post(&url).json(&event);
    if let Some(t) = &args.server.token {
        rb = rb.bearer_auth(t);
    }
    let response = rb.send().await.context("calling the server")?;
    let status = response.status();
    let v: serde_json::Value = response.json().await.context("reading the response")?;
    if !status.is_success() {
        bail!(
            "HTTP {status}: {}",
            v["error"]["message"].as_str().unwrap_or("request failed")
        );
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    print!("{}", render(&v, platform));
    Ok(())
}

/// Which symbolicate endpoint an event goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Platform {
    Js,
    Native,
}

impl Platform {
    fn as_str(self) -> &'static str {
        match self {
            Platform::Js => "js",
            Platform::Native => "native",
        }
    }
}

/// The readable form of a symbolicate response.
fn render(v: &serde_json::Value, platform: Platform) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let s = |x: &serde_json::Value| x.as_str().unwrap_or("?").to_owned();
    for (i, st) in v["stacktraces"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let _ = writeln!(out, "stack trace {i}:");
        for f in st["frames"].as_array().into_iter().flatten() {
            if platform == Platform::Native {
                let loc = match (f["filename"].as_str(), f["lineno"].as_u64()) {
                    (Some(file), Some(line)) => format!(" at {file}:{line}"),
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "  {} {}{loc} [{}]{}",
                    s(&f["instruction_addr"]),
                    f["function"].as_str().unwrap_or("<unknown>"),
                    s(&f["status"]),
                    f["diagnostic"]
                        .as_str()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                );
            } else {
                let ok = f["data"]["symbolicated"].as_bool().unwrap_or(false);
                let _ = writeln!(
                    out,
                    "  {} at {}:{}:{}{}",
                    f["function"].as_str().unwrap_or("<anonymous>"),
                    f["filename"]
                        .as_str()
                        .or(f["abs_path"].as_str())
                        .unwrap_or("?"),
                    f["lineno"],
                    f["colno"],
                    if ok {
                        String::new()
                    } else {
                        format!(
                            "  [unresolved: {}]",
                            f["data"]["diagnostic"].as_str().unwrap_or("?")
                        )
                    }
                );
            }
        }
    }
    for e in v["errors"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "error {}: {} ({})",
            s(&e["type"]),
            s(&e["abs_path"]),
            s(&e["diagnostic"])
        );
    }
    out
}
