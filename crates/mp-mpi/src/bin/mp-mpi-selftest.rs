//! Scenarios for `tests/mpirun.rs`, run under `mpirun`: `mp-mpi-selftest SCENARIO`.
//!
//! * `messages`: typed and raw messages through `Session::world()` (an `mp::Comm`), both
//!   ranks of a pair sending 1 MiB first (`sendrecv`), type mismatches, bad ranks, 2 GiB,
//!   timeouts, a rank sending to itself, another thread, MPI's collectives. Each rank prints
//!   `rank R: all checks passed` on stderr (stdout of ranks other than 0 is theirs too here).
//! * `panic`: rank 1 panics while the others wait for it in a receive.
//! * `unreceived`: rank 0 sends a typed message that rank 1 never receives.
//! * `hang-up`: rank 1 runs an echo loop that stops on `is_disconnected()` (exercise 5's
//!   `echo`) over `Connection::from_peer`; rank 0 pings it, then `Session::hang_up(1)`; the
//!   loop returns its count, which rank 1 sends back; the two ranks then talk again. Two ranks;
//!   each prints `rank R: hang-up checks passed` on stderr.

use std::{process::ExitCode, time::Duration};

use mp::{Communicator, Error};
use mp_mpi::{Session, native};

fn check(condition: bool, what: &str) -> Result<(), String> {
    if condition { Ok(()) } else { Err(what.to_string()) }
}

