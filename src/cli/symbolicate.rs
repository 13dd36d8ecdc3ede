//! `tracemap symbolicate --project P event.json`: sends an event's stack traces to the
//! server and prints them resolved, one frame a line, with the reason for every frame that
//! stays unresolved. Handy in CI and for support. `tracemap symbolicate minidump -p P
//! crash.dmp` does the same for a minidump: every thread walked and resolved.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use super::ServerArgs;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SymbolicateArgs {
    #[command(subcommand)]
    pub command: Option<SymbolicateCommand>,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Project to resolve against.
    #[arg(long, short = 'p', env = "TRACEMAP_PROJECT", required = true)]
    pub project: Option<String>,
    /// Treat the event as native (default: detected from `instruction_addr` in frames).
    #[arg(long)]
    pub native: bool,
    /// Print the raw JSON response instead of the readable trace.
    #[arg(long)]
    pub json: bool,
    /// A symbolicate request body (`{"stacktraces": …}`), or `-` for standard input.
    #[arg(required = true)]
    pub event: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum SymbolicateCommand {
    /// Walk and resolve a minidump (Breakpad/Crashpad crash report) on the server.
    Minidump(MinidumpArgs),
}

#[derive(Debug, Args)]
pub struct MinidumpArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Project to resolve against.
    #[arg(long, short = 'p', env = "TRACEMAP_PROJECT")]
    pub project: String,
    /// Print the raw JSON response instead of the readable threads.
    #[arg(long)]
    pub json: bool,
    /// The minidump file (`.dmp`).
    pub dump: PathBuf,
}

pub async fn run(args: SymbolicateArgs) -> anyhow::Result<()> {
    if let Some(SymbolicateCommand::Minidump(m)) = args.command {
        return minidump(m).await;
    }
    let (Some(project), Some(event)) = (args.project, args.event) else {
        bail!("tracemap symbolicate needs --project and an event file");
    };
    let args = EventArgs {
        server: args.server,
        project,
        native: args.native,
        json: args.json,
        event,
    };
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
    let v = call(reqwest::Client::new().post(&url).json(&event), &args.server).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    print!("{}", render(&v, platform));
    Ok(())
}

/// Sends a request (with the token, if any) and returns its JSON answer; an error status
/// fails with the server's message.
async fn call(
    mut rb: reqwest::RequestBuilder,
    server: &ServerArgs,
) -> anyhow::Result<serde_json::Value> {
    if let Some(t) = &server.token {
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
    Ok(v)
}

struct EventArgs {
    server: ServerArgs,
    project: String,
    native: bool,
    json: bool,
    event: PathBuf,
}

async fn minidump(args: MinidumpArgs) -> anyhow::Result<()> {
    let file = tokio::fs::File::open(&args.dump)
        .await
        .with_context(|| format!("opening {}", args.dump.display()))?;
    let len = file.metadata().await?.len();
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
    let name = args
        .dump
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "minidump.dmp".into());
    let form = reqwest::multipart::Form::new().part(
        "upload_file_minidump",
        reqwest::multipart::Part::stream_with_length(body, len).file_name(name),
    );
    let url = format!(
        "{}/api/v1/projects/{}/symbolicate/minidump",
        args.server.server.trim_end_matches('/'),
        super::upload::seg(&args.project),
    );
    let v = call(
        reqwest::Client::new().post(&url).multipart(form),
        &args.server,
    )
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", render_minidump(&v));
    }
    Ok(())
}

/// The readable form of a minidump response: the crash, then each thread (the crashed one
/// marked), one frame a line with how it was found, then modules that lacked something.
fn render_minidump(v: &serde_json::Value) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} on {} {} ({}): {} at {}",
        if v["crashed"].as_bool().unwrap_or(false) {
            "crash"
        } else {
            "dump"
        },
        v["system_info"]["os_name"].as_str().unwrap_or("?"),
        v["system_info"]["os_version"].as_str().unwrap_or(""),
        v["system_info"]["cpu_arch"].as_str().unwrap_or("?"),
        v["crash_reason"].as_str().unwrap_or("no exception"),
        v["crash_address"].as_str().unwrap_or("?"),
    );
    for t in v["stacktraces"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "thread {}{}{}:",
            t["thread_id"],
            t["thread_name"]
                .as_str()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default(),
            if t["is_requesting"].as_bool().unwrap_or(false) {
                " [crashed]"
            } else {
                ""
            }
        );
        for f in t["frames"].as_array().into_iter().flatten() {
            let loc = match (f["filename"].as_str(), f["lineno"].as_u64()) {
                (Some(file), Some(line)) => format!(" at {file}:{line}"),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "  {} {}{loc} [{}, {}]{}",
                f["instruction_addr"].as_str().unwrap_or("?"),
                f["function"].as_str().unwrap_or("<unknown>"),
                f["status"].as_str().unwrap_or("?"),
                f["trust"].as_str().unwrap_or("?"),
                f["diagnostic"]
                    .as_str()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            );
        }
        if let Some(d) = t["diagnostic"].as_str() {
            let _ = writeln!(out, "  ({d})");
        }
    }
    for m in v["modules"].as_array().into_iter().flatten() {
        let (debug, unwind) = (
            m["debug_status"].as_str().unwrap_or("?"),
            m["unwind_status"].as_str().unwrap_or("?"),
        );
        if matches!(debug, "found" | "unused") && unwind == "found" {
            continue;
        }
        let _ = writeln!(
            out,
            "module {}: debug {debug}, unwind {unwind}",
            m["code_file"].as_str().unwrap_or("?")
        );
    }
    out
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
