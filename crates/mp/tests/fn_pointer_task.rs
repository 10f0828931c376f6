//! A task that is not a zero-sized `fn` item (a function pointer, a closure that captures) must
//! fail the build with a message that says what is wrong and what to do, and that names the
//! caller's own line, not a line inside `mp`.
//!
//! The test compiles a small program against the `mp` library this test binary was linked
//! with (the newest `libmp-*.rlib` beside it) by running `rustc` directly: a second cargo
//! would wait for the lock on the build directory, or rebuild every dependency elsewhere.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

const PROGRAM: &str = r#"use mp::Comm;

fn first(_: Comm, _: ()) -> u32 { 1 }
fn second(_: Comm, _: ()) -> u32 { 2 }
fn double(x: u32) -> u32 { 2 * x }

fn main() -> mp::Result<()> {
    mp::init();
    for task in [first as fn(Comm, ()) -> u32, second] {
        mp::launch(2, task, ())?; // line 10
    }
    let pool = mp::Pool::new(2)?;
    let f: fn(u32) -> u32 = double;
    pool.map(f, [1, 2, 3])?; // line 14
    let offset = 10;
    mp::Process::spawn(move |x: u32| x + offset, 1)?.join()?; // line 16
    Ok(())
}
"#;

/// The entry points of issue 13 (a different argument per rank, a tuple of arguments).
const PROGRAM_PER_RANK_AND_STAR: &str = r#"use mp::Comm;

fn first(_: Comm, x: u32) -> u32 { x }
fn add(a: u32, b: u32) -> u32 { a + b }

fn main() -> mp::Result<()> {
    mp::init();
    let task: fn(Comm, u32) -> u32 = first;
    mp::launch_each(task, [1, 2])?; // line 9
    let offset = 10;
    let ring = mp::Launch { n_ranks: 2, topology: mp::Topology::Ring };
    ring.run_each(move |_: Comm, x: u32| x + offset, [1, 2])?; // line 12
    let star: fn(u32, u32) -> u32 = add;
    mp::Process::spawn_star(star, (1, 2))?.join()?; // line 14
    Ok(())
}
"#;

/// The `mp` rlib this binary was linked with: the newest one in its own directory.
fn mp_rlib(deps: &Path) -> PathBuf {
    let mut rlibs: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(deps)
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.starts_with("libmp-") && name.ends_with(".rlib")
        })
        .map(|entry| (entry.metadata().unwrap().modified().unwrap(), entry.path()))
        .collect();
    rlibs.sort();
    rlibs.pop().expect("no libmp-*.rlib beside the test binary").1
}

/// Builds `program` against this `mp`; its compiler output and whether it built.
fn build(program: &str, name: &str) -> (bool, String) {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("fn-pointer-task-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("user_program.rs");
    std::fs::write(&source, program).unwrap();
    let output = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .args(["--edition", "2024", "--crate-type", "bin", "--color", "never", "--extern"])
        .arg(format!("mp={}", mp_rlib(&deps).display()))
        .arg("-L")
        .arg(format!("dependency={}", deps.display()))
        .arg("--out-dir")
        .arg(&dir)
        .arg(&source)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// Checks that each `(line, task type)` has its note "while instantiating" the task's type.
fn assert_notes_at(stderr: &str, notes: &[(u32, &str)]) {
    for &(line, what) in notes {
        let note = format!("user_program.rs:{line}:");
        let at = stderr.find(&note).unwrap_or_else(|| panic!("no note at line {line}:\n{stderr}"));
        let before = &stderr[..at];
        let instantiating = before.rfind("while instantiating").unwrap();
        assert!(before[instantiating..].contains(what), "line {line}:\n{stderr}");
    }
}

#[test]
fn a_task_that_is_not_a_zero_sized_fn_item_fails_the_build_at_the_callers_line() {
    let (built, stderr) = build(PROGRAM, "classic");
    assert!(!built, "it built:\n{stderr}");
    // One error per task type, each with the advice, each ending at the caller's line.
    assert_eq!(stderr.matches("error[E0080]").count(), 3, "{stderr}");
    assert_eq!(stderr.matches("it is not a zero-sized `fn` item").count(), 3, "{stderr}");
    assert!(stderr.contains("once per function") && stderr.contains("`match`"), "{stderr}");
    assert!(stderr.contains("data in the argument"), "{stderr}");
    assert_notes_at(
        &stderr,
        &[(10, "fn(Comm, ()) -> u32"), (14, "fn(u32) -> u32"), (16, "{closure@")],
    );
}

#[test]
fn launch_each_run_each_and_spawn_star_name_the_callers_line_too() {
    let (built, stderr) = build(PROGRAM_PER_RANK_AND_STAR, "per-rank");
    assert!(!built, "it built:\n{stderr}");
    assert_eq!(stderr.matches("error[E0080]").count(), 3, "{stderr}");
    assert_eq!(stderr.matches("it is not a zero-sized `fn` item").count(), 3, "{stderr}");
    assert_notes_at(
        &stderr,
        &[(9, "fn(Comm, u32) -> u32"), (12, "{closure@"), (14, "fn(u32, u32) -> u32")],
    );
}
