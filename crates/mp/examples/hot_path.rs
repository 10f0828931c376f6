//! The hot path of a pipe, for instruction counts: 100,000 typed 1-byte messages sent and
//! received in one process, on local pipe ends.
//!
//! `cargo build --release -p mp --example hot_path`, then
//! `valgrind --tool=callgrind target/release/examples/hot_path` (compare `Ir` before and after
//! a change to the endpoints).

fn main() -> mp::Result<()> {
    mp::init();
    let (a, b) = mp::pipe::<u8>()?;
    let mut total = 0u64;
    for i in 0..100_000u32 {
        a.send(&(i as u8))?;
        total += u64::from(b.recv()?);
    }
    println!("{total}");
    Ok(())
}