fn messages(session: &Session) -> Result<(), String> {
    let world = session.world().map_err(|e| e.to_string())?;
    let (rank, size) = (world.rank(), world.size());
    check(size >= 2 && size % 2 == 0, "needs an even number of ranks")?;
    check(session.size() == size && session.rank() == rank, "session and world agree")?;

    // Everyone greets everyone (typed), then receives from everyone.
    for dest in (0..size).filter(|&dest| dest != rank) {
        world.send(dest, &format!("hello {dest} from {rank}")).map_err(|e| e.to_string())?;
    }
    for source in (0..size).filter(|&source| source != rank) {
        let got: String = world.recv(source).map_err(|e| e.to_string())?;
        check(got == format!("hello {rank} from {source}"), "greeting")?;
    }

    // Pairs exchange 1 MiB typed vectors, both sending first: MPI_Send would deadlock here.
    let partner = rank ^ 1;
    let mine: Vec<u64> = (0..131_072).map(|i| i * size as u64 + rank as u64).collect();
    for _ in 0..3 {
        let theirs: Vec<u64> =
            world.sendrecv(partner, &mine, partner).map_err(|e| e.to_string())?;
        check(theirs.len() == mine.len(), "1 MiB length")?;
        check(theirs[5] == 5 * size as u64 + partner as u64, "1 MiB contents")?;
    }

    // Raw bytes and slices, into a reused buffer.
    let mut buffer = Vec::new();
    if rank % 2 == 0 {
        world.send_bytes(partner, &[7u8; 100]).map_err(|e| e.to_string())?;
        world.send_slice(partner, &[1.5f64, 2.5]).map_err(|e| e.to_string())?;
    } else {
        world.recv_bytes_into(partner, &mut buffer).map_err(|e| e.to_string())?;
        check(buffer == [7u8; 100], "raw bytes")?;
        let floats: Vec<f64> = world.recv_vec(partner).map_err(|e| e.to_string())?;
        check(floats == [1.5, 2.5], "slice")?;
    }

    // A message of another type is TypeMismatch (and the next one still arrives).
    if rank % 2 == 0 {
        world.send(partner, &vec![1.0f64, 2.0]).map_err(|e| e.to_string())?;
        world.send(partner, &42u64).map_err(|e| e.to_string())?;
        world.send_bytes(partner, b"raw").map_err(|e| e.to_string())?;
    } else {
        let error = world.recv::<u64>(partner).unwrap_err();
        check(matches!(error, Error::TypeMismatch { .. }), &format!("mismatch: {error}"))?;
        check(matches!(world.recv::<u64>(partner), Ok(42)), "after a mismatch")?;
        let error = world.recv::<u64>(partner).unwrap_err();
        check(!error.to_string().is_empty(), "raw bytes where a value was expected")?;
    }

    // Bad ranks are errors, not an abort of the job.
    check(matches!(world.send(size + 3, &1u8), Err(Error::InvalidArgument { .. })), "bad dest")?;
    check(world.recv::<u8>(size).is_err(), "bad source")?;
    check(world.send(rank, &1u8).is_err(), "the world has no link to itself")?;
    check(session.peer(size).is_err(), "bad peer")?;

    // 2 GiB is refused before MPI sees it (calloc'd: the pages are never touched).
    let huge = vec![0u8; 1 << 31];
    let error = world.send_bytes(partner, &huge).unwrap_err();
    check(
        matches!(error, Error::InvalidArgument { .. }) && error.to_string().contains("2147483648"),
        &format!("2 GiB: {error}"),
    )?;
    drop(huge);

    // A receive with a time limit gives up, and loses nothing.
    let error = world.recv_timeout::<u8>(partner, Duration::from_millis(20)).unwrap_err();
    check(error.is_timeout(), &format!("timeout: {error}"))?;

    // A rank may send to itself through its own peer (the ring with one rank).
    let me = mp::Connection::<String>::from_peer(session.peer(rank).map_err(|e| e.to_string())?);
    me.send(&"to myself".to_string()).map_err(|e| e.to_string())?;
    check(me.recv().map_err(|e| e.to_string())? == "to myself", "self-send")?;

    // Another thread gets an error naming the rule.
    let from_thread = std::thread::scope(|scope| {
        scope.spawn(|| mp_mpi::world().is_none() && session_free_send_fails()).join().unwrap()
    });
    check(from_thread, "another thread")?;

    // A second initialisation is an error.
    check(Session::init().is_err(), "second init")?;

    // MPI's collectives.
    let n = size as u64;
    let sum = native::allreduce_sum(rank as u64 + 1).map_err(|e| e.to_string())?;
    check(sum == n * (n + 1) / 2, "allreduce u64")?;
    let sum = native::allreduce_sum(0.5f64).map_err(|e| e.to_string())?;
    check(sum == 0.5 * size as f64, "allreduce f64")?;
    let reduced = native::reduce_sum(1u64).map_err(|e| e.to_string())?;
    check(reduced == (rank == 0).then_some(n), "reduce")?;
    let seed = native::broadcast(if rank == 0 { 99u64 } else { 0 }).map_err(|e| e.to_string())?;
    check(seed == 99, "broadcast")?;
    session.barrier().map_err(|e| e.to_string())?;
    let name = session.processor_name().map_err(|e| e.to_string())?;
    check(!name.is_empty(), "processor name")?;
    Ok(())
}

/// Exercise 5's `echo`: sends back every message until the other end is gone.
fn echo(conn: &mp::Connection<()>) -> Result<(u64, String), String> {
    let mut echoed = 0;
    loop {
        match conn.recv_bytes() {
            Ok(message) => {
                conn.send_bytes(&message).map_err(|e| e.to_string())?;
                echoed += 1;
            }
            Err(error) if error.is_disconnected() => return Ok((echoed, error.to_string())),
            Err(error) => return Err(format!("echo could not receive: {error}")),
        }
    }
}

