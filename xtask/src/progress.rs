//! `cargo xtask progress`: for a student, which exercises pass right now, and a hint for the
//! first one that does not. Nothing is stored: progress is whatever the tests say today.

use std::{path::Path, process::ExitCode, time::Duration};

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
        let exercise = exercises
            .iter()
            .find(|e| e.number == number)
            .ok_or_else(|| format!("there is no exercise {number}"))?;
        print_hints(exercise, usize::MAX);
        return Ok(ExitCode::SUCCESS);
    }
    println!("| exercise | what | graded tests passing |");
    println!("|---|---|---|");
    let mut first_unfinished = None;
    for exercise in &exercises {
        let (passed, total) = graded(root, exercise);
        let status = match total {
            Some(total) => format!("{passed}/{total}"),
            None => "does not build yet".to_string(),
        };
        println!("| {} | {} | {status} |", exercise.name, title(exercise));
        if first_unfinished.is_none() && total != Some(passed) {
            first_unfinished = Some(exercise);
        }
    }
    match first_unfinished {
        None => println!("\nEvery exercise passes its tests. Well done!"),
        Some(exercise) => {
            println!(
                "\nNext: {} (`cargo run -p {0}`, `cargo test -p {0}`). A first hint:",
                exercise.name
            );
            print_hints(exercise, 1);
            println!("More hints: `cargo xtask progress --hints {}`.", exercise.number);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Passed tests, and the total (None when the tests did not build or run).
fn graded(root: &Path, exercise: &Exercise) -> (usize, Option<usize>) {
    let mut command = workspace::cargo(root);
    command.args(["test", "-p", &exercise.name, "--test", "graded"]);
    let limits = Limits { wall_clock: Duration::from_secs(600), output_cap: 256 * 1024 };
    let Ok(outcome) = workspace::run_limited(command, limits) else { return (0, None) };
    let mut passed = 0;
    let mut total = None;
    for line in outcome.stdout.lines() {
        if let Some(rest) = line.strip_prefix("test ")
            && let Some((_, result)) = rest.rsplit_once(" ... ")
        {
            *total.get_or_insert(0) += 1;
            if result.trim() == "ok" {
                passed += 1;
            }
        }
    }
    (passed, total)
}

/// The first heading of the exercise's README, without the `#`.
fn title(exercise: &Exercise) -> String {
    let readme = std::fs::read_to_string(exercise.dir.join("README.md")).unwrap_or_default();
    readme
        .lines()
        .find_map(|line| line.strip_prefix("# "))
        .map(|title| title.trim().to_string())
        .unwrap_or_else(|| exercise.name.clone())
}

fn print_hints(exercise: &Exercise, at_most: usize) {
    let readme = std::fs::read_to_string(exercise.dir.join("README.md")).unwrap_or_default();
    let hints = hints(&readme);
    if hints.is_empty() {
        println!("  (no hints in {}/README.md)", exercise.name);
    }
    for (index, hint) in hints.iter().take(at_most).enumerate() {
        println!("  {}. {hint}", index + 1);
    }
}

/// The list items of the README's section whose heading contains "Hint".
fn hints(readme: &str) -> Vec<String> {
    let mut in_section = false;
    let mut hints: Vec<String> = Vec::new();
    for line in readme.lines() {
        if line.starts_with('#') {
            in_section = line.to_lowercase().contains("hint");
            continue;
        }
        if !in_section {
            continue;
        }
        let trimmed = line.trim_start();
        let item =
            trimmed.strip_prefix("- ").or_else(|| trimmed.strip_prefix("* ")).or_else(|| {
                trimmed
                    .split_once(". ")
                    .filter(|(n, _)| n.parse::<u32>().is_ok())
                    .map(|(_, rest)| rest)
            });
        match (item, hints.last_mut()) {
            (Some(item), _) if line.len() - trimmed.len() < 2 => {
                hints.push(item.trim().to_string())
            }
            (_, Some(last)) if !trimmed.is_empty() => {
                last.push(' ');
                last.push_str(trimmed);
            }
            _ => {}
        }
    }
    hints
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_are_the_items_of_the_hints_section() {
        let readme = "# Exercise\n\n## Task\n- not a hint\n\n## Hints\n\n1. Start with\n   the serial version.\n2. Then the pool.\n\n## Questions\n- no\n";
        assert_eq!(hints(readme), ["Start with the serial version.", "Then the pool."]);
        assert!(hints("# Nothing\n").is_empty());
    }
}
