//! `cargo xtask watch [N]`: rustlings' watch mode. It runs the graded tests of the first
//! exercise that does not pass yet (or of exercise N) and again each time a file under that
//! exercise's `src/` changes, shows which tests pass and the first failure's message (or the
//! compiler's errors), gives the next hint on `h`, and moves on to the next exercise when all
//! pass. `q` or Ctrl-C ends it, and every process of a test run that was still going.
//!
//! Changes are seen through file events (`notify`: inotify on Linux), with polling as the
//! fallback: with `--poll` (or `XTASK_WATCH_POLL=1`), when the watcher cannot start, and on
//! its own when a change shows up that no event announced (a network or shared folder). A
//! change is a change of the files' contents, so editors' temporary files and saves that
//! change nothing do not rerun the tests.
//!
//! `--once` runs the tests once and prints the same report, for scripts and tests: exit code
//! 0 when the exercise passes, 1 when it does not, 130 when interrupted.

use std::{
    collections::BTreeMap,
    io::{BufRead, IsTerminal, Read, Write},
    path::{Path, PathBuf},
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use crate::{
    progress::{self, TestRun},
    workspace::{self, Exercise, Result},
};

#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    /// Start with exercise N (default: the first one whose graded tests do not all pass yet).
    #[arg(value_name = "N")]
    exercise: Option<u32>,
    /// Run the tests once, print the report and exit: 0 when they all pass, 1 when not.
    #[arg(long)]
    once: bool,
    /// Look for changes by reading the files twice a second instead of waiting for file
    /// events (for folders that send none; `XTASK_WATCH_POLL=1` does the same).
    #[arg(long)]
    poll: bool,
}

/// How long after a file event the files are compared (an editor's save is several events).
const SETTLE: Duration = Duration::from_millis(150);
/// How often files are read when polling.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// How often files are read anyway while events are expected, to notice that none come.
const CHECK_EVERY: Duration = Duration::from_secs(2);

pub fn run(root: &Path, args: &WatchArgs) -> Result<ExitCode> {
    let exercises = workspace::exercises(root)?;
    if exercises.is_empty() {
        return Err(format!(
            "no exercises under {}: run this in the course repository",
            root.join("exercises").display()
        )
        .into());
    }
    let start = match args.exercise {
        Some(number) => {
            progress::find(&exercises, number)?;
            exercises.iter().position(|e| e.number == number).unwrap_or(0)
        }
        None => 0,
    };
    // Ctrl-C (and a closed terminal, or `kill`) only sets this flag: the run that is going is
    // then stopped with its whole process group, and the terminal is put back, before exit.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in
        [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP]
    {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| format!("cannot set up the Ctrl-C handler: {e}"))?;
    }
    let mut out = std::io::stdout();
    if args.once {
        return Ok(once(root, &exercises, start, args.exercise.is_some(), &stop, &mut out));
    }
    let poll = args.poll
        || std::env::var_os("XTASK_WATCH_POLL").is_some_and(|v| v != "0" && !v.is_empty());
    Watch::new(root, exercises, start, poll, stop).run(&mut out)
}

/// `--once`: the first exercise that does not pass (from `start`), or only exercise `start`
/// when it was named.
fn once(
    root: &Path,
    exercises: &[Exercise],
    start: usize,
    named: bool,
    stop: &AtomicBool,
    out: &mut impl Write,
) -> ExitCode {
    let last = if named { start + 1 } else { exercises.len() };
    for (index, exercise) in exercises.iter().enumerate().take(last).skip(start) {
        let _ = writeln!(out, "Running the graded tests of {}...", exercise.name);
        let run = progress::run_graded(root, exercise, Some(stop));
        if run.cancelled {
            let _ = writeln!(out, "Stopped (Ctrl-C) before the tests ended.");
            return ExitCode::from(130);
        }
        if run.all_pass() {
            let _ = write!(out, "{}", passed_text(exercise, &run));
            if named {
                let _ = writeln!(out, "{}", next_text(exercises.get(index + 1)));
            }
            continue;
        }
        let _ = write!(out, "{}", report(exercise, &run));
        let hints = progress::readme_hints(exercise);
        if let Some(hint) = hints.first() {
            let _ = write!(out, "\n{}", progress::format_hint(0, hints.len(), hint));
            if hints.len() > 1 {
                let _ = writeln!(
                    out,
                    "More hints: `cargo xtask progress --hints {}`.",
                    exercise.number
                );
            }
        }
        let _ = writeln!(
            out,
            "\nNext: fix {}, then run this again; `cargo xtask watch` reruns the tests each \
             time you save.",
            lib_rs(exercise)
        );
        return ExitCode::from(1);
    }
    if !named {
        let _ = writeln!(out, "Every exercise passes its graded tests. Well done!");
    }
    ExitCode::SUCCESS
}

