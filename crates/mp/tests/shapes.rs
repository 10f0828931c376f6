//! The shapes of Python's sheet in mp's API (issue 13): a different argument and pipe end per
//! rank, processes of several arguments, functions generic over the ends of a pipe, typed
//! receives into a reused vector. Real processes, under the watchdog.

mod common;

use std::time::Duration;

use common::watchdog;
use mp::{
    Comm, Communicator, Connection, Launch, Process, Receiver, RecvEnd, SendEnd, Sender, Topology,
};

mp::test_support!();

const LIMIT: Duration = Duration::from_secs(60);

/// Each rank reports its rank and its own value on its own pipe end, and returns the value.
fn report_on_own_end(comm: Comm, (value, out): (String, Sender<(usize, String)>)) -> String {
    out.send(&(comm.rank(), value.clone())).unwrap();
    value
}

#[test]
fn launch_each_gives_every_rank_its_own_value_and_pipe_end() {
    let _guard = watchdog(LIMIT);
    let mut receivers = Vec::new();
    let mut args = Vec::new();
    for rank in 0..4 {
        let (tx, rx) = mp::pipe_simplex::<(usize, String)>().unwrap();
        args.push((format!("value {rank}"), tx));
        receivers.push(rx);
    }
    let results = mp::launch_each(report_on_own_end, args).unwrap();
    assert_eq!(results, ["value 0", "value 1", "value 2", "value 3"]);
    for (rank, rx) in receivers.iter().enumerate() {
        assert_eq!(rx.recv().unwrap(), (rank, format!("value {rank}")));
        // The rank held the only sending end, and the parent kept no copy: end of stream.
        assert!(rx.recv().unwrap_err().is_disconnected());
    }
}

/// Rank 0 talks to the parent on a two-way connection, the others only compute.
fn serve_parent(comm: Comm, end: Option<Connection<u64>>) -> u64 {
    let Some(parent) = end else {
        return comm.rank() as u64;
    };
    let request = parent.recv().unwrap();
    parent.send(&(request + 1)).unwrap();
    request
}

#[test]
fn run_each_in_a_ring_with_a_connection_for_one_rank() {
    let _guard = watchdog(LIMIT);
    let (here, there) = mp::pipe::<u64>().unwrap();
    let ring = Launch { n_ranks: 3, topology: Topology::Ring };
    let launcher =
        std::thread::spawn(move || ring.run_each(serve_parent, [Some(there), None, None]));
    here.send(&41).unwrap();
    assert_eq!(here.recv().unwrap(), 42);
    assert_eq!(launcher.join().unwrap().unwrap(), [41, 1, 2]);
}

#[test]
fn run_each_refuses_the_wrong_number_of_arguments_before_starting_anything() {
    let _guard = watchdog(LIMIT);
    let error = Launch { n_ranks: 3, topology: Topology::AllToAll }
        .run_each(serve_parent, [None, None])
        .unwrap_err();
    assert!(matches!(error, mp::Error::InvalidArgument { .. }), "{error}");
    assert!(mp::launch_each(serve_parent, Vec::new()).is_err()); // no ranks at all
}

fn relay(input: Receiver<u32>, output: Sender<u32>, times: u32) -> u32 {
    (0..times).map(|_| input.recv().unwrap()).inspect(|value| output.send(value).unwrap()).sum()
}

#[test]
fn spawn_star_passes_a_tuple_as_arguments() {
    let _guard = watchdog(LIMIT);
    let (to_child, input) = mp::pipe_simplex::<u32>().unwrap();
    let (output, from_child) = mp::pipe_simplex::<u32>().unwrap();
    let mut child = Process::spawn_star(relay, (input, output, 3)).unwrap();
    for value in [5, 6, 7] {
        to_child.send(&value).unwrap();
        assert_eq!(from_child.recv().unwrap(), value);
    }
    assert_eq!(child.join().unwrap(), 18);
    assert!(from_child.recv().unwrap_err().is_disconnected());
}

/// Sends through any end that can send; receives through any end that can receive.
fn forward<T: mp::Message>(input: &impl RecvEnd<T>, output: &impl SendEnd<T>) -> usize {
    let mut forwarded = 0;
    while let Ok(value) = input.recv() {
        output.send(&value).unwrap();
        forwarded += 1;
    }
    forwarded
}

