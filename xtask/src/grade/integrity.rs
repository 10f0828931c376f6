//! Which files a student may change, the checksum manifest of the others, and the overlay of
//! a submission's own files onto a pristine template.

use std::{
    collections::BTreeMap,
    path::{Component, Path, PathBuf},
};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::workspace::Result;

/// Where the manifest of protected files lives, relative to the repository root.
pub const MANIFEST: &str = ".course/protected.sha256";

/// What grading may trust, and which protected files differ.
#[derive(Debug, Clone, Serialize)]
pub struct Integrity {
    /// `template` (protected files came from a pristine template), `manifest` (checked
    /// against `.course/protected.sha256`) or `none` (neither was available).
    pub mode: &'static str,
    /// True when every protected file used for grading is the course's own.
    pub verified: bool,
    pub changes: Vec<Change>,
}

/// One protected file that differs, or a file of the student's that grading did not use.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    /// `changed`, `deleted`, `added`, or `ignored` (a file in the student's part that was not
    /// used; `why` says why).
    pub change: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

impl Change {
    fn new(path: &Path, change: &'static str) -> Change {
        Change { path: path.to_string_lossy().into_owned(), change, why: None }
    }

    fn because(mut self, why: impl Into<String>) -> Change {
        self.why = Some(why.into());
        self
    }
}