fn lib_rs(exercise: &Exercise) -> String {
    format!("exercises/{}/src/lib.rs", exercise.name)
}

fn passed_text(exercise: &Exercise, run: &TestRun) -> String {
    format!(
        "{} passes: all {} graded tests pass.\n",
        exercise.name,
        run.total().unwrap_or_default()
    )
}

fn next_text(next: Option<&Exercise>) -> String {
    match next {
        Some(next) => format!(
            "Next: {} (its README: exercises/{0}/README.md; `cargo xtask watch {}`).",
            next.name, next.number
        ),
        None => "That was the last exercise.".to_string(),
    }
}

/// What a student sees after a run that did not pass: which tests pass, and the first
/// failure's message; or the compiler's first error; or what else went wrong.
pub fn report(exercise: &Exercise, run: &TestRun) -> String {
    let mut text = format!("\n== {}: {} ==\n", exercise.name, progress::title(exercise));
    if let Some(first) = run.compile_errors.first() {
        let n = run.compile_errors.len();
        text.push_str(&format!(
            "{} does not compile ({n} error{}). The first one:\n\n",
            exercise.name,
            if n == 1 { "" } else { "s" }
        ));
        for line in first.rendered.lines().take(30) {
            text.push_str(&format!("  {line}\n"));
        }
        if n > 1 {
            text.push_str("\nThe others:\n");
            for error in run.compile_errors.iter().skip(1).take(5) {
                text.push_str(&format!("  {}\n", error.short));
            }
            if n > 6 {
                text.push_str(&format!("  ... and {} more\n", n - 6));
            }
        }
        text.push_str(&format!(
            "\nFix it in {} (the line is in the first error); the tests run once it compiles.\n",
            lib_rs(exercise)
        ));
        return text;
    }
    if let Some(total) = run.total() {
        text.push_str(&format!("{} of {total} graded tests pass:\n", run.passed()));
        for test in &run.tests {
            text.push_str(&format!(
                "  {}  {}\n",
                if test.passed { "ok  " } else { "FAIL" },
                test.name
            ));
        }
        if let Some(failure) = run.first_failure() {
            text.push_str(&format!("\nFirst failure: {}\n", failure.name));
            match failure.message.as_deref() {
                Some(message) if !message.is_empty() => {
                    for line in message.lines() {
                        text.push_str(&format!("  {line}\n"));
                    }
                }
                _ => text.push_str(&format!(
                    "  (its message was not in the output: `cargo test -p {} --test graded -- \
                     --exact {}` shows all of it)\n",
                    exercise.name, failure.name
                )),
            }
        }
    }
    if let Some(problem) = &run.problem {
        text.push_str(&format!("\n{problem}\n"));
    }
    text
}

/// What the interactive loop waits for.
enum Event {
    Key(Key),
    /// Standard input ended (not a terminal: a pipe or a file).
    InputClosed,
    /// A file event under the watched `src/` (a save, usually).
    Saved,
    /// A test run ended (its number, to drop runs that were replaced).
    Finished(u64, TestRun),
}

enum Key {
    Hint,
    Quit,
    Rerun,
    Other(String),
}

