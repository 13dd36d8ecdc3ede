//! Crash points for the crash tests: in debug builds (what the test suite runs), the
//! environment variable `TRACEMAP_TEST_CRASH_AT=<point>` makes the process kill itself with
//! SIGKILL, no cleanup at all, the moment it reaches that point, so a test can check that
//! nothing committed is lost and nothing half-written is visible after a restart. Release
//! builds compile every point to nothing.

/// The named places where a crash matters most. Each is reached by the operation named.
pub const POINTS: &[&str] = &[
    // An upload: after its files were received, after each blob, after the pointers,
    // before and after the manifest (the commit point).
    "upload:received",
    "upload:blob",
    "upload:pointers",
    "upload:before_manifest",
    "upload:after_manifest",
    // A derived cache: built, not yet on disk; written to its temporary name.
    "cache:built",
    "cache:tmp_written",
    // A sweep: after its trash log, after the first blob moved to the trash.
    "sweep:logged",
    "sweep:trashed_one",
    // A sentry-cli assembly: chunks concatenated, not yet committed.
    "assemble:concatenated",
];

/// Kills the process here if `TRACEMAP_TEST_CRASH_AT` names this point (debug builds only).
#[inline]
pub fn point(name: &'static str) {
    #[cfg(debug_assertions)]
    {
        static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
        let at = AT.get_or_init(|| std::env::var("TRACEMAP_TEST_CRASH_AT").ok());
        if at.as_deref() == Some(name) {
            debug_assert!(POINTS.contains(&name), "unknown crash point {name}");
            let pid = std::process::id().to_string();
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid])
                .status();
            // `kill` missing: abort is as abrupt.
            std::process::abort();
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}
