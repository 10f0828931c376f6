//! The graded tests of exercise 2: `cargo test -p exercise-2`.
//!
//! The ring: exactly one pipe per rank, and a token that visits every rank once, in order,
//! each in a process of its own. The overhead experiment: the same sums every way, and the
//! marks t0, t1, t2, t3 in order.
//!
//! Every call to your code is wrapped in `observe!`: its value is printed as plain data, and
//! `cargo xtask grade` checks it again in a process without your code (see the `judge` crate).
mp::test_support!();

use std::time::Duration;

use judge::observe;
use process_launch::*;

/// A token as plain data: (rank, pid) of every visit, in order.
type Visits = Vec<(usize, u32)>;

fn visits(token: &Token) -> Visits {
    token.iter().map(|visit| (visit.rank, visit.pid)).collect()
}

/// The ranks of a token's visits, in order.
fn ranks(visits: &[(usize, u32)]) -> Vec<usize> {
    visits.iter().map(|visit| visit.0).collect()
}

/// `ring_by_hand` as plain data.
fn ring(n_ranks: usize) -> Result<Vec<(usize, u32)>, String> {
    ring_by_hand(n_ranks).map(|token| visits(&token)).map_err(|error| error.to_string())
}

fn ring_ok(n_ranks: usize) -> Vec<(usize, u32)> {
    observe!(ring(n_ranks)).unwrap_or_else(|error| panic!("a ring of {n_ranks} failed: {error}"))
}

/// An error as plain data: `Some(true)` for `InvalidArgument`, `Some(false)` for another one,
/// `None` for no error.
fn invalid_argument<T>(result: mp::Result<T>) -> Option<bool> {
    result.err().map(|error| matches!(error, mp::Error::InvalidArgument { .. }))
}

/// Rank 0 of a ring of one, in this process: the token it returns.
fn ring_of_one() -> Result<Vec<(usize, u32)>, String> {
    let (to_next, from_previous) = mp::pipe_simplex().map_err(|error| error.to_string())?;
    Ok(visits(&ring_rank(RingPlace { rank: 0, n_ranks: 1, from_previous, to_next })))
}

/// Rank 2 of 4, in this process, given a token from ranks 0 and 1: what it sends on, and what
/// it returns.
fn middle_rank() -> Result<(Visits, Visits), String> {
    let text = |error: mp::Error| error.to_string();
    let (into_rank, from_previous) = mp::pipe_simplex().map_err(text)?;
    let (to_next, out_of_rank) = mp::pipe_simplex().map_err(text)?;
    let earlier = vec![Visit { rank: 0, pid: 1 }, Visit { rank: 1, pid: 2 }];
    into_rank.send(&earlier).map_err(text)?;
    let returned = ring_rank(RingPlace { rank: 2, n_ranks: 4, from_previous, to_next });
    let sent_on = out_of_rank.recv_timeout(Duration::from_secs(10)).map_err(text)?;
    Ok((visits(&sent_on), visits(&returned)))
}

/// An `Overhead` as plain data: the sums, and the marks' names and times.
type Plain = (Vec<u64>, Vec<(String, Duration)>);

fn plain(overhead: &Overhead) -> Plain {
    let marks = overhead.phases.marks().iter().map(|mark| (mark.name.clone(), mark.at)).collect();
    (overhead.sums.clone(), marks)
}

fn plain_result(result: mp::Result<Overhead>) -> Result<Plain, String> {
    result.map(|overhead| plain(&overhead)).map_err(|error| error.to_string())
}

/// The sums `sums_into_queue` puts on a queue.
fn sums_on_a_queue(lists: Vec<Vec<u64>>) -> Result<Vec<u64>, String> {
    let queue = mp::Queue::new().map_err(|error| error.to_string())?;
    sums_into_queue((lists, queue.clone()));
    queue.get_timeout(Duration::from_secs(10)).map_err(|error| error.to_string())
}

#[test]
fn a_ring_has_one_link_per_rank_from_each_rank_to_the_next() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    assert_eq!(observe!(ring_links(4)), [(0, 1), (1, 2), (2, 3), (3, 0)]);
    assert_eq!(observe!(ring_links(2)), [(0, 1), (1, 0)]);
    assert_eq!(observe!(ring_links(1)), [(0, 0)], "one rank: a pipe from rank 0 to itself");
    assert_eq!(observe!(ring_links(0)), []);
    for n_ranks in 1..=8 {
        let links = observe!(ring_links(n_ranks));
        assert_eq!(links.len(), n_ranks, "a ring of {n_ranks} needs exactly {n_ranks} pipes");
        for rank in 0..n_ranks {
            let outgoing = links.iter().filter(|(from, _)| *from == rank).count();
            let incoming = links.iter().filter(|(_, to)| *to == rank).count();
            assert_eq!((outgoing, incoming), (1, 1), "rank {rank} of {n_ranks}: one out, one in");
        }
    }
}