/// A test run going on in a thread.
struct Running {
    number: u64,
    cancel: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

struct Watch {
    root: PathBuf,
    exercises: Vec<Exercise>,
    current: usize,
    /// Exercises seen passing in this session.
    passed: Vec<bool>,
    next_hint: usize,
    poll: bool,
    stop: Arc<AtomicBool>,
    events: mpsc::Sender<Event>,
    inbox: mpsc::Receiver<Event>,
    watcher: Option<notify::RecommendedWatcher>,
    running: Option<Running>,
    runs: u64,
    /// The contents of `src/` when the last run started.
    sources: BTreeMap<PathBuf, Vec<u8>>,
    /// When to compare the files again, and whether an event asked for it.
    check_at: Option<Instant>,
    event_seen: bool,
    /// A change found without an event, once (twice in a row switches to polling).
    unannounced: bool,
    last_check: Instant,
    terminal: bool,
}

impl Watch {
    fn new(
        root: &Path,
        exercises: Vec<Exercise>,
        start: usize,
        poll: bool,
        stop: Arc<AtomicBool>,
    ) -> Watch {
        let (events, inbox) = mpsc::channel();
        let n = exercises.len();
        Watch {
            root: root.to_path_buf(),
            exercises,
            current: start,
            passed: vec![false; n],
            next_hint: 0,
            poll,
            stop,
            events,
            inbox,
            watcher: None,
            running: None,
            runs: 0,
            sources: BTreeMap::new(),
            check_at: None,
            event_seen: false,
            unannounced: false,
            last_check: Instant::now(),
            terminal: std::io::stdin().is_terminal(),
        }
    }

    fn run(mut self, out: &mut impl Write) -> Result<ExitCode> {
        // Keys without Enter; Ctrl-C still sends SIGINT. Put back on every way out of here.
        let _mode = if self.terminal { KeyMode::enter() } else { None };
        read_input(self.events.clone(), self.terminal);
        self.enter(self.current, out);
        let code = loop {
            if self.stop.load(Ordering::SeqCst) {
                let _ = writeln!(out, "\nStopped (Ctrl-C). Run `cargo xtask watch` to go on.");
                break ExitCode::from(130);
            }
            let event = match self.inbox.recv_timeout(Duration::from_millis(100)) {
                Ok(event) => Some(event),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break ExitCode::SUCCESS,
            };
            match event {
                Some(Event::Key(Key::Quit)) => {
                    let _ = writeln!(out, "Bye. Run `cargo xtask watch` to go on where you are.");
                    break ExitCode::SUCCESS;
                }
                Some(Event::InputClosed) => {
                    let _ = writeln!(
                        out,
                        "Standard input ended: watch stops. Run `cargo xtask watch` in a terminal \
                         to go on."
                    );
                    break ExitCode::SUCCESS;
                }
                Some(Event::Key(Key::Hint)) => self.hint(out),
                Some(Event::Key(Key::Rerun)) => self.start_run(out),
                Some(Event::Key(Key::Other(text))) => {
                    let _ = writeln!(out, "`{text}` is not a key here: {}", self.keys_text());
                }
                Some(Event::Saved) => {
                    self.event_seen = true;
                    self.check_at.get_or_insert(Instant::now() + SETTLE);
                }
                Some(Event::Finished(number, run))
                    if self.running.as_ref().is_some_and(|r| r.number == number) =>
                {
                    if let Some(running) = self.running.take() {
                        let _ = running.thread.join();
                    }
                    if let Some(code) = self.finished(run, out) {
                        break code;
                    }
                }
                Some(Event::Finished(..)) => {}
                None => {}
            }
            self.check_files(out);
        };
        self.cancel_run();
        Ok(code)
    }

    /// Makes exercise `index` the current one: watches its `src/` and runs its tests.
    fn enter(&mut self, index: usize, out: &mut impl Write) {
        self.current = index;
        self.next_hint = 0;
        self.watcher = None;
        let src = self.exercises[index].dir.join("src");
        if !self.poll {
            match self.start_watcher(&src) {
                Ok(watcher) => self.watcher = Some(watcher),
                Err(error) => {
                    let _ = writeln!(
                        out,
                        "File events cannot be watched here ({error}): reading the files twice \
                         a second instead."
                    );
                    self.poll = true;
                }
            }
        }
        self.start_run(out);
    }

