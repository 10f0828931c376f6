//! `cargo xtask progress`: for a student, which exercises pass right now, and a hint for the
//! first one that does not. Nothing is stored: progress is whatever the tests say today.
//!
//! Also what `cargo xtask watch` shares with it: how an exercise's graded tests are run and
//! read ([`run_graded`], the one place that decides whether an exercise passes) and the hints
//! of an exercise's README ([`hints`]).

use std::{
    path::Path,
    process::ExitCode,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use crate::workspace::{self, Exercise, Limits, Result};

#[derive(clap::Args, Debug)]
pub struct ProgressArgs {
    /// Show every hint of exercise N (from the "Hints" section of its README).
    #[arg(long, value_name = "N")]
    hints: Option<u32>,
}

pub fn run(root: &Path, args: &ProgressArgs) -> Result<ExitCode> {
    let exercises = workspace::exercises(root)?;
    if let Some(number) = args.hints {
        let exercise = find(&exercises, number)?;
        print!("{}", hints_text(exercise, usize::MAX));
        return Ok(ExitCode::SUCCESS);
    }
    println!("| exercise | what | graded tests passing |");
    println!("|---|---|---|");
    let mut first_unfinished = None;
    for exercise in &exercises {
        let tests = run_graded(root, exercise, None);
        let status = match tests.total() {
            Some(total) => format!("{}/{total}", tests.passed()),
            None if !tests.compile_errors.is_empty() => "does not compile yet".to_string(),
            None => format!("did not run: `cargo xtask watch --once {}` says why", exercise.number),
        };
        println!("| {} | {} | {status} |", exercise.name, title(exercise));
        if first_unfinished.is_none() && !tests.all_pass() {
            first_unfinished = Some(exercise);
        }
    }
    match first_unfinished {
        None => println!("\nEvery exercise passes its tests. Well done!"),
        Some(exercise) => {
            println!(
                "\nNext: {} (`cargo xtask watch` reruns its tests each time you save; \
                 `cargo run -p {0}`). A first hint:",
                exercise.name
            );
            print!("{}", hints_text(exercise, 1));
            println!("More hints: `cargo xtask progress --hints {}`.", exercise.number);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The exercise numbered `number`, or an error that lists the course's numbers.
pub fn find(exercises: &[Exercise], number: u32) -> Result<&Exercise> {
    exercises.iter().find(|e| e.number == number).ok_or_else(|| {
        let numbers: Vec<String> = exercises.iter().map(|e| e.number.to_string()).collect();
        format!(
            "there is no exercise {number}: the course has {} (`cargo xtask progress` shows \
             which pass)",
            numbers.join(", ")
        )
        .into()
    })
}

/// How long one run of an exercise's graded tests (build included) may take.
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// One graded test and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    pub name: String,
    pub passed: bool,
    /// For a failure: the start of its message (the panic's place and text), trimmed.
    pub message: Option<String>,
}

/// One compiler error, as the compiler shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// `error[E0308]: mismatched types`, the file and line, the code: rustc's own text.
    pub rendered: String,
    /// `exercises/exercise-1/src/lib.rs:16:5: error[E0308]: mismatched types`.
    pub short: String,
}

/// What one run of `cargo test -p exercise-N --test graded` said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestRun {
    /// In the order of the test file (`tests/graded.rs`); tests it does not name come last.
    pub tests: Vec<TestResult>,
    /// The compiler's errors, when the exercise (or its tests) did not compile.
    pub compile_errors: Vec<CompileError>,
    /// What else went wrong (cargo's own error, a time-out, a test process that crashed).
    pub problem: Option<String>,
    /// Stopped before it ended (Ctrl-C, `q`, a new save).
    pub cancelled: bool,
    /// The exit code of `cargo test`.
    pub code: Option<i32>,
}

impl TestRun {
    pub fn passed(&self) -> usize {
        self.tests.iter().filter(|t| t.passed).count()
    }

    /// The number of tests that reported; None when none ran.
    pub fn total(&self) -> Option<usize> {
        (!self.tests.is_empty()).then_some(self.tests.len())
    }

    /// Every graded test ran and passed, and the run ended well: the exercise is done.
    pub fn all_pass(&self) -> bool {
        !self.cancelled
            && self.code == Some(0)
            && self.problem.is_none()
            && self.total().is_some()
            && self.tests.iter().all(|t| t.passed)
    }

    pub fn first_failure(&self) -> Option<&TestResult> {
        self.tests.iter().find(|t| !t.passed)
    }
}

/// Runs the graded tests of `exercise` (building them first) and reads what they say. The
/// build's progress lines are not kept; the compiler's errors are. Stops early, killing every
/// process of the run, when `cancel` turns true.
pub fn run_graded(root: &Path, exercise: &Exercise, cancel: Option<&AtomicBool>) -> TestRun {
    let mut command = workspace::cargo(root);
    command.args(["test", "-p", &exercise.name, "--test", "graded", "--message-format", "json"]);
    // The panic's place and message are what a student needs; a backtrace is noise here.
    command.env("RUST_BACKTRACE", "0");
    let limits = Limits { wall_clock: RUN_LIMIT, output_cap: 1024 * 1024 };
    let never = AtomicBool::new(false);
    let outcome = match workspace::run_cancellable(command, limits, cancel.unwrap_or(&never)) {
        Ok(outcome) => outcome,
        Err(error) => {
            return TestRun {
                problem: Some(format!(
                    "cargo could not be started ({error}): is Rust installed, and `cargo` on \
                     your PATH?"
                )),
                ..TestRun::default()
            };
        }
    };
    let order = std::fs::read_to_string(exercise.dir.join("tests/graded.rs")).unwrap_or_default();
    let mut run = parse_run(&outcome.stdout, &outcome.stderr, outcome.code, &order);
    run.cancelled = outcome.cancelled || cancel.is_some_and(|c| c.load(Ordering::SeqCst));
    if outcome.timed_out {
        run.problem = Some(format!(
            "the tests were stopped after {} minutes: look for a loop that never ends or a \
             wait that nothing answers (a `recv` whose sender is never dropped, a `join` of a \
             process that waits too).",
            RUN_LIMIT.as_secs() / 60
        ));
    }
    run
}

/// Lines of a failure's message that are shown.
const MESSAGE_LINES: usize = 12;
/// Characters of one line of a message that are shown (an assertion's vectors can be long).
const LINE_CHARS: usize = 300;

/// Reads `cargo test --message-format json` output: the compiler's errors from its JSON
/// lines, each test's result from the test harness's lines, and each failure's message.
/// `test_file` (the text of the tests) gives the tests their order.
pub fn parse_run(stdout: &str, stderr: &str, code: Option<i32>, test_file: &str) -> TestRun {
    let mut run = TestRun { code, ..TestRun::default() };
    let mut messages: Vec<(String, Vec<&str>)> = Vec::new();
    let mut in_failures = false;
    let mut block: Option<(String, Vec<&str>)> = None;
    for line in stdout.lines() {
        if line.starts_with('{') {
            if let Some(error) = compile_error(line) {
                run.compile_errors.push(error);
            }
            continue;
        }
        if let Some(name) = line.strip_prefix("---- ").and_then(|l| l.strip_suffix(" stdout ----"))
        {
            messages.extend(block.take());
            block = Some((name.to_string(), Vec::new()));
            in_failures = true;
            continue;
        }
        if line == "failures:" || line.starts_with("test result: ") {
            messages.extend(block.take());
            in_failures = line == "failures:" || in_failures;
            continue;
        }
        if let Some((_, lines)) = &mut block {
            lines.push(line);
            continue;
        }
        if in_failures {
            continue;
        }
        if let Some(rest) = line.strip_prefix("test ")
            && let Some((name, result)) = rest.rsplit_once(" ... ")
        {
            let result = result.trim();
            if result == "ignored" {
                continue;
            }
            run.tests.push(TestResult {
                name: name.trim().to_string(),
                passed: result == "ok",
                message: None,
            });
        }
    }
    messages.extend(block.take());
    for (name, lines) in messages {
        if let Some(test) = run.tests.iter_mut().find(|t| t.name == name) {
            test.message = Some(failure_message(&lines));
        }
    }
    let position = |name: &str| {
        let short = name.rsplit("::").next().unwrap_or(name);
        test_file.find(&format!("fn {short}(")).unwrap_or(usize::MAX)
    };
    run.tests.sort_by(|a, b| position(&a.name).cmp(&position(&b.name)).then(a.name.cmp(&b.name)));
    if run.tests.is_empty() && run.compile_errors.is_empty() && code != Some(0) {
        run.problem = Some(format!(
            "`cargo test` ended before the tests ran ({}). What it said:\n{}",
            match code {
                Some(code) => format!("exit code {code}"),
                None => "stopped by a signal".to_string(),
            },
            cargo_said(stderr)
        ));
    } else if !run.tests.is_empty() && code != Some(0) && run.tests.iter().all(|t| t.passed) {
        run.problem = Some(format!(
            "every test that reported passed, but the test process failed (a crash, or a test \
             that never reported). What it said:\n{}",
            cargo_said(stderr)
        ));
    }
    run
}

/// A compiler error from one JSON line of cargo's output (None for anything else).
fn compile_error(line: &str) -> Option<CompileError> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    if value["reason"] != "compiler-message" {
        return None;
    }
    let message = &value["message"];
    let level = message["level"].as_str()?;
    let text = message["message"].as_str()?;
    if !level.starts_with("error") || text.starts_with("aborting due to") {
        return None;
    }
    let rendered = message["rendered"].as_str().unwrap_or(text).trim_end().to_string();
    let headline = match message["code"]["code"].as_str() {
        Some(code) => format!("error[{code}]: {text}"),
        None => format!("error: {text}"),
    };
    let place = message["spans"].as_array().and_then(|spans| {
        let span = spans.iter().find(|s| s["is_primary"] == true).or(spans.first())?;
        Some(format!(
            "{}:{}:{}",
            span["file_name"].as_str()?,
            span["line_start"],
            span["column_start"]
        ))
    });
    let short = match place {
        Some(place) => format!("{place}: {headline}"),
        None => headline,
    };
    Some(CompileError { rendered, short })
}

