//! README.md's shell examples, run as written, so the README and the service cannot drift.
//!
//! The rule (also stated at the top of README's API section): every ` ```sh ` block runs,
//! unless its fence says ` ```sh no-run ` (kept for `serve`, `cargo …` and commands that need
//! another machine, such as sentry-cli's). Any other shell-like fence (`bash`, `shell`,
//! `console`, `sh something-else`) fails this test, so nothing is skipped silently.
//!
//! The runnable blocks run in README order, each as one bash script (`set -euo pipefail`),
//! against one real server on a loopback socket (no tokens, as `tracemap serve` on loopback
//! starts), in one temporary working directory holding what the examples name: `dist/`
//! (fixtures/js/out/esbuild), `build/` (fixtures/native/out/c_dwarf5 and its `.debug`), `crash/`
//! (fixtures/minidump/out/c_crash and its dump) and
//! `event.json` (a JavaScript symbolicate request). `http://127.0.0.1:7878` becomes the
//! server's address; `curl` and `tracemap` are shell functions that record each call (exit
//! code, HTTP status, headers, body) and run the real curl and the built binary.
//!
//! What is asserted comes from README itself: every `curl` line ends with `# → STATUS`,
//! optionally followed by a JSON object the answer must contain (objects by key, arrays by
//! position) or by one `Header-Name: value` the answer must carry. A `tracemap` line must
//! exit 0, or what its `# → exit N` says; `# → prints TEXT`: exit 0 with TEXT in its output. Every documented command must have run, once.

use std::path::{Path, PathBuf};

use crate::common::*;

const README_URL: &str = "http://127.0.0.1:7878";

/// One fenced block of README.md with a shell-like info string.
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    info: String,
    text: String,
}

/// What README says a command answers.
#[derive(Debug)]
enum Expect {
    Http {
        status: u16,
        check: Option<Check>,
    },
    Exit(i32),
    /// Exit 0 and this text somewhere in standard output.
    Prints(String),
}

#[derive(Debug)]
enum Check {
    Json(serde_json::Value),
    Header(String, String),
}

/// A `curl` or `tracemap` command of a block, with the answer README gives for it.
#[derive(Debug)]
struct Documented {
    program: String,
    text: String,
    expect: Expect,
}

fn shell_blocks(readme: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    // Inside a fence: the shell block being read, or `None` for another language's fence.
    let mut open: Option<Option<Block>> = None;
    for (i, line) in readme.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(current) = open.as_mut() {
            if trimmed.starts_with("```") {
                blocks.extend(open.take().flatten());
            } else if let Some(b) = current.as_mut() {
                b.text.push_str(line);
                b.text.push('\n');
            }
            continue;
        }
        if let Some(info) = trimmed.strip_prefix("```") {
            let info = info.trim().to_owned();
            let first = info.split_whitespace().next().unwrap_or("");
            let shell_like = ["sh", "bash", "shell", "console", "zsh"].contains(&first);
            open = Some(shell_like.then(|| Block {
                line: i + 1,
                info,
                text: String::new(),
            }));
        }
    }
    assert!(open.is_none(), "README ends inside a fenced block");
    blocks
}

/// Splits a block into logical lines (backslash continuations and quoted newlines joined),
/// each with its trailing comment, if any.
fn logical_lines(text: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut code = String::new();
    let mut comment: Option<String> = None;
    let (mut single, mut double) = (false, false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(com) = comment.as_mut() {
            if c == '\n' {
                out.push((std::mem::take(&mut code), comment.take()));
            } else {
                com.push(c);
            }
            continue;
        }
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '\\' if !single => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                    code.push(' ');
                    continue;
                }
                code.push(c);
                if let Some(n) = chars.next() {
                    code.push(n);
                }
                continue;
            }
            '#' if !single && !double && code.chars().last().is_none_or(char::is_whitespace) => {
                comment = Some(String::new());
                continue;
            }
            '\n' if !single && !double => {
                out.push((std::mem::take(&mut code), None));
                continue;
            }
            _ => {}
        }
        code.push(c);
    }
    assert!(!single && !double, "unbalanced quotes in a README block");
    if !code.trim().is_empty() || comment.is_some() {
        out.push((code, comment));
    }
    out
}

/// The `curl` and `tracemap` words of a logical line, wherever they stand (after `then`,
/// `&&`, inside `( … )`): a command the test cannot see run would otherwise pass unnoticed.
fn our_programs(code: &str) -> Vec<String> {
    code.split(|c: char| c.is_whitespace() || ";&|()`{}".contains(c))
        .filter(|w| *w == "curl" || *w == "tracemap")
        .map(str::to_owned)
        .collect()
}