fn hang_up(session: &Session) -> Result<(), String> {
    let text = |error: Error| error.to_string();
    check(session.size() == 2, "needs two ranks")?;
    let other = 1 - session.rank();
    let conn = mp::Connection::<()>::from_peer(session.peer(other).map_err(text)?);
    let world = session.world().map_err(text)?;
    if session.rank() == 0 {
        for size in [0usize, 1, 5000, 100_000] {
            let message = vec![size as u8; size];
            conn.send_bytes(&message).map_err(text)?;
            check(conn.recv_bytes().map_err(text)? == message, "echoed bytes")?;
        }
        session.hang_up(1).map_err(text)?;
        let echoed: u64 = world.recv(1).map_err(text)?;
        check(echoed == 4, &format!("echo returned {echoed}, not 4"))?;
        // After the hang-up the two ranks talk again, and a second hang-up ends a second echo.
        world.send(1, &"again".to_string()).map_err(text)?;
        conn.send_bytes(b"x").map_err(text)?;
        check(conn.recv_bytes().map_err(text)? == b"x", "second echo")?;
        session.hang_up(1).map_err(text)?;
        check(world.recv::<u64>(1).map_err(text)? == 1, "second count")?;
        check(session.hang_up(2).is_err(), "hang up on a rank that does not exist")?;
    } else {
        let (echoed, why) = echo(&conn)?;
        check(why.contains("MPI rank 0") && why.contains("hung up"), &format!("message: {why}"))?;
        world.send(0, &echoed).map_err(text)?;
        check(world.recv::<String>(0).map_err(text)? == "again", "talk again")?;
        let (echoed, _) = echo(&conn)?;
        world.send(0, &echoed).map_err(text)?;
    }
    session.barrier().map_err(text)
}

/// From a thread other than MPI's: a peer made there fails with the one-thread explanation.
fn session_free_send_fails() -> bool {
    // No Session here (it is not Send); use the world made on this thread: there is none.
    mp_mpi::native::broadcast(1u64)
        .is_err_and(|error| error.to_string().contains("initialised for one thread"))
}

/// One line on standard error in one write: `eprintln!` writes its pieces one by one, and
/// under mpirun the pieces of two ranks interleave ("rank rank 0: ...\n1: ...").
fn say(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

fn main() -> ExitCode {
    mp::init();
    let scenario = std::env::args().nth(1).unwrap_or_default();
    let mut session = match Session::init() {
        Ok(session) => session,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let rank = session.rank();
    match scenario.as_str() {
        "messages" => match messages(&session) {
            Ok(()) => say(&format!("rank {rank}: all checks passed")),
            Err(what) => {
                say(&format!("rank {rank}: check failed: {what}"));
                mp_mpi::abort(1);
            }
        },
        "hang-up" => match hang_up(&session) {
            Ok(()) => say(&format!("rank {rank}: hang-up checks passed")),
            Err(what) => {
                say(&format!("rank {rank}: check failed: {what}"));
                mp_mpi::abort(1);
            }
        },
        "panic" => {
            let world = session.world().expect("world");
            session.barrier().expect("barrier");
            if rank == 1 {
                std::thread::sleep(Duration::from_millis(200));
                panic!("deliberate panic on rank 1");
            }
            let _: u64 = world.recv(1).expect("rank 1 never sends");
        }
        "unreceived" => {
            let world = session.world().expect("world");
            session.set_finalize_timeout(Duration::from_millis(500));
            if rank == 0 {
                world.send(1, &vec![0u8; 1 << 20]).expect("a typed send never waits");
            }
            session.barrier().expect("barrier");
        }
        "finished" => {
            // Rank 1 sends one message and finishes; rank 0 gets it, then waits for a second
            // one that never comes: a finished rank is a disconnect, not a wait until the
            // job's time limit.
            let world = session.world().expect("world");
            if rank == 1 {
                world.send(0, &7u64).expect("a typed send never waits");
            } else {
                let first = world.recv::<u64>(1);
                let second = world.recv::<u64>(1);
                match (first, second) {
                    (Ok(7), Err(error)) if error.is_disconnected() => {
                        say(&format!("rank 0: disconnected: {error}"))
                    }
                    (first, second) => {
                        say(&format!("rank 0: check failed: {first:?}, then {second:?}"));
                        mp_mpi::abort(1);
                    }
                }
            }
        }
        other => {
            eprintln!(
                "unknown scenario {other:?}: messages, hang-up, finished, panic or unreceived"
            );
            return ExitCode::from(2);
        }
    }
    drop(session);
    ExitCode::SUCCESS
}
