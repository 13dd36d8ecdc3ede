//! Minidumps: what a dump says (modules, threads, exception, system, annotations) and its
//! stacks walked with rust-minidump's unwinders, fed with the unwind information and symbols
//! the caller found for each module.
//!
//! Pure like the rest of `native`: the caller reads the modules ([`read_modules`]), finds
//! what it has for each ([`ModuleData`]: a [`CfiFile`] and/or a [`NativeCache`]), then walks
//! ([`walk`]). The walk does no I/O; every module's data is already in memory.
//!
//! How a caller frame is found, per frame ([`FrameTrust`]): `context` (the registers the
//! dump saved: the innermost frame), `cfi` (the callee's module had CFI for its address),
//! `frame_pointer`, `cfi_scan`/`scan` (a stack slot that looks like a return address into
//! some module's code; with symbols, only addresses inside a known function count).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use minidump::{Minidump, MinidumpCrashpadInfo, MinidumpModuleList, MinidumpSystemInfo, Module};
use minidump_unwind::{
    FileError, FileKind, FillSymbolError, FrameSymbolizer, FrameTrust, FrameWalker, SymbolProvider,
};

use super::unwind::CfiFile;
use super::NativeCache;

/// A dump that is not a minidump, or is truncated or damaged where it matters.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MinidumpError(String);

/// One module (loaded image) the dump lists.
#[derive(Debug, Clone)]
pub struct DumpModule {
    pub base: u64,
    pub size: u64,
    pub code_file: String,
    pub debug_file: Option<String>,
    /// ELF build ID, PE timestamp+size, Mach-O UUID, as the dump records it.
    pub code_id: Option<String>,
    pub debug_id: Option<String>,
}

/// What the dump says before any walking: its modules and its machine.
#[derive(Debug, Clone)]
pub struct DumpHeader {
    pub modules: Vec<DumpModule>,
    /// Architecture in the Symbolicate API's spelling (`x86_64`, `arm64`, `x86`, `arm`).
    pub arch: String,
    /// The modules' object format from the dump's OS: `elf`, `macho` or `pe`.
    pub kind: &'static str,
}

/// What the caller found for one module, keyed by the module's base address.
#[derive(Default, Clone)]
pub struct ModuleData {
    pub cfi: Option<Arc<CfiFile>>,
    /// A [`NativeCache`]'s bytes: function names tell the stack scanner which candidate
    /// return addresses are inside code.
    pub symbols: Option<Arc<dyn std::ops::Deref<Target = [u8]> + Send + Sync>>,
}

/// How a frame was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    Context,
    Cfi,
    FramePointer,
    CfiScan,
    Scan,
    Prewalked,
    None,
}

impl Trust {
    pub fn as_str(self) -> &'static str {
        match self {
            Trust::Context => "context",
            Trust::Cfi => "cfi",
            Trust::FramePointer => "fp",
            Trust::CfiScan => "cfi_scan",
            Trust::Scan => "scan",
            Trust::Prewalked => "prewalked",
            Trust::None => "none",
        }
    }

    /// Found by scanning the stack: a guess, not a computation.
    pub fn is_scan(self) -> bool {
        matches!(self, Trust::Scan | Trust::CfiScan)
    }

    fn from(t: FrameTrust) -> Trust {
        match t {
            FrameTrust::Context => Trust::Context,
            FrameTrust::CallFrameInfo => Trust::Cfi,
            FrameTrust::FramePointer => Trust::FramePointer,
            FrameTrust::CfiScan => Trust::CfiScan,
            FrameTrust::Scan => Trust::Scan,
            FrameTrust::PreWalked => Trust::Prewalked,
            FrameTrust::None => Trust::None,
        }
    }
}

/// One frame of a walked thread, innermost first.
#[derive(Debug, Clone)]
pub struct WalkedFrame {
    /// The program counter (innermost frame) or the return address (callers): absolute.
    pub address: u64,
    pub trust: Trust,
    /// Index into [`DumpHeader::modules`].
    pub module: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct WalkedThread {
    pub thread_id: u32,
    pub name: Option<String>,
    pub frames: Vec<WalkedFrame>,
    /// Why the walk could not start or go on (no context, no stack memory), when it could not.
    pub problem: Option<String>,
}

/// A walked dump.
#[derive(Debug, Clone)]
pub struct Walked {
    pub threads: Vec<WalkedThread>,
    /// The walk hit [`WALK_BUDGET`]: threads walked after that end early.
    pub budget_exhausted: bool,
    /// Index into `threads` of the thread that crashed (or asked for the dump).
    pub requesting_thread: Option<usize>,
    pub crashed: bool,
    /// `SIGSEGV /SEGV_MAPERR`, `EXCEPTION_ACCESS_VIOLATION_READ`, …
    pub crash_reason: Option<String>,
    pub crash_address: Option<u64>,
    pub assertion: Option<String>,
    pub os_name: String,
    pub os_version: Option<String>,
    pub cpu_arch: String,
    pub cpu_info: Option<String>,
    pub cpu_count: usize,
    /// Crashpad annotations: the process's simple annotations, then each module's
    /// (`{module}:{key}`; list annotations as `{module}:list[i]`).
    pub annotations: BTreeMap<String, String>,
}

fn open(bytes: &[u8]) -> Result<Minidump<'_, &[u8]>, MinidumpError> {
    let dump = Minidump::read(bytes)
        .map_err(|e| MinidumpError(format!("not a readable minidump: {e}")))?;
    precheck(bytes)?;
    Ok(dump)
}

