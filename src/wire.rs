//! Request and response bodies of the symbolicate endpoints, named as the Sentry event
//! protocol names them (see `shared/specs/symbolicate-api.md`). Unknown fields are accepted
//! and ignored everywhere, for forward compatibility.
//!
//! Positions here are as the wire has them: 1-based lines and columns. The conversion to
//! 0-based happens once, in `symbolicate::js`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

// ---- common ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FrameOrder {
    /// Frames as the Sentry protocol stores them: outermost caller first.
    #[default]
    CallerFirst,
    /// Crashing frame first.
    CalleeFirst,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Options {
    #[serde(default = "yes")]
    pub apply_source_context: bool,
    #[serde(default)]
    pub frame_order: Option<FrameOrder>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            apply_source_context: true,
            frame_order: None,
        }
    }
}

fn yes() -> bool {
    true
}

/// The status of a whole request: always `completed` (per-frame problems are data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Completed,
}

// ---- JS --------------------------------------------------------------------------------

/// Why a JS frame was not (fully) resolved: the `type` of an entry of `errors[]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JsErrorKind {
    /// The frame lacks `abs_path`/`lineno`, or its position is outside the map.
    InvalidLocation,
    /// The frame has no column; minified code needs one.
    NoColumn,
    /// The minified file was not found.
    MissingSource,
    /// The minified file was found but not its source map.
    MissingSourcemap,
    /// The source map could not be parsed or indexed.
    MalformedSourcemap,
    /// An inline `data:` source map with invalid base64.
    InvalidBase64Sourcemap,
    /// Resolved, but neither `sourcesContent` nor an uploaded original gives context.
    MissingSourceContent,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JsRequest {
    #[serde(default)]
    pub release: Option<String>,
    #[serde(default)]
    pub dist: Option<String>,
    #[serde(default)]
    pub modules: Vec<JsModule>,
    pub stacktraces: Vec<JsStacktrace>,
    #[serde(default)]
    pub options: Options,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JsModule {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub code_file: Option<String>,
    #[serde(default)]
    pub debug_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JsStacktrace {
    pub frames: Vec<JsFrame>,
}

/// A JS frame as sent and as returned; fields we do not know are kept and returned.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct JsFrame {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abs_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineno: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colno: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_app: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_context: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_line: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_context: Option<Vec<String>>,
    #[serde(default)]
    pub data: JsFrameData,
    /// Fields we do not interpret, returned as they came.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct JsFrameData {
    #[serde(default)]
    pub symbolicated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_with: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sourcemap: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostic: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JsResponse {
    pub status: RequestStatus,
    pub stacktraces: Vec<JsStacktraceOut>,
    pub raw_stacktraces: Vec<JsStacktraceOut>,
    pub errors: Vec<JsError>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JsStacktraceOut {
    pub frames: Vec<JsFrame>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JsError {
    pub abs_path: String,
    #[serde(rename = "type")]
    pub kind: JsErrorKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub col: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sourcemap: Option<String>,
    pub diagnostic: String,
}

// ---- native ----------------------------------------------------------------------------

/// An address: a JSON number, or a string in hex (`0x…`) or decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Addr(pub u64);

impl Addr {
    pub fn parse(s: &str) -> Option<Addr> {
        let s = s.trim();
        if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            u64::from_str_radix(hex, 16).ok().map(Addr)
        } else {
            s.parse().ok().map(Addr)
        }
    }
}

impl<'de> Deserialize<'de> for Addr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(u64),
            Str(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => Ok(Addr(n)),
            Raw::Str(s) => Addr::parse(&s).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "invalid address {:?}: expected a number or a \"0x…\" hex string",
                    s.chars().take(40).collect::<String>()
                ))
            }),
        }
    }
}

impl Serialize for Addr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:#x}", self.0))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct NativeRequest {
    #[serde(default)]
    pub platform: Option<String>,
    #[serde(default)]
    pub modules: Vec<NativeModule>,
    pub stacktraces: Vec<NativeStacktrace>,
    #[serde(default)]
    pub options: Options,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NativeModule {
    #[serde(rename = "type", default = "unknown")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug_file: Option<String>,
    pub image_addr: Addr,
    #[serde(default)]
    pub image_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_vmaddr: Option<Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
}

fn unknown() -> String {
    "unknown".into()
}