    fn start_watcher(&self, src: &Path) -> notify::Result<notify::RecommendedWatcher> {
        use notify::Watcher;

        let events = self.events.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                // Reading a file (the compiler does) is no change.
                if event.is_ok_and(|event| !event.kind.is_access()) {
                    let _ = events.send(Event::Saved);
                }
            })?;
        watcher.watch(src, notify::RecursiveMode::Recursive)?;
        Ok(watcher)
    }

    /// Stops the run going on, if any (its whole process group), and waits for its thread.
    fn cancel_run(&mut self) {
        if let Some(running) = self.running.take() {
            running.cancel.store(true, Ordering::SeqCst);
            let _ = running.thread.join();
        }
    }

    fn start_run(&mut self, out: &mut impl Write) {
        self.cancel_run();
        let exercise = self.exercises[self.current].clone();
        self.sources = read_sources(&exercise.dir.join("src"));
        self.event_seen = false;
        self.unannounced = false;
        self.runs += 1;
        let number = self.runs;
        let cancel = Arc::new(AtomicBool::new(false));
        if self.terminal && std::io::stdout().is_terminal() {
            // A fresh screen for each run, as rustlings does.
            let _ = write!(out, "\x1b[2J\x1b[H");
        }
        let first = if number == 1 { " (the first build can take a few minutes)" } else { "" };
        let _ = writeln!(out, "Running the graded tests of {}{first}...", exercise.name);
        let _ = out.flush();
        let (root, events, flag) = (self.root.clone(), self.events.clone(), Arc::clone(&cancel));
        let thread = std::thread::spawn(move || {
            let run = progress::run_graded(&root, &exercise, Some(&flag));
            let _ = events.send(Event::Finished(number, run));
        });
        self.running = Some(Running { number, cancel, thread });
    }

    /// After a run: the report, or the next exercise. Some(code) when the session is over.
    fn finished(&mut self, run: TestRun, out: &mut impl Write) -> Option<ExitCode> {
        let exercise = &self.exercises[self.current];
        if !run.all_pass() {
            let _ = write!(out, "{}", report(exercise, &run));
            let _ = writeln!(
                out,
                "\nEdit {} and save: the tests run again. {}",
                lib_rs(exercise),
                self.keys_text()
            );
            let _ = out.flush();
            return None;
        }
        let _ = write!(out, "{}", passed_text(exercise, &run));
        self.passed[self.current] = true;
        let n = self.exercises.len();
        let next = (1..n).map(|step| (self.current + step) % n).find(|&i| !self.passed[i]);
        match next {
            None => {
                let _ = writeln!(
                    out,
                    "Every exercise passes its graded tests. Well done! (`cargo xtask grade` \
                     grades them as CI will.)"
                );
                Some(ExitCode::SUCCESS)
            }
            Some(index) => {
                let _ = writeln!(out, "{}", next_text(Some(&self.exercises[index])));
                self.enter(index, out);
                None
            }
        }
    }

    fn keys_text(&self) -> String {
        let count = progress::readme_hints(&self.exercises[self.current]).len();
        let hint = if self.next_hint < count {
            format!("hint {} of {count}", self.next_hint + 1)
        } else {
            "no more hints".to_string()
        };
        if self.terminal {
            format!("Keys: h ({hint}), Enter (run again), q (quit).")
        } else {
            format!("Lines: h ({hint}), an empty line (run again), q (quit).")
        }
    }

    fn hint(&mut self, out: &mut impl Write) {
        let exercise = &self.exercises[self.current];
        let hints = progress::readme_hints(exercise);
        match hints.get(self.next_hint) {
            Some(hint) => {
                let _ =
                    write!(out, "\n{}", progress::format_hint(self.next_hint, hints.len(), hint));
                self.next_hint += 1;
            }
            None if hints.is_empty() => {
                let _ = writeln!(
                    out,
                    "exercises/{}/README.md has no hints: its questions and the `todo!` messages \
                     in {} say what to write.",
                    exercise.name,
                    lib_rs(exercise)
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "That was the last hint of {} ({} in all; `cargo xtask progress --hints {}` \
                     shows them again).",
                    exercise.name,
                    hints.len(),
                    exercise.number
                );
            }
        }
        let _ = out.flush();
    }

    /// Compares the files of `src/` with the last run's when an event asked for it, when
    /// polling, and every few seconds anyway; reruns the tests when they changed.
    fn check_files(&mut self, out: &mut impl Write) {
        let now = Instant::now();
        let due_to_event = self.check_at.is_some_and(|at| now >= at);
        let interval = if self.poll { POLL_EVERY } else { CHECK_EVERY };
        let due_to_time = now.duration_since(self.last_check) >= interval;
        if !due_to_event && !due_to_time {
            return;
        }
        self.check_at = None;
        self.last_check = now;
        let src = self.exercises[self.current].dir.join("src");
        let sources = read_sources(&src);
        if sources == self.sources {
            // Events that changed nothing (a save of the same text) announce nothing later.
            self.event_seen = false;
            self.unannounced = false;
            return;
        }
        if !self.poll && !self.event_seen && !due_to_event {
            // Changed, and no event said so. Once may be an event still on its way.
            if !self.unannounced {
                self.unannounced = true;
                return;
            }
            let _ = writeln!(
                out,
                "\nA change under {} came without a file event (a network or shared folder?): \
                 reading the files twice a second from now on.",
                src.display()
            );
            self.poll = true;
            self.watcher = None;
        }
        let changed: Vec<String> = changed_files(&self.sources, &sources)
            .iter()
            .map(|path| path.strip_prefix(&self.root).unwrap_or(path).display().to_string())
            .collect();
        let _ = writeln!(out, "\nChanged: {}.", changed.join(", "));
        self.start_run(out);
    }
}