impl Integrity {
    /// The sentence a student and a teacher read about the protected files, if any differ.
    pub fn message(&self) -> Option<String> {
        let (ignored, changes): (Vec<&Change>, Vec<&Change>) =
            self.changes.iter().partition(|c| c.change == "ignored");
        let ignored = (!ignored.is_empty()).then(|| {
            let list = ignored
                .iter()
                .map(|c| format!("{} ({})", c.path, c.why.as_deref().unwrap_or("ignored")))
                .collect::<Vec<_>>()
                .join(", ");
            format!("Not used for grading: {list}.")
        });
        let list = changes
            .iter()
            .map(|c| match &c.why {
                Some(why) => format!("{} ({}: {why})", c.path, c.change),
                None => format!("{} ({})", c.path, c.change),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let message = match self.mode {
            _ if changes.is_empty() && self.verified => None,
            "template" => Some(format!(
                "Protected files differ from the course template: {list}. They were not used: \
                 grading used the template's versions (an added file was ignored). Only \
                 exercises/*/src/**/*.rs (except main.rs and given.rs) is yours to change; \
                 restore the others from the template."
            )),
            "manifest" if changes.is_empty() => Some(
                "UNVERIFIED: graded in place, without the course template. No protected file \
                 differs from the manifest, but the tests were built and judged with this \
                 repository's own code, which the code under test can change: this is a check \
                 of your work, not a grade."
                    .to_string(),
            ),
            "manifest" => Some(format!(
                "UNVERIFIED: protected files differ from {MANIFEST}: {list}. This grade was \
                 computed with them as they are, so it does not count; restore them from the \
                 course template (only exercises/*/src/**/*.rs, except main.rs and given.rs, \
                 is yours to change)."
            )),
            _ => Some(format!(
                "UNVERIFIED: there is no {MANIFEST} and no --template, so the tests and \
                 manifests were not checked."
            )),
        };
        match (message, ignored) {
            (Some(message), Some(ignored)) => Some(format!("{message} {ignored}")),
            (message, ignored) => message.or(ignored),
        }
    }
}

/// True for the files a student writes: `exercises/*/src/**/*.rs` except `src/main.rs` and
/// `src/given.rs`.
pub fn is_editable(relative: &Path) -> bool {
    let parts = parts(relative);
    parts.len() >= 4
        && parts[0] == "exercises"
        && parts[2] == "src"
        && relative.extension().is_some_and(|e| e == "rs")
        && !(parts.len() == 4 && (parts[3] == "main.rs" || parts[3] == "given.rs"))
}

/// True for files grading neither uses nor checks: answers in Markdown under `exercises/`,
/// the lock file (cargo rewrites it; the manifests it follows are protected) and the manifest.
pub fn is_ignored(relative: &Path) -> bool {
    let parts = parts(relative);
    let under_exercises = parts.first().is_some_and(|p| p == "exercises");
    (under_exercises && relative.extension().is_some_and(|e| e == "md"))
        || relative == Path::new("Cargo.lock")
        || relative == Path::new(MANIFEST)
}

/// Directories never walked: version control, build output, editor settings.
fn is_skipped_dir(name: &str) -> bool {
    matches!(name, ".git" | "target" | ".idea" | ".vscode")
}

fn parts(relative: &Path) -> Vec<String> {
    relative
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect()
}

/// Every file under `root` (relative, sorted), skipping `.git`, `target` and editor
/// directories and never following symbolic links to directories. The directories in `skip`
/// (absolute: the grader's own output and work directories) are left out too.
pub fn walk(root: &Path, skip: &[&Path]) -> Result<Vec<PathBuf>> {
    let entries = walk_entries(root, skip)?;
    let files = entries.into_iter().filter(|(relative, kind)| match kind {
        Kind::File => true,
        Kind::Symlink => root.join(relative).is_file(),
        Kind::Special => false,
    });
    Ok(files.map(|(relative, _)| relative).collect())
}

/// What a directory entry of a submission is; symbolic links are never followed there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Symlink,
    /// A fifo, socket or device.
    Special,
}

/// Every entry of a submission under `root` that is not a directory (relative, sorted), with
/// its kind, skipping what [`walk`] skips.
pub fn walk_entries(root: &Path, skip: &[&Path]) -> Result<Vec<(PathBuf, Kind)>> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(dir) = pending.pop() {
        let absolute = root.join(&dir);
        if skip.contains(&absolute.as_path()) {
            continue;
        }
        let entries = std::fs::read_dir(&absolute)
            .map_err(|e| format!("cannot read {}: {e}", absolute.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot read {}: {e}", absolute.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let relative = dir.join(&name);
            let kind = entry
                .file_type()
                .map_err(|e| format!("cannot read {}: {e}", root.join(&relative).display()))?;
            if kind.is_dir() {
                if !is_skipped_dir(&name) {
                    pending.push(relative);
                }
            } else if kind.is_file() {
                found.push((relative, Kind::File));
            } else if kind.is_symlink() {
                found.push((relative, Kind::Symlink));
            } else {
                found.push((relative, Kind::Special));
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

/// The files of `root` a student must not change: all but the editable and ignored ones.
/// `cargo xtask handout` lists them in the manifest with [`write_manifest`].
pub fn protected_files(root: &Path) -> Result<Vec<PathBuf>> {
    Ok(walk(root, &[])?.into_iter().filter(|p| !is_editable(p) && !is_ignored(p)).collect())
}

/// Writes `root/.course/protected.sha256`: one `sha256sum` line per file (`<hex>  <path>`),
/// so that `sha256sum -c .course/protected.sha256` checks it too.
pub fn write_manifest(root: &Path, files: &[PathBuf]) -> Result<()> {
    let mut text = String::new();
    let mut sorted = files.to_vec();
    sorted.sort();
    for relative in &sorted {
        let name = relative.to_str().filter(|n| !n.contains(['\n', '\\'])).ok_or_else(|| {
            format!("{}: a protected file name must be plain UTF-8", relative.display())
        })?;
        let bytes =
            std::fs::read(root.join(relative)).map_err(|e| format!("cannot read {name}: {e}"))?;
        text.push_str(&format!("{}  {name}\n", hex(&sha256(&bytes))));
    }
    let path = root.join(MANIFEST);
    std::fs::create_dir_all(path.parent().expect("the manifest path has a parent"))?;
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

/// Checks the submission in place against its manifest (mode `manifest`), or says there is
/// none (mode `none`).
pub fn verify_manifest(root: &Path, out: &Path) -> Result<Integrity> {
    let path = root.join(MANIFEST);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Integrity { mode: "none", verified: false, changes: Vec::new() });
    };
    let mut listed = BTreeMap::new();
    for (n, line) in text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty()) {
        let parsed = line.split_once("  ").or_else(|| line.split_once(" *"));
        let Some((digest, name)) = parsed.filter(|(d, _)| d.len() == 64) else {
            return Err(format!("{MANIFEST}:{}: not a `sha256sum` line: {line}", n + 1).into());
        };
        listed.insert(name.to_string(), digest.to_ascii_lowercase());
    }
    let mut changes = Vec::new();
    for (name, digest) in &listed {
        let path = root.join(name);
        let change = Change::new(Path::new(name), "changed");
        match std::fs::symlink_metadata(&path) {
            Err(_) => changes.push(Change::new(Path::new(name), "deleted")),
            Ok(meta) if meta.is_symlink() => changes.push(change.because("a symbolic link")),
            Ok(meta) if !meta.is_file() => changes.push(change.because("not a regular file")),
            Ok(_) => match std::fs::read(&path) {
                Err(e) => changes.push(change.because(format!("unreadable: {e}"))),
                Ok(bytes) if hex(&sha256(&bytes)) != *digest => changes.push(change),
                Ok(_) => {}
            },
        }
    }
    for (relative, _) in walk_entries(root, &[out])? {
        let name = relative.to_string_lossy().into_owned();
        if !is_editable(&relative) && !is_ignored(&relative) && !listed.contains_key(&name) {
            changes.push(Change::new(&relative, "added"));
        }
    }
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    // Never verified: the manifest lives in the graded repository, and without a template the
    // judge is built from the student's own workspace.
    Ok(Integrity { mode: "manifest", verified: false, changes })
}

/// Makes `work` a pristine copy of the template (without `.git` and `target`).
pub fn copy_template(template: &Path, work: &Path, out: &Path) -> Result<()> {
    if work.exists() {
        std::fs::remove_dir_all(work)
            .map_err(|e| format!("cannot clear {}: {e}", work.display()))?;
    }
    for relative in walk(template, &[out, work])? {
        copy(&template.join(relative.as_path()), &work.join(&relative))?;
    }
    Ok(())
}

/// Lays the submission's editable files over `work` (a pristine copy of `template`): only
/// regular files, only in the template's own exercises. Returns what differs in the protected
/// files and what of the student's part was not used, and why.
pub fn overlay(template: &Path, submission: &Path, work: &Path, out: &Path) -> Result<Integrity> {
    let template_files = walk(template, &[out, work])?;
    let exercises: Vec<PathBuf> = template_files
        .iter()
        .filter(|path| {
            let parts = parts(path);
            parts.len() == 3 && parts[0] == "exercises" && parts[2] == "Cargo.toml"
        })
        .filter_map(|path| path.parent().map(Path::to_path_buf))
        .collect();
    let submission_entries = walk_entries(submission, &[out, work])?;
    let mut changes = Vec::new();
    for (relative, kind) in &submission_entries {
        if is_editable(relative) {
            let ignored = Change::new(relative, "ignored");
            if !exercises.iter().any(|exercise| relative.starts_with(exercise)) {
                let folder = parts(relative).into_iter().take(2).collect::<Vec<_>>().join("/");
                changes.push(ignored.because(format!(
                    "{folder} is not an exercise of the course, so it is not built; a crate of \
                     your own cannot be added to the graded workspace"
                )));
            } else if *kind != Kind::File {
                changes.push(ignored.because("a symbolic link or special file, not a source file"));
            } else if let Err(e) = copy(&submission.join(relative), &work.join(relative)) {
                changes.push(ignored.because(format!("it could not be used: {e}")));
            }
        } else if !is_ignored(relative) && template_files.binary_search(relative).is_err() {
            changes.push(Change::new(relative, "added"));
        }
    }
    for relative in &template_files {
        if is_editable(relative) || is_ignored(relative) {
            continue;
        }
        let change = Change::new(relative, "changed");
        let found = submission_entries.binary_search_by(|(path, _)| path.cmp(relative));
        match found.map(|at| submission_entries[at].1) {
            Err(_) => changes.push(Change::new(relative, "deleted")),
            Ok(Kind::Symlink) => changes.push(change.because("a symbolic link")),
            Ok(Kind::Special) => changes.push(change.because("not a regular file")),
            Ok(Kind::File) => {
                let theirs = submission.join(relative);
                let ours = template.join(relative);
                let ours = std::fs::read(&ours)
                    .map_err(|e| format!("cannot read {}: {e}", ours.display()))?;
                match std::fs::read(&theirs) {
                    Err(e) => changes.push(change.because(format!("unreadable: {e}"))),
                    Ok(bytes) if bytes != ours => changes.push(change),
                    Ok(_) => {}
                }
            }
        }
    }
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    // The template's files are the ones used, whatever the submission did to its own.
    Ok(Integrity { mode: "template", verified: true, changes })
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::copy(from, to)
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
    Ok(())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 (FIPS 180-4), the digest `sha256sum` prints.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_agrees_with_sha256sum() {
        let dir = tempfile::tempdir().unwrap();
        for size in [0usize, 1, 3, 55, 56, 63, 64, 65, 119, 120, 1000, 100_003] {
            let data: Vec<u8> = (0..size).map(|i| (i * 7 + size) as u8).collect();
            let file = dir.path().join(format!("data-{size}"));
            std::fs::write(&file, &data).unwrap();
            let output = std::process::Command::new("sha256sum").arg(&file).output().unwrap();
            assert!(output.status.success(), "sha256sum failed on {}", file.display());
            let expected = String::from_utf8(output.stdout).unwrap();
            assert_eq!(hex(&sha256(&data)), expected.split(' ').next().unwrap(), "{size} bytes");
        }
    }

    #[test]
    fn students_write_library_sources_only() {
        for editable in ["exercises/exercise-1/src/lib.rs", "exercises/exercise-2/src/pool/a.rs"] {
            assert!(is_editable(Path::new(editable)), "{editable}");
        }
        for protected in [
            "exercises/exercise-1/src/main.rs",
            "exercises/exercise-1/src/given.rs",
            "exercises/exercise-1/tests/graded.rs",
            "exercises/exercise-1/Cargo.toml",
            "exercises/exercise-1/build.rs",
            "exercises/exercise-1/src/data.txt",
            "crates/mp/src/lib.rs",
            "xtask/src/grade.rs",
        ] {
            assert!(!is_editable(Path::new(protected)), "{protected}");
            assert!(!is_ignored(Path::new(protected)), "{protected}");
        }
        assert!(is_ignored(Path::new("exercises/exercise-1/ANSWERS.md")));
        assert!(!is_ignored(Path::new("README.md")));
    }

    #[test]
    fn the_manifest_finds_changed_deleted_and_added_files() {
        let scratch = tempfile::tempdir().unwrap();
        let root = scratch.path();
        let write = |relative: &str, text: &str| copy_text(root, relative, text);
        write("Cargo.toml", "[workspace]\n");
        write("exercises/exercise-1/tests/graded.rs", "#[test] fn t() {}\n");
        write("exercises/exercise-1/src/lib.rs", "todo\n");
        write("exercises/exercise-1/src/main.rs", "fn main() {}\n");
        write("target/debug/junk", "x");
        let files = protected_files(root).unwrap();
        let names: Vec<String> = files.iter().map(|f| f.to_string_lossy().into()).collect();
        assert_eq!(
            names,
            [
                "Cargo.toml",
                "exercises/exercise-1/src/main.rs",
                "exercises/exercise-1/tests/graded.rs"
            ]
        );
        write_manifest(root, &files).unwrap();
        let manifest = std::fs::read_to_string(root.join(MANIFEST)).unwrap();
        let sha256sum =
            std::process::Command::new("sha256sum").args(&files).current_dir(root).output();
        let sha256sum = sha256sum.unwrap();
        assert!(sha256sum.status.success());
        assert_eq!(manifest, String::from_utf8(sha256sum.stdout).unwrap(), "not sha256sum's lines");
        let check = std::process::Command::new("sha256sum")
            .args(["--check", "--quiet", MANIFEST])
            .current_dir(root)
            .status()
            .unwrap();
        assert!(check.success(), "sha256sum -c disagrees with the manifest");
        let clean = verify_manifest(root, &root.join("target")).unwrap();
        assert!(!clean.verified && clean.changes.is_empty());
        assert!(clean.message().unwrap().starts_with("UNVERIFIED: graded in place"));

        write("exercises/exercise-1/src/lib.rs", "solved\n");
        write("exercises/exercise-1/ANSWERS.md", "my answers\n");
        write("exercises/exercise-1/tests/graded.rs", "#[test] fn t() { assert!(true) }\n");
        write("exercises/exercise-1/build.rs", "fn main() {}\n");
        std::fs::remove_file(root.join("exercises/exercise-1/src/main.rs")).unwrap();
        let tampered = verify_manifest(root, &root.join("target")).unwrap();
        assert!(!tampered.verified);
        let changes: Vec<(&str, &str)> =
            tampered.changes.iter().map(|c| (c.path.as_str(), c.change)).collect();
        assert_eq!(
            changes,
            [
                ("exercises/exercise-1/build.rs", "added"),
                ("exercises/exercise-1/src/main.rs", "deleted"),
                ("exercises/exercise-1/tests/graded.rs", "changed"),
            ]
        );
        assert!(
            tampered.message().unwrap().contains("exercises/exercise-1/tests/graded.rs (changed)")
        );
    }

    fn copy_text(root: &Path, relative: &str, text: &str) {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}
