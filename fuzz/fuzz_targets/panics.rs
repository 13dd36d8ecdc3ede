//! Which panics are crashes. The parsers below our code (swc, goblin, pdb, gimli,
//! symbolic…) panic on some hostile input, mostly on their own debug assertions; our code
//! contains those by design (a parser thread, `catch_unwind` per file or per source) and
//! turns them into "no scopes" or an error for that file. libfuzzer-sys's hook would abort on
//! them anyway, so this hook aborts only on panics located outside the cargo registry (our
//! own code, or std called from it) and lets the others unwind into our guards. A
//! dependency's panic that escapes a guard still ends the run (libfuzzer-sys aborts on a
//! panic out of the target).

pub fn abort_on_own_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_dependency = info
                .location()
                .is_some_and(|l| l.file().contains("/.cargo/registry/"));
            if !in_dependency {
                default(info);
                std::process::abort();
            }
        }));
    });
}