/// Every file under `dir` (recursively) and its contents.
fn read_sources(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => pending.push(path),
                Ok(_) => {
                    if let Ok(bytes) = std::fs::read(&path) {
                        files.insert(path, bytes);
                    }
                }
                Err(_) => {}
            }
        }
    }
    files
}

fn changed_files(
    before: &BTreeMap<PathBuf, Vec<u8>>,
    after: &BTreeMap<PathBuf, Vec<u8>>,
) -> Vec<PathBuf> {
    let mut changed: Vec<PathBuf> = after
        .iter()
        .filter(|(path, bytes)| before.get(*path) != Some(bytes))
        .map(|(path, _)| path.clone())
        .collect();
    changed.extend(before.keys().filter(|path| !after.contains_key(*path)).cloned());
    changed
}

/// Reads keys (a terminal in key mode: one byte each) or lines (anything else) in a thread.
fn read_input(events: mpsc::Sender<Event>, terminal: bool) {
    std::thread::spawn(move || {
        if terminal {
            let mut stdin = std::io::stdin().lock();
            let mut byte = [0u8; 1];
            loop {
                let key = match stdin.read(&mut byte) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => match byte[0] {
                        b'h' | b'H' => Key::Hint,
                        b'q' | b'Q' | 4 => Key::Quit,
                        b'\n' | b'\r' => Key::Rerun,
                        other if other.is_ascii_graphic() => {
                            Key::Other((other as char).to_string())
                        }
                        _ => continue,
                    },
                };
                if events.send(Event::Key(key)).is_err() {
                    return;
                }
            }
        } else {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                let key = match line.trim() {
                    "h" | "H" => Key::Hint,
                    "q" | "Q" => Key::Quit,
                    "" => Key::Rerun,
                    other => Key::Other(other.to_string()),
                };
                if events.send(Event::Key(key)).is_err() {
                    return;
                }
            }
        }
        let _ = events.send(Event::InputClosed);
    });
}

/// The terminal without line editing and echo (keys arrive one by one), put back on drop.
/// Ctrl-C still sends SIGINT.
struct KeyMode {
    saved: rustix::termios::Termios,
}

impl KeyMode {
    fn enter() -> Option<KeyMode> {
        use rustix::termios::{
            LocalModes, OptionalActions, SpecialCodeIndex, tcgetattr, tcsetattr,
        };

        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok()?;
        let mut keys = saved.clone();
        keys.local_modes.remove(LocalModes::ICANON | LocalModes::ECHO);
        keys.special_codes[SpecialCodeIndex::VMIN] = 1;
        keys.special_codes[SpecialCodeIndex::VTIME] = 0;
        tcsetattr(&stdin, OptionalActions::Now, &keys).ok()?;
        Some(KeyMode { saved })
    }
}

impl Drop for KeyMode {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}