fn parse_expect(program: &str, comment: Option<&str>, line: &str) -> Expect {
    let note = comment
        .and_then(|c| c.trim().strip_prefix('→'))
        .map(str::trim);
    match program {
        "curl" => {
            let note = note.unwrap_or_else(|| {
                panic!("README: this curl example does not say its answer (`# → STATUS`): {line}")
            });
            let (status, rest) = note.split_once(' ').unwrap_or((note, ""));
            let status: u16 = status
                .parse()
                .unwrap_or_else(|_| panic!("README: `# → {note}` does not start with a status"));
            let rest = rest.trim();
            let check = if rest.is_empty() {
                None
            } else if rest.starts_with('{') {
                Some(Check::Json(serde_json::from_str(rest).unwrap_or_else(
                    |e| panic!("README: the answer after `# → {status}` is not JSON ({e}): {rest}"),
                )))
            } else {
                let (name, value) = rest.split_once(": ").unwrap_or_else(|| {
                    panic!(
                        "README: `# → {note}`: expected JSON or `Header: value` after the status"
                    )
                });
                Some(Check::Header(name.to_owned(), value.to_owned()))
            };
            Expect::Http { status, check }
        }
        _ => match note {
            None => Expect::Exit(0),
            Some(n) => match n.strip_prefix("prints ") {
                Some(text) => Expect::Prints(text.trim().to_owned()),
                None => Expect::Exit(
                    n.strip_prefix("exit ")
                        .and_then(|c| c.trim().parse().ok())
                        .unwrap_or_else(|| {
                            panic!(
                                "README: `# → {n}` after tracemap: not `exit N` or `prints TEXT`"
                            )
                        }),
                ),
            },
        },
    }
}

/// The commands of a runnable block that README documents an answer for, in order.
fn documented(block: &Block) -> Vec<Documented> {
    let mut found = Vec::new();
    for (code, comment) in logical_lines(&block.text) {
        let ours = our_programs(&code);
        match ours.as_slice() {
            [] => assert!(
                comment
                    .as_deref()
                    .is_none_or(|c| !c.trim().starts_with('→')),
                "README line {}: an answer (`# →`) on a line without curl or tracemap: {code}",
                block.line
            ),
            [program] => found.push(Documented {
                program: program.clone(),
                expect: parse_expect(program, comment.as_deref(), &code),
                text: code.trim().to_owned(),
            }),
            _ => panic!(
                "README line {}: one curl/tracemap command per line, so its answer can be written \
                 next to it: {code}",
                block.line
            ),
        }
    }
    found
}

/// Shell functions standing in for `curl` and `tracemap`: they run the real programs and
/// record each call under `$TM_LOG/<n>/`, then return 0 so the test, not `set -e`, judges.
const PRELUDE: &str = r#"set -euo pipefail
__tm_n=0
__tm_record() {
  __tm_n=$((__tm_n + 1)); __tm_d="$TM_LOG/$__tm_n"; mkdir -p "$__tm_d"; echo "$1" > "$__tm_d/program"
}
curl() {
  __tm_record curl
  local rc=0
  command curl -q -sS -D "$__tm_d/headers" "$@" > "$__tm_d/body" || rc=$?
  cat "$__tm_d/body"; echo
  echo "$rc" > "$__tm_d/rc"
}
tracemap() {
  __tm_record tracemap
  local rc=0
  "$TM_BIN" "$@" > "$__tm_d/body" || rc=$?
  cat "$__tm_d/body"
  echo "$rc" > "$__tm_d/rc"
}
"#;

/// One recorded call.
struct Call {
    program: String,
    rc: i32,
    status: Option<u16>,
    headers: String,
    body: Vec<u8>,
}

fn read_calls(log: &Path) -> Vec<Call> {
    let mut calls = Vec::new();
    for n in 1.. {
        let dir = log.join(n.to_string());
        if !dir.exists() {
            break;
        }
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        let headers = read("headers");
        let status = headers
            .lines()
            .rfind(|l| l.starts_with("HTTP/"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok());
        calls.push(Call {
            program: read("program").trim().to_owned(),
            rc: read("rc").trim().parse().unwrap_or(-1),
            status,
            headers,
            body: std::fs::read(dir.join("body")).unwrap_or_default(),
        });
    }
    calls
}

/// `expected` is contained in `actual`: objects by key, arrays by position, scalars equal.
fn contains(actual: &serde_json::Value, expected: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|av| contains(av, v))),
        (Value::Array(a), Value::Array(e)) => {
            a.len() >= e.len() && a.iter().zip(e).all(|(av, ev)| contains(av, ev))
        }
        _ => actual == expected,
    }
}

fn judge(doc: &Documented, call: &Call) -> Result<(), String> {
    if call.program != doc.program {
        return Err(format!(
            "ran {} where README has {}",
            call.program, doc.program
        ));
    }
    match &doc.expect {
        Expect::Exit(code) if call.rc != *code => {
            Err(format!("exited {} (README: {code})", call.rc))
        }
        Expect::Exit(_) => Ok(()),
        Expect::Prints(_) if call.rc != 0 => Err(format!("exited {} (README: 0)", call.rc)),
        Expect::Prints(text) => {
            let out = String::from_utf8_lossy(&call.body);
            out.contains(text.as_str())
                .then_some(())
                .ok_or_else(|| format!("did not print `{text}`; it printed:\n{out}"))
        }
        Expect::Http { status, check } => {
            if call.rc != 0 {
                return Err(format!("curl failed with exit code {}", call.rc));
            }
            let body = String::from_utf8_lossy(&call.body);
            if call.status != Some(*status) {
                return Err(format!(
                    "answered {:?} (README: {status}); body: {body}",
                    call.status
                ));
            }
            match check {
                None => Ok(()),
                Some(Check::Header(name, value)) => {
                    let found = call.headers.lines().any(|l| {
                        l.split_once(':')
                            .is_some_and(|(n, v)| n.eq_ignore_ascii_case(name) && v.trim() == value)
                    });
                    found
                        .then_some(())
                        .ok_or_else(|| format!("no `{name}: {value}` header in:\n{}", call.headers))
                }
                Some(Check::Json(expected)) => {
                    let actual: serde_json::Value = serde_json::from_slice(&call.body)
                        .map_err(|e| format!("answer is not JSON ({e}): {body}"))?;
                    contains(&actual, expected)
                        .then_some(())
                        .ok_or_else(|| format!("answer does not contain {expected}:\n{actual:#}"))
                }
            }
        }
    }
}

