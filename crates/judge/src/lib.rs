//! # judge: graded tests whose verdict the student's code cannot write
//!
//! A graded test calls the student's functions and checks what they return. Code linked into a
//! process can write anything that process can, so a verdict decided in the process that runs
//! the student's code can always be faked (a constructor in `.init_array` that prints libtest's
//! `test result: ok` and exits 0 is enough). With this crate the same test file is built twice:
//!
//! * the **subject**: the test against the student's crate. Every call to the student's code
//!   is wrapped in [`observe!`], which runs it, prints the value as one line of plain data
//!   (`observed: ...`) and returns it, so `cargo test` works as usual;
//! * the **judge**: the same test built against the course template's own crate (the student's
//!   code is not linked in) and run by `cargo xtask grade` with `JUDGE_REPLAY=1` and the
//!   subject's `observed:` lines on stdin. There [`observe!`] does not run the expression: it
//!   returns the next observed value, and the test's own assertions, with expectations
//!   computed by the template's code, decide.
//!
//! Only plain data crosses: numbers, strings, durations, and vectors, options, results and
//! tuples of them ([`Plain`]), never the student's types or their `PartialEq`.
//!
//! ```
//! fn add(a: i64, b: i64) -> i64 { a + b } // the student's function
//! let sum = judge::observe!(add(1, 2));
//! assert_eq!(sum, 3);
//! ```

use std::{
    io::BufRead,
    sync::{Mutex, OnceLock},
    time::Duration,
};

/// The start of every observation line.
pub const PREFIX: &str = "observed: ";
/// The environment variable that makes [`observe!`] replay instead of run (judge builds only).
pub const REPLAY: &str = "JUDGE_REPLAY";

/// Runs `$expr` (the student's code) and observes its value; in a judge, replays it.
#[macro_export]
macro_rules! observe {
    ($expr:expr) => {
        $crate::observe(stringify!($expr), || $expr)
    };
}

/// What [`observe!`] expands to.
pub fn observe<T: Plain>(what: &str, run: impl FnOnce() -> T) -> T {
    if let Some(replayed) = replaying() {
        let line = replayed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .next()
            .unwrap_or_else(|| panic!("the test process ended before it observed `{what}`"));
        return decode(&line).unwrap_or_else(|| {
            panic!(
                "the test process observed `{what}` as `{line}`, not a value of the expected type"
            )
        });
    }
    let value = run();
    let mut line = String::new();
    value.encode(&mut line);
    println!("{PREFIX}{line}    <- {what}");
    value
}

fn replaying() -> Option<&'static Mutex<std::vec::IntoIter<String>>> {
    static LINES: OnceLock<Option<Mutex<std::vec::IntoIter<String>>>> = OnceLock::new();
    LINES
        .get_or_init(|| {
            std::env::var_os(REPLAY)?;
            let lines: Vec<String> =
                std::io::stdin().lock().lines().map_while(Result::ok).collect();
            Some(Mutex::new(lines.into_iter()))
        })
        .as_ref()
}

/// The observation lines in `output` (each from its prefix on), in order.
pub fn observations(output: &str) -> Vec<&str> {
    output.lines().filter_map(|line| line.rfind(PREFIX).map(|at| &line[at..])).collect()
}

/// Decodes one observation line (with or without its prefix); `None` if it is not a `T`.
pub fn decode<T: Plain>(line: &str) -> Option<T> {
    let text = line.strip_prefix(PREFIX).unwrap_or(line);
    let mut reader = Reader { rest: text };
    T::decode(&mut reader)
}

/// A cursor over an observation's text.
#[derive(Debug)]
pub struct Reader<'a> {
    rest: &'a str,
}

impl Reader<'_> {
    /// Consumes `token` if the text starts with it.
    pub fn eat(&mut self, token: &str) -> bool {
        match self.rest.strip_prefix(token) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn expect(&mut self, token: &str) -> Option<()> {
        self.eat(token).then_some(())
    }

    fn number(&mut self) -> Option<&str> {
        let end = self
            .rest
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
            .map_or(self.rest.len(), |(i, _)| i);
        let (number, rest) = self.rest.split_at(end);
        self.rest = rest;
        (!number.is_empty()).then_some(number)
    }

    fn list<T: Plain>(&mut self, open: &str, close: &str) -> Option<Vec<T>> {
        self.expect(open)?;
        let mut items = Vec::new();
        if self.eat(close) {
            return Some(items);
        }
        loop {
            items.push(T::decode(self)?);
            if self.eat(close) {
                return Some(items);
            }
            self.expect(",")?;
        }
    }
}