/// Threads, modules (loaded or not), thread names or thread infos in one dump.
const MAX_LIST_ENTRIES: u64 = 1 << 16;
/// Memory ranges (or memory info entries) in one dump.
const MAX_MEMORY_ENTRIES: u64 = 1 << 20;

/// Rejects counts rust-minidump would reserve memory for before reading what they count
/// (found by fuzzing: a handle data stream with 0-byte descriptors passes its bounds check
/// with any count, and 2^32 descriptors reserve hundreds of GiB: the allocation fails and
/// the process aborts; Crashpad's lists are bounded only by the whole dump's size).
fn precheck(bytes: &[u8]) -> Result<(), MinidumpError> {
    let u32_at = |at: usize| -> Option<u32> {
        bytes
            .get(at..at.checked_add(4)?)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let bad = |m: String| Err(MinidumpError(m));
    let (Some(count), Some(dir)) = (u32_at(8), u32_at(12)) else {
        return bad("the minidump header is truncated".into());
    };
    for i in 0..count.min(1 << 16) as usize {
        let entry = dir as usize + i * 12;
        let (Some(kind), Some(size), Some(rva)) =
            (u32_at(entry), u32_at(entry + 4), u32_at(entry + 8))
        else {
            break;
        };
        let (rva, size) = (rva as usize, size as usize);
        // Every list is read whole into memory, a few hundred bytes per entry: bound the
        // entries of each (real dumps have at most a few thousand threads and modules).
        let count = match kind {
            // Thread, module, memory lists; thread names: a u32 count first.
            3 | 4 | 5 | 0x18 => u32_at(rva).map(u64::from),
            // Unloaded modules, memory info, thread info: header size, entry size, count.
            0xe | 0x10 | 0x11 => u32_at(rva + 8).map(u64::from),
            // Memory64 list: a u64 count.
            9 => u32_at(rva)
                .zip(u32_at(rva + 4))
                .map(|(lo, hi)| u64::from(lo) | u64::from(hi) << 32),
            _ => None,
        };
        let limit = if matches!(kind, 5 | 9 | 0x10) {
            MAX_MEMORY_ENTRIES
        } else {
            MAX_LIST_ENTRIES
        };
        if let Some(n) = count.filter(|&n| n > limit) {
            return bad(format!(
                "stream {kind:#x} lists {n} entries, over the {limit} a minidump is read with"
            ));
        }
        match kind {
            // HandleDataStream: size_of_header, size_of_descriptor, number_of_descriptors.
            0xc => {
                let (Some(header), Some(descriptor), Some(n)) =
                    (u32_at(rva), u32_at(rva + 4), u32_at(rva + 8))
                else {
                    continue;
                };
                // MINIDUMP_HANDLE_DESCRIPTOR is 32 bytes (the _2 form 40).
                let need = (n as u64) * u64::from(descriptor.max(1)) + u64::from(header);
                if descriptor < 32 || need > size as u64 {
                    return bad(format!(
                        "the handle data stream declares {n} descriptors of {descriptor} bytes \
                         in {size} bytes"
                    ));
                }
            }
            // Crashpad info: its module list and each module's list annotations.
            0x4350_0001 => {
                let (Some(list_size), Some(list_rva)) = (u32_at(rva + 44), u32_at(rva + 48)) else {
                    continue;
                };
                let list = list_rva as usize;
                let Some(links) = u32_at(list) else { continue };
                if u64::from(links) * 12 + 4 > u64::from(list_size) {
                    return bad(format!(
                        "the Crashpad module list declares {links} entries in {list_size} bytes"
                    ));
                }
                for l in 0..links as usize {
                    let link = list + 4 + l * 12;
                    let Some(info) = u32_at(link + 8) else { break };
                    let info = info as usize;
                    let (Some(ann_size), Some(ann_rva)) = (u32_at(info + 4), u32_at(info + 8))
                    else {
                        continue;
                    };
                    if ann_size == 0 {
                        continue;
                    }
                    let Some(strings) = u32_at(ann_rva as usize) else {
                        continue;
                    };
                    if u64::from(strings) * 4 + 4 > u64::from(ann_size) {
                        return bad(format!(
                            "a Crashpad annotation list declares {strings} strings in \
                             {ann_size} bytes"
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Reads the module list and architecture of a dump.
pub fn read_modules(bytes: &[u8]) -> Result<DumpHeader, MinidumpError> {
    let guarded = std::panic::AssertUnwindSafe(|| {
        let dump = open(bytes)?;
        let modules = match dump.get_stream::<MinidumpModuleList>() {
            Ok(list) => list.iter().map(dump_module).collect(),
            Err(minidump::Error::StreamNotFound) => Vec::new(),
            Err(e) => return Err(MinidumpError(format!("module list unreadable: {e}"))),
        };
        let (arch, kind) = match dump.get_stream::<MinidumpSystemInfo>() {
            Ok(info) => {
                use minidump::system_info::Os;
                let kind = match info.os {
                    Os::Windows => "pe",
                    Os::MacOs | Os::Ios => "macho",
                    _ => "elf",
                };
                (arch_name(info.cpu), kind)
            }
            Err(_) => ("unknown".into(), "elf"),
        };
        Ok(DumpHeader {
            modules,
            arch,
            kind,
        })
    });
    std::panic::catch_unwind(guarded).unwrap_or_else(|_| {
        Err(MinidumpError(
            "the minidump reader panicked on this dump".into(),
        ))
    })
}

fn dump_module(m: &minidump::MinidumpModule) -> DumpModule {
    DumpModule {
        base: m.base_address(),
        size: m.size(),
        code_file: m.code_file().into_owned(),
        debug_file: m.debug_file().map(|f| f.into_owned()),
        code_id: m.code_identifier().map(|c| c.to_string()),
        debug_id: m.debug_identifier().map(|d| d.to_string()),
    }
}

fn arch_name(cpu: minidump::system_info::Cpu) -> String {
    use minidump::system_info::Cpu;
    match cpu {
        Cpu::X86_64 => "x86_64".into(),
        Cpu::X86 => "x86".into(),
        Cpu::Arm64 => "arm64".into(),
        Cpu::Arm => "arm".into(),
        other => other.to_string(),
    }
}

/// Walks every thread of a dump. `modules` maps a module's base address to what the caller
/// found for it; a module without an entry is walked by frame pointers and scanning.
pub fn walk(bytes: &[u8], modules: &HashMap<u64, ModuleData>) -> Result<Walked, MinidumpError> {
    walk_with(bytes, modules, WALK_BUDGET)
}

/// [`walk`] with another lookup budget (tests).
pub(crate) fn walk_with(
    bytes: &[u8],
    modules: &HashMap<u64, ModuleData>,
    budget: usize,
) -> Result<Walked, MinidumpError> {
    let guarded = std::panic::AssertUnwindSafe(|| {
        let dump = open(bytes)?;
        let provider = Provider {
            modules,
            lookups: Default::default(),
            budget,
        };
        let state =
            futures::executor::block_on(minidump_processor::process_minidump(&dump, &provider))
                .map_err(|e| MinidumpError(format!("the minidump cannot be processed: {e}")))?;
        let header_modules: Vec<u64> = state.modules.iter().map(|m| m.base_address()).collect();
        let threads = state
            .threads
            .iter()
            .map(|t| WalkedThread {
                thread_id: t.thread_id,
                name: t.thread_name.clone(),
                problem: match t.info {
                    minidump_unwind::CallStackInfo::Ok => None,
                    minidump_unwind::CallStackInfo::MissingContext => {
                        Some("the dump has no register context for this thread".into())
                    }
                    minidump_unwind::CallStackInfo::MissingMemory => Some(
                        "the dump has no stack memory for this thread: only its top frame is known"
                            .into(),
                    ),
                    minidump_unwind::CallStackInfo::UnsupportedCpu => {
                        Some("stack walking is not supported for this CPU".into())
                    }
                    minidump_unwind::CallStackInfo::DumpThreadSkipped => {
                        Some("this thread wrote the dump; it was not walked".into())
                    }
                },
                frames: t
                    .frames
                    .iter()
                    .map(|f| WalkedFrame {
                        address: f.resume_address,
                        trust: Trust::from(f.trust),
                        module: f.module.as_ref().and_then(|m| {
                            header_modules.iter().position(|&b| b == m.base_address())
                        }),
                    })
                    .collect(),
            })
            .collect();
        let (crash_reason, crash_address) = match &state.exception_info {
            Some(e) => (Some(e.reason.to_string()), Some(e.address.0)),
            None => (None, None),
        };
        let info = &state.system_info;
        Ok(Walked {
            threads,
            requesting_thread: state.requesting_thread,
            crashed: state.crashed(),
            crash_reason,
            crash_address,
            assertion: state.assertion.clone(),
            budget_exhausted: provider.lookups.load(std::sync::atomic::Ordering::Relaxed) >= budget,
            os_name: info.os.long_name().into_owned(),
            os_version: info.os_version.clone(),
            cpu_arch: arch_name(info.cpu),
            cpu_info: info.cpu_info.clone(),
            cpu_count: info.cpu_count,
            annotations: annotations(&dump),
        })
    });
    std::panic::catch_unwind(guarded).unwrap_or_else(|_| {
        Err(MinidumpError(
            "the stack walker panicked on this dump".into(),
        ))
    })
}

fn annotations(dump: &Minidump<'_, &[u8]>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(info) = dump.get_stream::<MinidumpCrashpadInfo>() else {
        return out;
    };
    out.extend(info.simple_annotations.clone());
    let names: Vec<String> = dump
        .get_stream::<MinidumpModuleList>()
        .map(|l| l.iter().map(|m| basename(&m.code_file())).collect())
        .unwrap_or_default();
    for m in &info.module_list {
        let name = names
            .get(m.module_index)
            .cloned()
            .unwrap_or_else(|| format!("module{}", m.module_index));
        for (i, v) in m.list_annotations.iter().enumerate() {
            out.insert(format!("{name}:list[{i}]"), v.clone());
        }
        for (k, v) in &m.simple_annotations {
            out.insert(format!("{name}:{k}"), v.clone());
        }
        for (k, v) in &m.annotation_objects {
            if let minidump::MinidumpAnnotation::String(s) = v {
                out.insert(format!("{name}:{k}"), s.clone());
            }
        }
    }
    out
}

fn basename(path: &str) -> String {
    path.rsplit(['/', '\\']).next().unwrap_or(path).to_owned()
}

/// rust-minidump's view of our per-module data. Every answer is in memory: the async
/// methods never wait.
struct Provider<'a> {
    modules: &'a HashMap<u64, ModuleData>,
    /// Lookups made so far in this walk: symbols (every frame, every stack slot the scanner
    /// tries) and unwind rules (every caller CFI looks for).
    lookups: std::sync::atomic::AtomicUsize,
    budget: usize,
}

/// The most lookups one walk may make. Past it, no CFI is given and every candidate caller is
/// refused, so each thread's walk ends at its next frame. rust-minidump walks until the stack pointer
/// leaves the thread's stack memory: a hostile dump with a large stack of return addresses
/// would otherwise yield one frame per 8 bytes (tens of millions of frames, gigabytes).
/// Real dumps use a few thousand (c_threads20: 20 threads, under 2,000).
pub const WALK_BUDGET: usize = 250_000;

#[async_trait::async_trait]
impl SymbolProvider for Provider<'_> {
    async fn fill_symbol(
        &self,
        module: &(dyn Module + Sync),
        frame: &mut (dyn FrameSymbolizer + Send),
    ) -> Result<(), FillSymbolError> {
        // An error means "no symbols for this module": the scanner then accepts any address
        // inside it. Ok without a name means "symbols, but no function here": rejected.
        if self
            .lookups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            >= self.budget
        {
            return Ok(());
        }
        let base = module.base_address();
        let bytes = self
            .modules
            .get(&base)
            .and_then(|d| d.symbols.as_ref())
            .ok_or(FillSymbolError {})?;
        let cache = NativeCache::parse(bytes).map_err(|_| FillSymbolError {})?;
        let Some(rel) = frame.get_instruction().checked_sub(base) else {
            return Ok(());
        };
        if let Some(outer) = cache.lookup(rel).pop() {
            frame.set_function(&outer.function, base.wrapping_add(outer.sym_addr), 0);
        }
        Ok(())
    }

    async fn walk_frame(
        &self,
        module: &(dyn Module + Sync),
        walker: &mut (dyn FrameWalker + Send),
    ) -> Option<()> {
        if self
            .lookups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            >= self.budget
        {
            return None;
        }
        let cfi = self.modules.get(&module.base_address())?.cfi.as_ref()?;
        cfi.symbols()?.walk_frame(module, walker)
    }

    async fn get_file_path(
        &self,
        _module: &(dyn Module + Sync),
        _file_kind: FileKind,
    ) -> Result<PathBuf, FileError> {
        Err(FileError::NotFound)
    }
}
