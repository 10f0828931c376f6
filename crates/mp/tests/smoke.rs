mp::test_support!();

fn square(x: u64) -> u64 {
    x * x
}
fn boom(x: u32) -> u32 {
    if x > 0 {
        panic!("bad input {x}")
    }
    x
}

#[test]
fn spawn_and_join() {
    let mut p = mp::Process::spawn(square, 12).unwrap();
    assert_eq!(p.join().unwrap(), 144);
    assert_eq!(p.exit_reason(), Some(mp::ExitReason::Code(0)));
    let mut q = mp::Process::spawn(boom, 3).unwrap();
    let e = q.join().unwrap_err();
    println!("{e}");
}