/// The useful part of a failure's output: where it panicked and why, without the
/// observations, backtrace notes and blank lines around them.
fn failure_message(lines: &[&str]) -> String {
    let kept: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|line| !line.starts_with(judge::PREFIX))
        .filter(|line| !line.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    // From the first panic on, if there is one (output printed before it comes first otherwise).
    let start = kept.iter().position(|line| line.starts_with("thread '")).unwrap_or(0);
    let mut shown: Vec<String> = Vec::new();
    for line in &kept[start..] {
        if line.trim().is_empty() && shown.is_empty() {
            continue;
        }
        if *line == "stack backtrace:" {
            break;
        }
        // "thread 'name' (1234) panicked at src/lib.rs:3:5:" -> "panicked at src/lib.rs:3:5:"
        let line = match line.find("' panicked at ").or_else(|| line.find(") panicked at ")) {
            Some(_) if line.starts_with("thread '") => {
                line[line.find("panicked at ").unwrap_or(0)..].to_string()
            }
            _ => line.to_string(),
        };
        shown.push(cut(&line, LINE_CHARS));
    }
    while shown.last().is_some_and(|line| line.trim().is_empty()) {
        shown.pop();
    }
    if shown.len() > MESSAGE_LINES {
        let more = shown.len() - MESSAGE_LINES;
        shown.truncate(MESSAGE_LINES);
        shown.push(format!("[... {more} more lines]"));
    }
    shown.join("\n")
}

