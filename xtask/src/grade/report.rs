//! The grade's three forms: `results.json` (Exercism v2 plus scores), a Markdown summary and
//! JUnit XML.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;

use super::{
    Result,
    integrity::Integrity,
    runner::{ExerciseRun, Status, cap_chars},
};

/// Characters of a test's output kept in results.json (Exercism's limit).
const OUTPUT_CAP: usize = 500;
/// Characters of a test's message and output shown in the Markdown details.
const DETAILS_CAP: usize = 4000;

/// `results.json`.
#[derive(Debug, Serialize)]
pub struct Results {
    pub version: u32,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub score: u32,
    pub max_score: u32,
    pub integrity: Integrity,
    /// What isolated the code under test (`pid-namespace, user nobody`, ...).
    pub sandbox: &'static str,
    pub exercises: Vec<ExerciseResult>,
    pub tests: Vec<TestResult>,
}

#[derive(Debug, Serialize)]
pub struct ExerciseResult {
    pub name: String,
    pub status: Status,
    pub score: u32,
    pub max_score: u32,
    /// True when a judge built without the student's code decided every pass (see the
    /// `judge` crate); false when only the test process's own report was available.
    pub judged: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TestResult {
    /// `exercise-N / test_name`.
    pub name: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_code: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub leftover_processes: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn exercise_status(run: &ExerciseRun) -> Status {
    if run.message.is_some() {
        Status::Error
    } else if run.tests.iter().all(|t| t.status == Status::Pass) {
        Status::Pass
    } else {
        Status::Fail
    }
}

fn score(run: &ExerciseRun) -> u32 {
    run.tests.iter().filter(|t| t.status == Status::Pass).count() as u32
}

pub fn results(runs: &[ExerciseRun], integrity: &Integrity, sandbox: &'static str) -> Results {
    let exercises: Vec<ExerciseResult> = runs
        .iter()
        .map(|run| ExerciseResult {
            name: run.name.clone(),
            status: exercise_status(run),
            score: score(run),
            max_score: run.tests.len() as u32,
            judged: run.judged,
            message: run.message.clone(),
        })
        .collect();
    let tests = runs
        .iter()
        .flat_map(|run| {
            run.tests.iter().map(move |test| TestResult {
                name: format!("{} / {}", run.name, test.name),
                status: test.status,
                message: test.message.clone(),
                output: (!test.output.is_empty()).then(|| cap_output(&test.output)),
                test_code: test.test_code.clone(),
                leftover_processes: test.leftovers,
            })
        })
        .collect();
    let all_error = exercises.iter().all(|e| e.status == Status::Error);
    let status = if exercises.is_empty() || all_error {
        Status::Error
    } else if exercises.iter().all(|e| e.status == Status::Pass) {
        Status::Pass
    } else {
        Status::Fail
    };
    let mut message: Vec<String> = integrity.message().into_iter().collect();
    for exercise in exercises.iter().filter(|e| e.status == Status::Error) {
        let first = exercise.message.as_deref().and_then(|m| m.lines().next()).unwrap_or("");
        message.push(first.to_string());
    }
    if exercises.is_empty() {
        message.push("no exercise was graded".into());
    }
    Results {
        version: 2,
        status,
        message: (!message.is_empty()).then(|| message.join("\n")),
        score: exercises.iter().map(|e| e.score).sum(),
        max_score: exercises.iter().map(|e| e.max_score).sum(),
        integrity: integrity.clone(),
        sandbox,
        exercises,
        tests,
    }
}

fn cap_output(output: &str) -> String {
    const MARK: &str = "\n[cut: too long]";
    if output.chars().count() <= OUTPUT_CAP {
        output.to_string()
    } else {
        let mut kept: String = output.chars().take(OUTPUT_CAP - MARK.len()).collect();
        kept.push_str(MARK);
        kept
    }
}

fn badge(status: Status) -> &'static str {
    match status {
        Status::Pass => "✅ pass",
        Status::Fail => "❌ fail",
        Status::Error => "⚠️ error",
    }
}

/// One table cell: one line, no pipes.
fn cell(text: &str) -> String {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let mut first = lines.next().unwrap_or("").trim().to_string();
    // "thread 'name' panicked at FILE:LINE:COL:" says less than the line after it.
    if first.starts_with("thread '")
        && first.contains("panicked at")
        && let Some(what) = lines.next()
    {
        first = format!("panicked: {}", what.trim());
    }
    let first = cap_chars(&first, 200).replace('\n', " ");
    first.replace('|', "\\|")
}

/// A fenced code block that nothing in `text` can end: the fence is a run of backticks longer
/// than any in the text (a closing fence needs at least as many, and tildes never close it).
fn fenced(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}text\n{}\n{fence}\n", text.trim_end())
}

/// The last line of every form: `Points X/Y`, which GitHub Classroom reads, only for a
/// verified grade.
pub fn points_line(results: &Results) -> String {
    if results.integrity.verified {
        format!("Points {}/{}", results.score, results.max_score)
    } else {
        format!(
            "UNVERIFIED: {}/{} tests passed, not a grade (verified: false)",
            results.score, results.max_score
        )
    }
}

