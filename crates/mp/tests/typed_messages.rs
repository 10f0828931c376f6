//! Every typed message carries a fingerprint of its type (issue 10): a wrong type between two
//! processes is `Error::TypeMismatch` naming both types, never a wrong value, and the right
//! type still arrives, on the bulk path too.

mod common;

use std::time::Duration;

use common::watchdog;
use mp::{Comm, Communicator, Connection, Error, Process, Queue};

mp::test_support!();

const LIMIT: Duration = Duration::from_secs(60);

/// The sender's and the receiver's names from a mismatch, or the unexpected outcome.
fn mismatch<T: std::fmt::Debug>(received: mp::Result<T>) -> (Option<String>, String) {
    match received {
        Err(error @ Error::TypeMismatch { .. }) => {
            let text = error.to_string();
            let Error::TypeMismatch { sent, expected } = error else { unreachable!() };
            assert!(text.contains(&format!("asked for a `{expected}`")), "{text}");
            if let Some(sent) = &sent {
                assert!(text.starts_with(&format!("received a `{sent}`")), "{text}");
            }
            (sent, expected)
        }
        other => panic!("expected a type mismatch, got {other:?}"),
    }
}

fn nested() -> Vec<Vec<f32>> {
    vec![vec![1.5, -0.0], Vec::new(), vec![f32::MAX; 1000]]
}

/// Sends, on one pipe, an `f64`, a `Vec<f64>`, then the same two again and the bulk and nested
/// vectors that the parent receives with the right types.
fn send_mixed(connection: Connection<()>) {
    let floats: Connection<f64> = mp::testing::retype(connection);
    floats.send(&2.5).unwrap();
    let vectors: Connection<Vec<f64>> = mp::testing::retype(floats);
    vectors.send(&vec![1.0, 2.0, 3.0]).unwrap();
    let floats: Connection<f64> = mp::testing::retype(vectors);
    floats.send(&2.5).unwrap();
    let vectors: Connection<Vec<f64>> = mp::testing::retype(floats);
    vectors.send(&(0..100_000).map(f64::from).collect()).unwrap();
    let nested_vectors: Connection<Vec<Vec<f32>>> = mp::testing::retype(vectors);
    nested_vectors.send(&nested()).unwrap();
}

#[test]
fn a_wrong_type_on_a_pipe_is_an_error_naming_both_types() {
    let _guard = watchdog(LIMIT);
    let (here, there) = mp::pipe::<()>().unwrap();
    let mut child = Process::spawn(send_mixed, there).unwrap();

    let as_usize: Connection<usize> = mp::testing::retype(here);
    assert_eq!(mismatch(as_usize.recv()), (Some("f64".into()), "usize".into()));
    let as_u64: Connection<u64> = mp::testing::retype(as_usize);
    assert_eq!(mismatch(as_u64.recv()), (Some("Vec<f64>".into()), "u64".into()));

    // A mismatch drops that message only: the right types still arrive, in order.
    let floats: Connection<f64> = mp::testing::retype(as_u64);
    assert_eq!(floats.recv().unwrap(), 2.5);
    let vectors: Connection<Vec<f64>> = mp::testing::retype(floats);
    assert_eq!(vectors.recv().unwrap(), (0..100_000).map(f64::from).collect::<Vec<_>>());
    let nested_vectors: Connection<Vec<Vec<f32>>> = mp::testing::retype(vectors);
    assert_eq!(nested_vectors.recv().unwrap(), nested());
    child.join().unwrap();
}

/// Rank 1 sends; rank 0 receives with the wrong types, then the right ones. Rank 0 returns
/// what it saw.
fn disagree(comm: Comm, _: ()) -> Vec<(Option<String>, String)> {
    if comm.rank() == 1 {
        comm.send(0, &2.5f64).unwrap();
        comm.send(0, &vec![1.0f64, 2.0, 3.0]).unwrap();
        comm.send(0, &2.5f64).unwrap();
        comm.send(0, &vec![1.0f64, 2.0, 3.0]).unwrap();
        comm.send(0, &nested()).unwrap();
        // A wrapper that sends borrowed parts, as exercise 4's `Counting` does.
        comm.send(0, &(7u64, &vec![0.5f64; 3])).unwrap();
        comm.send(0, &"text").unwrap();
        return Vec::new();
    }
    let seen = vec![mismatch(comm.recv::<usize>(1)), mismatch(comm.recv::<u64>(1))];
    assert_eq!(comm.recv::<f64>(1).unwrap(), 2.5);
    assert_eq!(comm.recv::<Vec<f64>>(1).unwrap(), [1.0, 2.0, 3.0]);
    assert_eq!(comm.recv::<Vec<Vec<f32>>>(1).unwrap(), nested());
    assert_eq!(comm.recv::<(u64, Vec<f64>)>(1).unwrap(), (7, vec![0.5; 3]));
    assert_eq!(comm.recv::<String>(1).unwrap(), "text");
    seen
}

#[test]
fn a_wrong_type_on_comm_is_an_error_naming_both_types() {
    let _guard = watchdog(LIMIT);
    let results = mp::launch(2, disagree, ()).unwrap();
    assert_eq!(
        results[0],
        [(Some("f64".into()), "usize".into()), (Some("Vec<f64>".into()), "u64".into())]
    );
}

fn put_mixed(queue: Queue<()>) {
    let floats: Queue<f64> = mp::testing::retype_queue(queue);
    floats.put(&2.5).unwrap();
    let vectors: Queue<Vec<f64>> = mp::testing::retype_queue(floats);
    vectors.put(&vec![1.0, 2.0, 3.0]).unwrap();
    vectors.put(&vec![4.0; 50_000]).unwrap();
}

#[test]
fn a_wrong_type_on_a_queue_is_an_error_naming_both_types() {
    let _guard = watchdog(LIMIT);
    let queue = Queue::<()>::new().unwrap();
    let mut producer = Process::spawn(put_mixed, queue.clone()).unwrap();
    producer.join().unwrap();
    let as_usize: Queue<usize> = mp::testing::retype_queue(queue);
    assert_eq!(mismatch(as_usize.get()), (Some("f64".into()), "usize".into()));
    let as_u64: Queue<u64> = mp::testing::retype_queue(as_usize);
    assert_eq!(mismatch(as_u64.get()), (Some("Vec<f64>".into()), "u64".into()));
    let vectors: Queue<Vec<f64>> = mp::testing::retype_queue(as_u64);
    assert_eq!(vectors.get().unwrap(), vec![4.0; 50_000]);
}

fn total(values: Vec<f64>) -> (usize, f64) {
    (values.len(), values.iter().sum())
}

#[test]
fn pool_and_process_arguments_and_results_still_arrive() {
    let _guard = watchdog(LIMIT);
    // Their types are fixed by the trampoline; the parent sends `[A]` and the worker decodes
    // `Vec<A>`, which must count as one type.
    let pool = mp::Pool::new(2).unwrap();
    let inputs = vec![vec![1.0; 10], vec![0.5; 300_000], Vec::new()];
    assert_eq!(
        pool.map(total, inputs.clone()).unwrap(),
        [(10, 10.0), (300_000, 150_000.0), (0, 0.0)]
    );
    assert_eq!(
        Process::spawn(total, inputs[1].clone()).unwrap().join().unwrap(),
        (300_000, 150_000.0)
    );
}
