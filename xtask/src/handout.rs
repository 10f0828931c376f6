//! `cargo xtask handout DIR`: the students' repository.
//!
//! Everything tracked by git except the solutions, the course repository's own CI (`.ci/`,
//! `.github/workflows/ci.yml`) and the grader's own tests. The root manifest loses its
//! `solutions/*` member, the README gets a preamble for students, and
//! `.course/protected.sha256` records every file a student must not change, so that
//! `cargo xtask grade` can say which ones were.

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use crate::{grade, workspace::Result};

/// Paths (prefixes) that stay with the instructors.
const KEPT_BACK: &[&str] = &["solutions/", ".ci/", ".github/workflows/ci.yml", "xtask/tests/"];

pub fn run(root: &Path, dir: &Path) -> Result<ExitCode> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        return Err(
            format!("{} exists and is not empty: choose a new directory", dir.display()).into()
        );
    }
    let files = tracked_files(root)?;
    let mut n_copied = 0;
    for relative in &files {
        let text = relative.to_string_lossy();
        if KEPT_BACK.iter().any(|prefix| text.starts_with(prefix)) {
            continue;
        }
        let target = dir.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(root.join(relative), &target)
            .map_err(|e| format!("cannot copy {text}: {e}"))?;
        n_copied += 1;
    }
    rewrite(&dir.join("Cargo.toml"), |manifest| {
        manifest.replace(", \"solutions/*\"", "").replace("\"solutions/*\", ", "")
    })?;
    rewrite(&dir.join("README.md"), |readme| format!("{STUDENT_PREAMBLE}\n{readme}"))?;
    // The lock file still lists the solutions; let cargo drop them (nothing else changes).
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["update", "--workspace", "--quiet"])
        .current_dir(dir)
        .status()?;
    if !status.success() {
        return Err("`cargo update --workspace` failed in the handout".into());
    }
    let protected = grade::protected_files(dir)?;
    grade::write_manifest(dir, &protected)?;
    println!(
        "Wrote the handout to {}: {n_copied} files, {} of them protected (listed in \
         .course/protected.sha256). Next: `cd {0} && git init && cargo xtask watch`.",
        dir.display(),
        protected.len()
    );
    Ok(ExitCode::SUCCESS)
}

const STUDENT_PREAMBLE: &str = "\
> **Your course repository.** Start with `cargo xtask watch`: it runs the tests of your
> current exercise each time you save, shows the first failure, gives a hint on `h`, and
> moves on when they pass (`q` quits). Write your code in `exercises/exercise-N/src/lib.rs`
> (each exercise's README says what to do); everything else is the course's and is checked
> when you are graded. `cargo xtask progress` shows where you are; `cargo xtask grade`
> grades your work as CI will.
";

fn tracked_files(root: &Path) -> Result<Vec<PathBuf>> {
    let output = Command::new("git").args(["ls-files", "-z"]).current_dir(root).output()?;
    if !output.status.success() {
        return Err("`git ls-files` failed: the handout is written from a git checkout".into());
    }
    let files: Vec<PathBuf> = output
        .stdout
        .split(|&b| b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| PathBuf::from(String::from_utf8_lossy(name).into_owned()))
        .filter(|path| root.join(path).is_file())
        .collect();
    Ok(files)
}

fn rewrite(path: &Path, change: impl FnOnce(&str) -> String) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    std::fs::write(path, change(&text))?;
    Ok(())
}