pub fn markdown(results: &Results, runs: &[ExerciseRun]) -> String {
    let mut md = if results.integrity.verified {
        format!("# Grade: {}/{} points\n\n", results.score, results.max_score)
    } else {
        format!(
            "# UNVERIFIED: {}/{} tests passed (not a grade)\n\n",
            results.score, results.max_score
        )
    };
    if let Some(message) = results.integrity.message() {
        md.push_str(&format!("> [!WARNING]\n> {message}\n\n"));
    }
    md.push_str("| Exercise | Points | Result |\n|---|---:|---|\n");
    for exercise in &results.exercises {
        md.push_str(&format!(
            "| {} | {}/{} | {} |\n",
            exercise.name,
            exercise.score,
            exercise.max_score,
            badge(exercise.status)
        ));
    }
    for (exercise, run) in results.exercises.iter().zip(runs) {
        md.push_str(&format!(
            "\n## {}: {}/{}\n\n",
            exercise.name, exercise.score, exercise.max_score
        ));
        if let Some(message) = &exercise.message {
            md.push_str(&fenced(&cap_chars(message, DETAILS_CAP)));
            md.push('\n');
        }
        md.push_str("| Test | Result | Message |\n|---|---|---|\n");
        for test in &run.tests {
            md.push_str(&format!(
                "| `{}` | {} | {} |\n",
                test.name,
                badge(test.status),
                cell(test.message.as_deref().unwrap_or(""))
            ));
        }
        let details: Vec<_> = run
            .tests
            .iter()
            .filter(|t| t.status != Status::Pass && exercise.message.is_none())
            .collect();
        if !details.is_empty() {
            md.push_str(&format!("\n<details><summary>What failed in {}</summary>\n\n", run.name));
            for test in details {
                md.push_str(&format!("### `{}`\n\n", test.name));
                let mut text = test.message.clone().unwrap_or_default();
                if !test.output.is_empty() {
                    text.push_str("\n\nOutput:\n");
                    text.push_str(&test.output);
                }
                md.push_str(&fenced(&cap_chars(&text, DETAILS_CAP)));
                md.push('\n');
            }
            md.push_str("</details>\n");
        }
    }
    md.push_str(&format!("\n{}\n", points_line(results)));
    md
}

/// The short table printed to the terminal.
pub fn terminal(results: &Results, runs: &[ExerciseRun]) -> String {
    let mut text = String::new();
    for (exercise, run) in results.exercises.iter().zip(runs) {
        text.push_str(&format!(
            "{:<14} {:>3}/{:<3} {:<5} ({:.1} s)\n",
            exercise.name,
            exercise.score,
            exercise.max_score,
            exercise.status.as_str(),
            run.elapsed.as_secs_f64()
        ));
        if let Some(message) = &exercise.message {
            text.push_str(&format!("    {}\n", cell(message)));
            continue;
        }
        for test in run.tests.iter().filter(|t| t.status != Status::Pass) {
            text.push_str(&format!(
                "    {} {}: {}\n",
                test.status.as_str(),
                test.name,
                cell(test.message.as_deref().unwrap_or(""))
            ));
        }
    }
    if let Some(message) = results.integrity.message() {
        text.push_str(&format!("\n{message}\n"));
    }
    text.push_str(&format!("\n{}\n", points_line(results)));
    text
}

/// Text fit for JUnit XML, which quick-junit then escapes. The control characters XML 1.0
/// forbids (and ANSI colour codes, which quick-junit would strip) are shown as `\u{1b}`; a tab
/// becomes a space and a carriage return a line feed, since quick-junit keeps neither (an XML
/// reader turns a carriage return into a line feed anyway).
pub fn xml_text(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\t' => shown.push(' '),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\r' => shown.push('\n'),
            c if (c as u32) < 0x20 && c != '\n' || c == '\u{fffe}' || c == '\u{ffff}' => {
                shown.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => shown.push(c),
        }
    }
    shown
}