fn cut(line: &str, at_most: usize) -> String {
    match line.char_indices().nth(at_most) {
        Some((end, _)) => format!("{} [...]", &line[..end]),
        None => line.to_string(),
    }
}

/// The last lines of cargo's stderr that are not its progress lines.
fn cargo_said(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| {
            let status = line.trim_start();
            !["Compiling ", "Finished ", "Running ", "Blocking ", "Checking "]
                .iter()
                .any(|word| status.starts_with(word))
        })
        .filter(|line| !line.trim().is_empty())
        .collect();
    let tail = &lines[lines.len().saturating_sub(15)..];
    if tail.is_empty() {
        "(nothing)".to_string()
    } else {
        tail.iter()
            .map(|line| format!("  {}", cut(line, LINE_CHARS)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The first heading of the exercise's README, without the `#`.
pub fn title(exercise: &Exercise) -> String {
    let readme = std::fs::read_to_string(exercise.dir.join("README.md")).unwrap_or_default();
    readme
        .lines()
        .find_map(|line| line.strip_prefix("# "))
        .map(|title| title.trim().to_string())
        .unwrap_or_else(|| exercise.name.clone())
}

/// One hint of an exercise's README.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    /// What it is about (`where to start`), when the README gives it a title.
    pub title: Option<String>,
    /// Plain text: paragraphs separated by blank lines, code lines indented by four spaces.
    pub body: String,
}

/// The hints of exercise's README (read now, so a handout's README counts).
pub fn readme_hints(exercise: &Exercise) -> Vec<Hint> {
    hints(&std::fs::read_to_string(exercise.dir.join("README.md")).unwrap_or_default())
}

/// Hints `..at_most` of the exercise, as text for the terminal (or a line saying there are
/// none).
pub fn hints_text(exercise: &Exercise, at_most: usize) -> String {
    let hints = readme_hints(exercise);
    if hints.is_empty() {
        return format!(
            "  (no hints in exercises/{}/README.md: its questions and the `todo!` messages in \
             src/lib.rs say what to write)\n",
            exercise.name
        );
    }
    let mut text = String::new();
    for (index, hint) in hints.iter().enumerate().take(at_most) {
        text.push_str(&format_hint(index, hints.len(), hint));
    }
    text
}

/// `Hint 2 of 3: by hand`, then the body, indented and wrapped for a terminal.
pub fn format_hint(index: usize, count: usize, hint: &Hint) -> String {
    let mut text = format!("Hint {} of {count}", index + 1);
    if let Some(title) = &hint.title {
        text.push_str(": ");
        text.push_str(title);
    }
    text.push('\n');
    for paragraph in hint.body.split("\n\n") {
        if paragraph.starts_with("    ") {
            for line in paragraph.lines() {
                text.push_str(&format!("  {line}\n"));
            }
        } else {
            for line in wrap(paragraph, 88) {
                text.push_str(&format!("    {line}\n"));
            }
        }
        text.push('\n');
    }
    text
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// The hints of a README, in order: every `details` block whose `summary` reads
/// `Hint N: title` (anywhere), and the list items of a section whose heading says "Hint"
/// (outside such blocks). Other `details` blocks (answers to the questions) are not hints.
pub fn hints(readme: &str) -> Vec<Hint> {
    let mut hints: Vec<Hint> = Vec::new();
    let mut in_section = false;
    let mut in_fence = false;
    // The `<details>` block being read: its text so far (summary and body, tags included).
    let mut details: Option<String> = None;
    // Lines of the list item being read, in a Hints section.
    let mut item: Option<Vec<String>> = None;
    for line in readme.lines() {
        if let Some(text) = &mut details {
            text.push_str(line);
            text.push('\n');
            if line.contains("</details>") {
                let text = details.take().unwrap_or_default();
                hints.extend(details_hint(&text));
            }
            continue;
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
        }
        if !in_fence && trimmed.starts_with("<details") {
            hints.extend(item.take().map(list_hint));
            if line.contains("</details>") {
                hints.extend(details_hint(line));
            } else {
                details = Some(format!("{line}\n"));
            }
            continue;
        }
        if !in_fence && line.starts_with('#') {
            hints.extend(item.take().map(list_hint));
            in_section = line.to_lowercase().contains("hint");
            continue;
        }
        if !in_section {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let marker =
            trimmed.strip_prefix("- ").or_else(|| trimmed.strip_prefix("* ")).or_else(|| {
                trimmed
                    .split_once(". ")
                    .filter(|(n, _)| n.parse::<u32>().is_ok())
                    .map(|(_, rest)| rest)
            });
        match marker {
            Some(rest) if indent < 2 => {
                hints.extend(item.take().map(list_hint));
                item = Some(vec![rest.to_string()]);
            }
            _ => {
                if let Some(lines) = &mut item {
                    lines.push(line.to_string());
                }
            }
        }
    }
    hints.extend(item.take().map(list_hint));
    hints
}

fn list_hint(lines: Vec<String>) -> Hint {
    Hint { title: None, body: plain_text(&lines.join("\n")) }
}

/// The hint of one `<details>` block, if its summary says "Hint".
fn details_hint(block: &str) -> Option<Hint> {
    let start = block.find("<summary>")? + "<summary>".len();
    let end = start + block[start..].find("</summary>")?;
    let summary = strip_tags(&block[start..end]).trim().to_string();
    let lower = summary.to_lowercase();
    if !lower.starts_with("hint") {
        return None;
    }
    // "Hint 2: by hand" -> "by hand"; "Hint" alone -> no title.
    let rest = summary["hint".len()..].trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ');
    let title = rest.trim_start_matches([':', '.', '-', ' ']).trim();
    let body_end = block.rfind("</details>").unwrap_or(block.len()).max(end);
    let body = &block[end + "</summary>".len()..body_end];
    Some(Hint { title: (!title.is_empty()).then(|| title.to_string()), body: plain_text(body) })
}

/// Markdown (and a little HTML) as plain text: paragraphs joined into one line each and
/// separated by a blank line, list items as their own paragraphs, code blocks indented by four
/// spaces, tags removed and entities decoded.
fn plain_text(markdown: &str) -> String {
    let mut paragraphs: Vec<String> = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut code: Option<Vec<String>> = None;
    let flush = |current: &mut Vec<String>, paragraphs: &mut Vec<String>| {
        if !current.is_empty() {
            paragraphs.push(current.join(" "));
            current.clear();
        }
    };
    for line in markdown.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            match code.take() {
                Some(lines) => paragraphs.push(lines.join("\n")),
                None => {
                    flush(&mut current, &mut paragraphs);
                    code = Some(Vec::new());
                }
            }
            continue;
        }
        if let Some(lines) = &mut code {
            lines.push(format!("    {}", line.trim_end()));
            continue;
        }
        let text = strip_tags(trimmed);
        let text = text.trim();
        if text.is_empty() {
            flush(&mut current, &mut paragraphs);
            continue;
        }
        let is_item = text.starts_with("- ")
            || text.starts_with("* ")
            || text.split_once(". ").is_some_and(|(n, _)| n.parse::<u32>().is_ok());
        if is_item {
            flush(&mut current, &mut paragraphs);
        }
        current.push(text.to_string());
    }
    flush(&mut current, &mut paragraphs);
    if let Some(lines) = code {
        paragraphs.push(lines.join("\n"));
    }
    paragraphs.join("\n\n")
}

/// Text without HTML tags (`<br>`, `<code>`, ...), with the common entities decoded.
fn strip_tags(text: &str) -> String {
    let mut plain = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        let tag_end = rest[open..].find('>').map(|end| open + end);
        // A `<` that starts no tag (`a < b`, `Vec<u8>`) stays.
        let is_tag = tag_end.is_some()
            && rest[open + 1..].starts_with(|c: char| c.is_ascii_alphabetic() || c == '/')
            && rest[open + 1..tag_end.unwrap_or(open)].split_whitespace().next().is_some_and(
                |name| {
                    let name = name.trim_start_matches('/').to_lowercase();
                    HTML_TAGS.contains(&name.as_str())
                },
            );
        match (is_tag, tag_end) {
            (true, Some(end)) => {
                plain.push_str(&rest[..open]);
                rest = &rest[end + 1..];
            }
            _ => {
                plain.push_str(&rest[..=open]);
                rest = &rest[open + 1..];
            }
        }
    }
    plain.push_str(rest);
    plain.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&")
}

const HTML_TAGS: &[&str] = &[
    "details", "summary", "br", "code", "b", "i", "em", "strong", "p", "kbd", "sub", "sup", "pre",
    "ul", "ol", "li", "a",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn course_exercises() -> Vec<Exercise> {
        let root = workspace::project_root();
        let exercises = workspace::exercises(&root).unwrap();
        assert!(!exercises.is_empty(), "no exercises under {}", root.display());
        exercises
    }

    #[test]
    fn every_exercise_readme_has_hints_with_plain_text() {
        for exercise in course_exercises() {
            let hints = readme_hints(&exercise);
            assert!(!hints.is_empty(), "no hints found in {}/README.md", exercise.name);
            for hint in &hints {
                let text = format_hint(0, hints.len(), hint);
                assert!(hint.body.split_whitespace().count() >= 5, "{}: {text}", exercise.name);
                for tag in ["<details", "<summary", "</summary>", "</details>"] {
                    assert!(!text.contains(tag), "{}: {tag} in the hint:\n{text}", exercise.name);
                }
            }
            // What `progress` prints is what `watch` prints.
            let shown = hints_text(&exercise, usize::MAX);
            assert!(!shown.contains("no hints"), "{}: {shown}", exercise.name);
            assert!(shown.contains(&format_hint(0, hints.len(), &hints[0])));
        }
    }

    #[test]
    fn details_hints_have_their_title_and_body_and_answers_are_not_hints() {
        let exercises = course_exercises();
        let first = find(&exercises, 1).unwrap();
        let readme = std::fs::read_to_string(first.dir.join("README.md")).unwrap();
        let n_blocks = readme.matches("<summary>Hint ").count();
        let hints = readme_hints(first);
        assert!(n_blocks > 0, "exercise 1's README has no <details> hints any more: pick another");
        assert_eq!(hints.len(), n_blocks, "{hints:#?}");
        let title = readme.split("<summary>Hint 1: ").nth(1).unwrap().split("</summary>").next();
        assert_eq!(hints[0].title.as_deref(), title);
        let body_start = readme.split("</summary>").nth(1).unwrap().split_whitespace().next();
        assert!(hints[0].body.starts_with(body_start.unwrap()), "{:?}", hints[0].body);
        // Answers to questions sit in <details> blocks too.
        let readme = "## Hints\n\n<details><summary>Hint 1: a</summary>\n\nDo x.\n</details>\n\n\
                      <details><summary>Answer to question 1</summary>\n\n1. Not a hint.\n</details>\n";
        assert_eq!(hints_of(readme), [(Some("a".to_string()), "Do x.".to_string())]);
    }

    fn hints_of(readme: &str) -> Vec<(Option<String>, String)> {
        hints(readme).into_iter().map(|h| (h.title, h.body)).collect()
    }

    #[test]
    fn list_hints_and_details_hints_are_both_read() {
        let readme = "# Exercise\n\n```python\n# not a heading\n```\n\n## Task\n- not a hint\n\n\
                      ## Hints\n\n1. Start with\n   the serial version.\n2. Then `Vec<u8>` &amp; a\n   \
                      <code>Pool</code>.\n\n## Questions\n- no\n\n\
                      <details>\n<summary><b>Hint 3.</b> last</summary>\n\nOne\nline.\n\n- an item\n\n\
                      ```rust\nlet x = 1;\n```\n</details>\n";
        assert_eq!(
            hints_of(readme),
            [
                (None, "Start with the serial version.".to_string()),
                (None, "Then `Vec<u8>` & a Pool.".to_string()),
                (Some("last".to_string()), "One line.\n\n- an item\n\n    let x = 1;".to_string()),
            ]
        );
        assert!(hints("# Nothing\n").is_empty());
        let text = format_hint(2, 3, &hints(readme)[2]);
        assert_eq!(
            text,
            "Hint 3 of 3: last\n    One line.\n\n    - an item\n\n      let x = 1;\n\n"
        );
    }

    #[test]
    fn a_test_run_gives_results_in_file_order_and_the_first_failure_s_message() {
        let stdout = "{\"reason\":\"compiler-artifact\"}\n\nrunning 3 tests\n\
            test b_second ... FAILED\ntest c_third ... ok\ntest a_first ... FAILED\n\n\
            failures:\n\n---- b_second stdout ----\nobserved: 3    <- f()\n\n\
            thread 'b_second' (123) panicked at exercises/exercise-1/src/lib.rs:16:5:\n\
            not yet implemented: write it\nnote: run with `RUST_BACKTRACE=1` environment variable\n\n\
            ---- a_first stdout ----\nthread 'a_first' (124) panicked at tests/graded.rs:9:5:\n\
            assertion `left == right` failed\n  left: 1\n right: 2\n\n\nfailures:\n    a_first\n    \
            b_second\n\ntest result: FAILED. 1 passed; 2 failed; 0 ignored\n\n";
        let file = "fn a_first() {}\nfn b_second() {}\nfn c_third() {}\n";
        let run = parse_run(stdout, "", Some(101), file);
        let names: Vec<&str> = run.tests.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a_first", "b_second", "c_third"]);
        assert_eq!((run.passed(), run.total()), (1, Some(3)));
        assert!(!run.all_pass() && run.problem.is_none());
        assert_eq!(
            run.tests[0].message.as_deref(),
            Some(
                "panicked at tests/graded.rs:9:5:\nassertion `left == right` failed\n  left: 1\n right: 2"
            )
        );
        assert_eq!(
            run.tests[1].message.as_deref(),
            Some(
                "panicked at exercises/exercise-1/src/lib.rs:16:5:\nnot yet implemented: write it"
            )
        );
    }

    #[test]
    fn compiler_errors_are_kept_and_cargo_s_noise_is_not() {
        let error = serde_json::json!({
            "reason": "compiler-message",
            "message": {
                "level": "error", "message": "mismatched types", "code": {"code": "E0308"},
                "rendered": "error[E0308]: mismatched types\n --> exercises/exercise-1/src/lib.rs:16:5\n",
                "spans": [{"is_primary": true, "file_name": "exercises/exercise-1/src/lib.rs",
                           "line_start": 16, "column_start": 5}]
            }
        });
        let warning = serde_json::json!({
            "reason": "compiler-message",
            "message": {"level": "warning", "message": "unused variable", "rendered": "warning", "spans": []}
        });
        let aborting = serde_json::json!({
            "reason": "compiler-message",
            "message": {"level": "error", "message": "aborting due to 1 previous error", "spans": []}
        });
        let stdout = format!("{error}\n{warning}\n{aborting}\n");
        let stderr = "   Compiling exercise-1 v0.0.0\nerror: could not compile `exercise-1`\n";
        let run = parse_run(&stdout, stderr, Some(101), "");
        assert_eq!(run.compile_errors.len(), 1);
        assert_eq!(
            run.compile_errors[0].short,
            "exercises/exercise-1/src/lib.rs:16:5: error[E0308]: mismatched types"
        );
        assert!(run.problem.is_none() && !run.all_pass());
        // Nothing ran and the compiler said nothing: cargo's own words, without its progress.
        let run = parse_run("", stderr, Some(101), "");
        let problem = run.problem.unwrap();
        assert!(
            problem.contains("could not compile") && !problem.contains("Compiling"),
            "{problem}"
        );
    }
}