#[test]
fn rank_zero_starts_the_token_and_returns_it_when_it_comes_back() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    // A ring of one, in this process: rank 0 sends to itself.
    let this_process = observe!(std::process::id());
    let token = observe!(ring_of_one()).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(token, [(0, this_process)], "[(rank, pid)]");
}

#[test]
fn every_other_rank_appends_its_visit_and_passes_the_token_on() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let this_process = observe!(std::process::id());
    let (sent_on, returned) = observe!(middle_rank()).unwrap_or_else(|error| panic!("{error}"));
    let expected = [(0, 1), (1, 2), (2, this_process)];
    assert_eq!(sent_on, expected, "the token it sends on, as [(rank, pid)]");
    assert_eq!(returned, expected, "a rank returns the token as it sent it");
}

#[test]
fn the_token_visits_every_rank_once_in_order_for_1_to_6_ranks() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    for n_ranks in 1..=6 {
        let token = ring_ok(n_ranks);
        assert_eq!(ranks(&token), (0..n_ranks).collect::<Vec<_>>(), "a ring of {n_ranks}");
    }
}

#[test]
fn every_rank_of_the_ring_is_a_process_of_its_own() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let this_process = observe!(std::process::id());
    let token = ring_ok(5);
    assert_eq!(ranks(&token), (0..5).collect::<Vec<_>>());
    let mut pids: Vec<u32> = token.iter().map(|visit| visit.1).collect();
    assert!(!pids.contains(&this_process), "a rank ran in the parent process: {token:?}");
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 5, "two ranks shared a process: {token:?}");
}

#[test]
fn a_ring_of_zero_ranks_is_an_error_not_a_panic() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let error = observe!(invalid_argument(ring_by_hand(0)));
    assert_eq!(error, Some(true), "Some(true) is Err(InvalidArgument), None is Ok");
}

/// Lists with different sums, and those sums.
fn lists() -> (Vec<Vec<u64>>, Vec<u64>) {
    let lists: Vec<Vec<u64>> = (0..5u64).map(|k| (k * 100..k * 100 + 50 + k).collect()).collect();
    let sums = lists.iter().map(|list| list.iter().sum()).collect();
    (lists, sums)
}

/// The marks must be t0, t1, t2, t3, in that order, at times that never go back.
fn assert_phases(way: &str, overhead: &Plain) {
    let marks = &overhead.1;
    let names: Vec<&str> = marks.iter().map(|mark| mark.0.as_str()).collect();
    assert_eq!(names, ["t0", "t1", "t2", "t3"], "{way}: the marks, in order");
    assert!(marks.windows(2).all(|pair| pair[0].1 <= pair[1].1), "{way}: {marks:?}");
}

fn ok(way: &str, overhead: Result<Plain, String>) -> Plain {
    overhead.unwrap_or_else(|error| panic!("{way} failed: {error}"))
}

#[test]
fn without_processes_sums_every_list_and_marks_t0_to_t3() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let (lists, sums) = lists();
    let overhead = observe!(plain(&without_processes(lists)));
    assert_eq!(overhead.0, sums);
    assert_phases("without_processes", &overhead);
    assert_eq!(observe!(plain(&without_processes(Vec::new()))).0, Vec::<u64>::new());
}

#[test]
fn pool_of_one_gives_the_same_sums_and_marks_t0_to_t3() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let (lists, sums) = lists();
    let overhead = ok("with_pool_of_one", observe!(plain_result(with_pool_of_one(lists))));
    assert_eq!(overhead.0, sums);
    assert_phases("with_pool_of_one", &overhead);
}

#[test]
fn the_process_puts_the_sums_of_its_lists_on_the_queue() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let (lists, sums) = lists();
    let on_the_queue = observe!(sums_on_a_queue(lists));
    assert_eq!(on_the_queue.unwrap_or_else(|error| panic!("{error}")), sums);
}

#[test]
fn process_and_queue_gives_the_same_sums_and_marks_t0_to_t3() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let (lists, sums) = lists();
    let overhead = observe!(plain_result(with_process_and_queue(lists)));
    let overhead = ok("with_process_and_queue", overhead);
    assert_eq!(overhead.0, sums);
    assert_phases("with_process_and_queue", &overhead);
}

#[test]
fn all_three_ways_agree_on_larger_lists() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let lists: Vec<Vec<u64>> = (0..10u64).map(|k| (k * 5000..(k + 1) * 5000).collect()).collect();
    let sums: Vec<u64> = lists.iter().map(|list| list.iter().sum()).collect();
    let alone = observe!(plain(&without_processes(lists.clone()))).0;
    assert_eq!(alone, sums, "without processes");
    let pool = ok("Pool(1)", observe!(plain_result(with_pool_of_one(lists.clone()))));
    assert_eq!(pool.0, sums, "Pool(1)");
    let process = ok("Process", observe!(plain_result(with_process_and_queue(lists))));
    assert_eq!(process.0, sums, "Process + Queue");
}