#[derive(Debug, Clone, Deserialize)]
pub struct NativeStacktrace {
    #[serde(default)]
    pub thread_id: Option<u64>,
    #[serde(default)]
    pub is_requesting: Option<bool>,
    pub frames: Vec<NativeFrameIn>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NativeFrameIn {
    pub instruction_addr: Addr,
    #[serde(default)]
    pub addr_mode: Option<String>,
    #[serde(default)]
    pub adjust_instruction_addr: Option<bool>,
    #[serde(default)]
    pub function: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NativeResponse {
    pub status: RequestStatus,
    pub stacktraces: Vec<NativeStacktraceOut>,
    pub modules: Vec<NativeModuleOut>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NativeStacktraceOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_requesting: Option<bool>,
    pub frames: Vec<NativeFrameOut>,
}

/// The status of one native frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameStatus {
    #[default]
    Symbolicated,
    /// A debug file was found, but no function covers the address.
    MissingSymbol,
    /// No module of the request covers the address.
    UnknownImage,
    /// No usable debug file for the module.
    Missing,
    /// The module's debug file could not be processed.
    Malformed,
}

impl FrameStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FrameStatus::Symbolicated => "symbolicated",
            FrameStatus::MissingSymbol => "missing_symbol",
            FrameStatus::UnknownImage => "unknown_image",
            FrameStatus::Missing => "missing",
            FrameStatus::Malformed => "malformed",
        }
    }
}

/// What became of a module's debug file (`debug_status`) or its unwind information
/// (`unwind_status`, minidumps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModuleStatus {
    /// No frame needed the module.
    Unused,
    Found,
    /// Found, but split DWARF units it names (`.dwo`/`.dwp`) were not uploaded: answers
    /// lack inlined frames there (the diagnostic lists the DWO IDs).
    SplitDwarfMissing,
    Missing,
    Malformed,
    /// The store did not answer; the next request tries again.
    FetchingFailed,
}

impl ModuleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ModuleStatus::Unused => "unused",
            ModuleStatus::Found => "found",
            ModuleStatus::SplitDwarfMissing => "split_dwarf_missing",
            ModuleStatus::Missing => "missing",
            ModuleStatus::Malformed => "malformed",
            ModuleStatus::FetchingFailed => "fetching_failed",
        }
    }
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct NativeFrameOut {
    pub status: FrameStatus,
    pub original_index: usize,
    pub instruction_addr: Addr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sym_addr: Option<Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abs_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lineno: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_context: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_line: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_context: Option<Vec<String>>,
    /// Minidumps only: how the stack walker found this frame (`context`, `cfi`, `fp`,
    /// `cfi_scan`, `scan`); inlined frames carry their physical frame's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trust: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostic: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NativeModuleOut {
    pub debug_status: ModuleStatus,
    pub features: ModuleFeatures,
    #[serde(flatten)]
    pub module: NativeModule,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostic: Option<String>,
    /// Every location the symbol sources were asked for this module (nothing uploaded had
    /// it), with each answer: "why is libc missing" answered per source.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<SourceCandidate>,
    /// Minidumps only: whether unwind information (CFI) was found for the module, and from
    /// which file, or what was looked up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unwind_status: Option<ModuleStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unwind_diagnostic: Option<String>,
}

/// One location a symbol source was asked for a module, and its answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceCandidate {
    /// The source's `id`.
    pub source: String,
    /// The URL or bucket key.
    pub location: String,
    pub status: DownloadStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DownloadStatus {
    /// Downloaded and the right file.
    Ok,
    NotFound,
    Timeout,
    TooLarge,
    /// Downloaded, but not a debug file of this module (wrong ID, unreadable).
    Invalid,
    /// Refused (a forbidden address), 5xx, connection errors.
    Error,
    /// Still downloading when the request had to answer; the next request may have it.
    Pending,
}

impl DownloadStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DownloadStatus::Ok => "ok",
            DownloadStatus::NotFound => "not_found",
            DownloadStatus::Timeout => "timeout",
            DownloadStatus::TooLarge => "too_large",
            DownloadStatus::Invalid => "invalid",
            DownloadStatus::Error => "error",
            DownloadStatus::Pending => "pending",
        }
    }
}

/// The answer for a minidump: every thread walked and symbolicated.
#[derive(Debug, Clone, Serialize)]
pub struct MinidumpResponse {
    pub status: RequestStatus,
    pub crashed: bool,
    /// `SIGSEGV /SEGV_MAPERR`, `EXCEPTION_ACCESS_VIOLATION_WRITE`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crash_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crash_address: Option<Addr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assertion: Option<String>,
    pub system_info: SystemInfoOut,
    /// Crashpad annotations (process-wide, then `module:key`).
    pub annotations: std::collections::BTreeMap<String, String>,
    /// One per thread, in the dump's order; the crashed thread has `is_requesting`.
    pub stacktraces: Vec<MinidumpThreadOut>,
    pub modules: Vec<NativeModuleOut>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SystemInfoOut {
    pub os_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    pub cpu_arch: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_info: Option<String>,
    pub cpu_count: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct MinidumpThreadOut {
    pub thread_id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_name: Option<String>,
    pub is_requesting: bool,
    /// Innermost first, inlined frames expanded; `original_index` is the walked frame.
    pub frames: Vec<NativeFrameOut>,
    /// Why the walk stopped early or was cut, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostic: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct ModuleFeatures {
    pub has_debug_info: bool,
    pub has_unwind_info: bool,
    pub has_symbols: bool,
    pub has_sources: bool,
}