/// The JUnit report (as GitHub's test reporters read it): one `testsuite` per exercise, one
/// `testcase` per test, with a `failure` or `error` holding the message and `system-out` the
/// test's output.
pub fn junit(runs: &[ExerciseRun]) -> Result<String> {
    let mut report = Report::new("grade");
    report.set_time(runs.iter().map(|run| run.elapsed).sum());
    for run in runs {
        let mut suite = TestSuite::new(xml_text(&run.name));
        suite.set_time(run.elapsed);
        for test in &run.tests {
            let message = test.message.as_deref().unwrap_or("");
            let kind = match test.status {
                Status::Pass => None,
                Status::Fail => Some(NonSuccessKind::Failure),
                Status::Error => Some(NonSuccessKind::Error),
            };
            let status = match kind {
                None => TestCaseStatus::success(),
                Some(kind) => {
                    let mut status = TestCaseStatus::non_success(kind);
                    status.set_message(xml_text(&cell(message)));
                    status.set_description(xml_text(message));
                    status
                }
            };
            let mut case = TestCase::new(xml_text(&test.name), status);
            case.set_classname(xml_text(&run.name));
            case.set_time(test.elapsed);
            if !test.output.is_empty() {
                case.set_system_out(xml_text(&cap_chars(&test.output, DETAILS_CAP)));
            }
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    Ok(report.to_string().map_err(|e| format!("cannot write the JUnit report: {e}"))?)
}

#[cfg(test)]
#[path = "../../tests/support/junit.rs"]
mod junit_xml;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::grade::runner::TestRun;

    /// Two exercises: one whose tests pass (one with output), fail and err with markup,
    /// quotes and control characters in their text, and one that did not compile.
    fn sample() -> Vec<ExerciseRun> {
        let test = |name: &str, status, message: Option<&str>, output: &str, millis| TestRun {
            name: name.to_string(),
            status,
            message: message.map(str::to_string),
            output: output.to_string(),
            test_code: None,
            leftovers: 0,
            elapsed: Duration::from_millis(millis),
        };
        vec![
            ExerciseRun {
                name: "exercise-1".to_string(),
                message: None,
                judged: true,
                tests: vec![
                    test("adds", Status::Pass, None, "", 12),
                    test("prints", Status::Pass, None, "a line\nanother <line> & more\n", 1500),
                    test(
                        "sums",
                        Status::Fail,
                        Some(
                            "thread 'sums' panicked at src/lib.rs:3:5:\nassertion `left == right` failed\n  left: \"<a>\"\n right: 'b'",
                        ),
                        "\u{1b}[31mred\u{1b}[0m and a bell \u{7}\tTab",
                        7,
                    ),
                    test("loops", Status::Error, Some("took longer than 3 s | killed"), "", 3001),
                ],
                elapsed: Duration::from_millis(4520),
            },
            ExerciseRun {
                name: "exercise-<2>".to_string(),
                message: Some("does not compile:\nerror[E0308]: mismatched types".to_string()),
                judged: false,
                tests: vec![test(
                    "echo",
                    Status::Error,
                    Some("exercise-2 does not compile:\nerror[E0308]: mismatched types"),
                    "",
                    0,
                )],
                elapsed: Duration::from_millis(250),
            },
        ]
    }

    fn golden(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report").join(name)
    }

    /// The golden file is the hand-written writer's report of [`sample`]; quick-junit's must
    /// say the same, element by element, and keep to the JUnit schema.
    #[test]
    fn junit_says_what_the_hand_written_report_said() {
        let runs = sample();
        let actual = junit(&runs).unwrap();
        let golden = std::fs::read_to_string(golden("expected_junit.xml")).unwrap();
        let new = junit_xml::parse(&actual).unwrap();
        junit_xml::check_schema(&new).unwrap();
        junit_xml::same_report(&junit_xml::parse(&golden).unwrap(), &new)
            .unwrap_or_else(|e| panic!("{e}\n{actual}"));
        assert!(actual.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"));
        assert!(actual.ends_with("</testsuites>\n"));
    }

    #[test]
    fn the_junit_checks_catch_wrong_counts_order_and_text() {
        let good = junit(&sample()).unwrap();
        let parse = |xml: &str| junit_xml::parse(xml).unwrap();
        let broken = [
            good.replacen("tests=\"4\"", "tests=\"3\"", 1),
            good.replacen("failures=\"1\"", "failures=\"0\"", 1),
            good.replace("<testcase name=\"adds\" ", "<testcase "),
            good.replace("</system-out>", "</system-out><failure/>"),
        ];
        for xml in &broken {
            assert!(junit_xml::check_schema(&parse(xml)).is_err(), "{xml}");
        }
        let reworded = good.replace("mismatched types", "mismatched");
        assert!(junit_xml::same_report(&parse(&good), &parse(&reworded)).is_err());
        assert!(junit_xml::parse(&good.replace("</testcase>", "")).is_err());
    }

    #[test]
    fn control_characters_are_shown_and_tabs_and_returns_kept_as_space_and_newline() {
        assert_eq!(
            xml_text("a<b & \"c\" 'd'>\u{1b}[31m\t\r\nx\ry\u{7}\u{ffff}\n"),
            "a<b & \"c\" 'd'>\\u{1b}[31m \nx\ny\\u{7}\\u{ffff}\n"
        );
    }

    #[test]
    fn output_is_capped_at_500_characters() {
        let long = "é".repeat(2000);
        assert_eq!(cap_output(&long).chars().count(), 500);
        assert_eq!(cap_output("short"), "short");
    }

    #[test]
    fn nothing_in_the_text_ends_its_fence() {
        let text = "```\n~~~~\n# Points 50/50\n`````\nend";
        let block = fenced(text);
        let fence = block.lines().next().unwrap().trim_end_matches("text");
        assert_eq!(fence, "``````");
        assert!(block.lines().skip(1).take(5).all(|line| !line.starts_with(fence)));
    }

    #[test]
    fn table_cells_are_one_line_without_pipes() {
        assert_eq!(cell("\n  a | b\nsecond line"), "a \\| b");
    }
}