/// Plain data that can cross from the student's process to the judge, exactly.
pub trait Plain: Sized {
    fn encode(&self, out: &mut String);
    fn decode(input: &mut Reader<'_>) -> Option<Self>;
}

macro_rules! integers {
    ($($t:ty),*) => {$(
        impl Plain for $t {
            fn encode(&self, out: &mut String) {
                out.push_str(&self.to_string());
            }
            fn decode(input: &mut Reader<'_>) -> Option<Self> {
                input.number()?.parse().ok()
            }
        }
    )*};
}
integers!(u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize);

impl Plain for bool {
    fn encode(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
    fn decode(input: &mut Reader<'_>) -> Option<Self> {
        if input.eat("true") { Some(true) } else { input.eat("false").then_some(false) }
    }
}

/// The exact bits, so that the judge compares what the student computed, not a rounding.
impl Plain for f64 {
    fn encode(&self, out: &mut String) {
        out.push_str(&format!("f{:016x}", self.to_bits()));
    }
    fn decode(input: &mut Reader<'_>) -> Option<Self> {
        input.expect("f")?;
        let hex = input.rest.get(..16)?;
        input.rest = &input.rest[16..];
        u64::from_str_radix(hex, 16).ok().map(f64::from_bits)
    }
}

impl Plain for Duration {
    fn encode(&self, out: &mut String) {
        out.push_str(&format!("d{}.{:09}", self.as_secs(), self.subsec_nanos()));
    }
    fn decode(input: &mut Reader<'_>) -> Option<Self> {
        input.expect("d")?;
        let secs = input.number()?.parse().ok()?;
        input.expect(".")?;
        let nanos: u32 = input.number()?.parse().ok()?;
        (nanos < 1_000_000_000).then(|| Duration::new(secs, nanos))
    }
}

impl Plain for String {
    fn encode(&self, out: &mut String) {
        out.push('"');
        for c in self.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => out.push_str(&format!("\\u{:x};", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    fn decode(input: &mut Reader<'_>) -> Option<Self> {
        input.expect("\"")?;
        let mut text = String::new();
        let mut chars = input.rest.char_indices();
        while let Some((at, c)) = chars.next() {
            match c {
                '"' => {
                    input.rest = &input.rest[at + 1..];
                    return Some(text);
                }
                '\\' => match chars.next()?.1 {
                    'u' => {
                        let mut code = String::new();
                        for (_, c) in chars.by_ref() {
                            if c == ';' {
                                break;
                            }
                            code.push(c);
                        }
                        text.push(char::from_u32(u32::from_str_radix(&code, 16).ok()?)?);
                    }
                    escaped => text.push(escaped),
                },
                c => text.push(c),
            }
        }
        None
    }
}

impl Plain for () {
    fn encode(&self, out: &mut String) {
        out.push_str("()");
    }
    fn decode(input: &mut Reader<'_>) -> Option<Self> {
        input.expect("()")
    }
}

impl<T: Plain> Plain for Vec<T> {
    fn encode(&self, out: &mut String) {
        out.push('[');
        for (i, item) in self.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            item.encode(out);
        }
        out.push(']');
    }
    fn decode(input: &mut Reader<'_>) -> Option<Self> {
        input.list("[", "]")
    }
}

impl<T: Plain> Plain for Option<T> {
    fn encode(&self, out: &mut String) {
        match self {
            None => out.push_str("none"),
            Some(value) => {
                out.push_str("some(");
                value.encode(out);
                out.push(')');
            }
        }
    }
    fn decode(input: &mut Reader<'_>) -> Option<Self> {
        if input.eat("none") {
            return Some(None);
        }
        input.expect("some(")?;
        let value = T::decode(input)?;
        input.expect(")")?;
        Some(Some(value))
    }
}

impl<T: Plain, E: Plain> Plain for Result<T, E> {
    fn encode(&self, out: &mut String) {
        let (tag, inner): (&str, &dyn Fn(&mut String)) = match self {
            Ok(value) => ("ok(", &|out| value.encode(out)),
            Err(error) => ("err(", &|out| error.encode(out)),
        };
        out.push_str(tag);
        inner(out);
        out.push(')');
    }
    fn decode(input: &mut Reader<'_>) -> Option<Self> {
        let result = if input.eat("ok(") {
            Ok(T::decode(input)?)
        } else {
            input.expect("err(")?;
            Err(E::decode(input)?)
        };
        input.expect(")")?;
        Some(result)
    }
}

macro_rules! tuples {
    ($(($($name:ident $index:tt),+))*) => {$(
        impl<$($name: Plain),+> Plain for ($($name,)+) {
            fn encode(&self, out: &mut String) {
                out.push('(');
                $(
                    if $index > 0 {
                        out.push(',');
                    }
                    self.$index.encode(out);
                )+
                out.push(')');
            }
            fn decode(input: &mut Reader<'_>) -> Option<Self> {
                input.expect("(")?;
                let value = ($(
                    {
                        if $index > 0 {
                            input.expect(",")?;
                        }
                        $name::decode(input)?
                    },
                )+);
                input.expect(")")?;
                Some(value)
            }
        }
    )*};
}
tuples! {
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Plain + PartialEq + std::fmt::Debug>(value: T) {
        let mut line = String::new();
        value.encode(&mut line);
        assert_eq!(decode::<T>(&format!("{PREFIX}{line}    <- f(x)")), Some(value), "{line}");
    }

    #[test]
    fn plain_values_cross_exactly() {
        round_trip(-42i64);
        round_trip(u64::MAX);
        round_trip(0.1f64 + 0.2);
        round_trip(Duration::new(3, 7));
        round_trip("a \"quoted\"\nline, with \\ and ) and ,".to_string());
        round_trip(vec![Some((1u32, true)), None]);
        round_trip::<Result<Vec<u8>, String>>(Err("no".into()));
        round_trip((1u8, -2i32, vec![vec![0.5f64]], (), Ok::<u8, u8>(3)));
        assert!(f64::decode(&mut Reader { rest: "fnot-hex" }).is_none());
        assert_eq!(decode::<u64>("-3"), None);
    }

    #[test]
    fn observations_are_found_after_other_output_on_the_same_line() {
        let output = "hello\nno newlineobserved: 3    <- add(1, 2)\nobserved: [1,2]    <- v\n";
        assert_eq!(
            observations(output),
            ["observed: 3    <- add(1, 2)", "observed: [1,2]    <- v"]
        );
    }
}