fn copy(from: &str, to: &Path) {
    std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
    std::fs::write(to, fixture(from)).expect("write fixture copy");
}

/// The working directory the README's examples expect.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    copy("js/out/esbuild/app.min.js", &d.join("dist/app.min.js"));
    copy(
        "js/out/esbuild/app.min.js.map",
        &d.join("dist/app.min.js.map"),
    );
    copy("native/out/c_dwarf5", &d.join("build/c_dwarf5"));
    copy("native/out/c_dwarf5.debug", &d.join("build/c_dwarf5.debug"));
    copy("minidump/out/c_crash", &d.join("crash/c_crash"));
    copy("minidump/out/c_crash.dmp", &d.join("crash/c_crash.dmp"));
    let event = serde_json::json!({
        "release": "web@1.4.2", "dist": "prod",
        "stacktraces": [{"frames": [
            {"abs_path": "https://cdn.example.com/static/app.min.js", "lineno": 1, "colno": 558}
        ]}]
    });
    std::fs::write(d.join("event.json"), event.to_string()).expect("event.json");
    dir
}

fn readme() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md");
    std::fs::read_to_string(path).expect("README.md")
}

#[test]
fn readme_blocks_are_sh_or_sh_no_run() {
    for b in shell_blocks(&readme()) {
        assert!(
            b.info == "sh" || b.info == "sh no-run",
            "README line {}: a ```{} block; use ```sh (runs in tests/api/readme.rs) or \
             ```sh no-run",
            b.line,
            b.info
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_examples_run_and_answer_as_documented() {
    let readme = readme();
    let blocks: Vec<Block> = shell_blocks(&readme)
        .into_iter()
        .filter(|b| b.info == "sh")
        .collect();
    assert!(!blocks.is_empty(), "README has no runnable ```sh block");
    let server = LiveServer::start_with(|_| {}).await;
    let work = workdir();
    let mut failures = Vec::new();
    let mut ran = 0;
    for (i, block) in blocks.iter().enumerate() {
        let docs = documented(block);
        let log = work.path().join(format!(".readme-log-{i}"));
        std::fs::create_dir_all(&log).expect("log dir");
        let script = format!("{PRELUDE}{}", block.text.replace(README_URL, &server.base));
        let cwd = work.path().to_owned();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("bash")
                .arg("-c")
                .arg(script)
                .current_dir(cwd)
                .env("TM_LOG", &log)
                .env("TM_BIN", env!("CARGO_BIN_EXE_tracemap"))
                .env("TRACEMAP_LOG", "warn")
                .env_remove("TRACEMAP_URL")
                .env_remove("TRACEMAP_TOKEN")
                .env_remove("TRACEMAP_PROJECT")
                .env_remove("TRACEMAP_RELEASE")
                .output()
                .expect("bash")
        })
        .await
        .expect("join");
        let output = format!(
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let log = work.path().join(format!(".readme-log-{i}"));
        let calls = read_calls(&log);
        if !out.status.success() {
            failures.push(format!(
                "README block at line {} failed ({}):\n{output}",
                block.line, out.status
            ));
        }
        if calls.len() != docs.len() {
            failures.push(format!(
                "README block at line {}: {} curl/tracemap commands documented, {} ran\n{output}",
                block.line,
                docs.len(),
                calls.len()
            ));
        }
        for (doc, call) in docs.iter().zip(&calls) {
            ran += 1;
            if let Err(why) = judge(doc, call) {
                failures.push(format!(
                    "README block at line {}: `{}` {why}",
                    block.line, doc.text
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    eprintln!(
        "README: {ran} commands in {} blocks ran as documented",
        blocks.len()
    );
}

#[test]
fn logical_lines_join_continuations_and_quoted_newlines() {
    let text =
        "curl -d '{\n \"a\": 1 # not a comment\n}' \\\n  http://x   # → 200 {\"a\": 1}\necho hi\n";
    let lines = logical_lines(text);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        lines[0].1.as_deref().map(str::trim),
        Some("→ 200 {\"a\": 1}")
    );
    assert_eq!(
        our_programs("(cd dist && zip -r ../b.zip .) && X=1 curl x; if a; then tracemap y; fi"),
        ["curl", "tracemap"]
    );
}