fn forward_receiver_to_connection(
    (input, output): (Receiver<String>, Connection<String>),
) -> usize {
    forward(&input, &output)
}

fn forward_connection_to_sender((input, output): (Connection<String>, Sender<String>)) -> usize {
    forward(&input, &output)
}

#[test]
fn generic_ends_take_senders_receivers_and_connections_in_other_processes() {
    let _guard = watchdog(LIMIT);
    // parent -> (Sender, Receiver) -> child 1 -> (Connection, Connection) -> child 2 -> parent
    let (tx, rx) = mp::pipe_simplex::<String>().unwrap();
    let (middle_a, middle_b) = mp::pipe::<String>().unwrap();
    let (back_tx, back_rx) = mp::pipe_simplex::<String>().unwrap();
    let mut first = Process::spawn(forward_receiver_to_connection, (rx, middle_a)).unwrap();
    let mut second = Process::spawn(forward_connection_to_sender, (middle_b, back_tx)).unwrap();
    let words = ["alpha", "beta", "gamma"];
    for word in words {
        SendEnd::send(&tx, &word.to_string()).unwrap();
    }
    drop(tx);
    for word in words {
        assert_eq!(RecvEnd::recv(&back_rx).unwrap(), word);
    }
    assert_eq!(first.join().unwrap(), 3);
    assert_eq!(second.join().unwrap(), 3);
}

/// Sends `rounds` arrays of growing then shrinking lengths, then one of the wrong element size.
fn send_arrays((out, rounds): (Sender<()>, usize)) {
    for round in 0..rounds {
        let len = if round % 2 == 0 { 100_000 } else { 10 };
        out.send_slice(&vec![round as f64; len]).unwrap();
    }
    out.send_slice(&[1u8, 2, 3]).unwrap();
    out.send(&()).unwrap(); // a typed message
    out.send_slice(&[7.5f64]).unwrap();
}

#[test]
fn recv_into_reuses_the_vector_across_processes() {
    let _guard = watchdog(LIMIT);
    let (out, input) = mp::pipe_simplex::<()>().unwrap();
    let mut child = Process::spawn(send_arrays, (out, 6)).unwrap();
    let mut items: Vec<f64> = Vec::new();
    let mut capacities = Vec::new();
    for round in 0..6 {
        input.recv_into(&mut items).unwrap();
        let len = if round % 2 == 0 { 100_000 } else { 10 };
        assert_eq!(items.len(), len);
        assert!(items.iter().all(|&x| x == round as f64));
        capacities.push(items.capacity());
    }
    // One allocation, made for the first (largest) array, kept for all the others.
    assert!(capacities.iter().all(|&capacity| capacity == capacities[0]), "{capacities:?}");
    let error = input.recv_into(&mut items).unwrap_err();
    assert!(error.to_string().contains("not a whole number of 8-byte elements"), "{error}");
    assert!(input.recv_into(&mut items).is_err()); // a typed message is no array
    input.recv_into(&mut items).unwrap(); // the pipe goes on
    assert_eq!(items, [7.5]);
    child.join().unwrap();
}

fn exchange_into(comm: Comm, rounds: usize) -> (Vec<u32>, bool) {
    let peer = 1 - comm.rank();
    let mut items: Vec<u32> = Vec::new();
    let mut capacity = None;
    for round in 0..rounds {
        comm.send_slice(peer, &vec![(round * 10 + comm.rank()) as u32; 5000]).unwrap();
        comm.recv_into(peer, &mut items).unwrap();
        assert!(items.iter().all(|&x| x == (round * 10 + peer) as u32));
        capacity.get_or_insert(items.capacity());
    }
    (items[..2].to_vec(), capacity == Some(items.capacity()))
}

#[test]
fn communicator_recv_into_between_ranks() {
    let _guard = watchdog(LIMIT);
    let results = mp::launch(2, exchange_into, 4).unwrap();
    assert_eq!(results, [(vec![31, 31], true), (vec![30, 30], true)]);
}
