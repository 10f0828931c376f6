//! The graded tests of exercise 2: `cargo test -p exercise-2`.
//!
//! The ring: exactly one pipe per rank, and a token that visits every rank once, in order,
//! each in a process of its own. The overhead experiment: the same sums every way, and the
//! marks t0, t1, t2, t3 in order.
mp::test_support!();

use std::time::Duration;

use process_launch::*;

/// The ranks a token visited, in order.
fn ranks(token: &Token) -> Vec<usize> {
    token.iter().map(|visit| visit.rank).collect()
}

#[test]
fn a_ring_has_one_link_per_rank_from_each_rank_to_the_next() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    assert_eq!(ring_links(4), [(0, 1), (1, 2), (2, 3), (3, 0)]);
    assert_eq!(ring_links(2), [(0, 1), (1, 0)]);
    assert_eq!(ring_links(1), [(0, 0)], "one rank: a pipe from rank 0 to itself");
    assert_eq!(ring_links(0), []);
    for n_ranks in 1..=8 {
        let links = ring_links(n_ranks);
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
    let (to_next, from_previous) = mp::pipe_simplex().unwrap();
    let token = ring_rank(RingPlace { rank: 0, n_ranks: 1, from_previous, to_next });
    assert_eq!(token, [Visit { rank: 0, pid: std::process::id() }]);
}

#[test]
fn every_other_rank_appends_its_visit_and_passes_the_token_on() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let (into_rank, from_previous) = mp::pipe_simplex().unwrap();
    let (to_next, out_of_rank) = mp::pipe_simplex().unwrap();
    let earlier = vec![Visit { rank: 0, pid: 1 }, Visit { rank: 1, pid: 2 }];
    into_rank.send(&earlier).unwrap();
    let returned = ring_rank(RingPlace { rank: 2, n_ranks: 4, from_previous, to_next });
    let mut expected = earlier;
    expected.push(Visit { rank: 2, pid: std::process::id() });
    assert_eq!(out_of_rank.recv_timeout(Duration::from_secs(10)).unwrap(), expected);
    assert_eq!(returned, expected, "a rank returns the token as it sent it");
}

#[test]
fn the_token_visits_every_rank_once_in_order_for_1_to_6_ranks() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    for n_ranks in 1..=6 {
        let token = ring_by_hand(n_ranks).unwrap();
        assert_eq!(ranks(&token), (0..n_ranks).collect::<Vec<_>>(), "a ring of {n_ranks}");
    }
}

#[test]
fn every_rank_of_the_ring_is_a_process_of_its_own() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let token = ring_by_hand(5).unwrap();
    let mut pids: Vec<u32> = token.iter().map(|visit| visit.pid).collect();
    assert!(!pids.contains(&std::process::id()), "a rank ran in the parent process: {token:?}");
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 5, "two ranks shared a process: {token:?}");
}

#[test]
fn a_ring_of_zero_ranks_is_an_error_not_a_panic() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let error = ring_by_hand(0).unwrap_err();
    assert!(matches!(error, mp::Error::InvalidArgument { .. }), "got {error}");
}

/// Lists with different sums, and those sums.
fn lists() -> (Vec<Vec<u64>>, Vec<u64>) {
    let lists: Vec<Vec<u64>> = (0..5u64).map(|k| (k * 100..k * 100 + 50 + k).collect()).collect();
    let sums = lists.iter().map(|list| list.iter().sum()).collect();
    (lists, sums)
}

/// The marks must be t0, t1, t2, t3, in that order, at times that never go back.
fn assert_phases(way: &str, overhead: &Overhead) {
    let marks = overhead.phases.marks();
    let names: Vec<&str> = marks.iter().map(|mark| mark.name.as_str()).collect();
    assert_eq!(names, ["t0", "t1", "t2", "t3"], "{way}: the marks, in order");
    assert!(marks.windows(2).all(|pair| pair[0].at <= pair[1].at), "{way}: {marks:?}");
}

#[test]
fn without_processes_sums_every_list_and_marks_t0_to_t3() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let (lists, sums) = lists();
    let overhead = without_processes(lists);
    assert_eq!(overhead.sums, sums);
    assert_phases("without_processes", &overhead);
    assert_eq!(without_processes(Vec::new()).sums, Vec::<u64>::new());
}

#[test]
fn pool_of_one_gives_the_same_sums_and_marks_t0_to_t3() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let (lists, sums) = lists();
    let overhead = with_pool_of_one(lists).unwrap();
    assert_eq!(overhead.sums, sums);
    assert_phases("with_pool_of_one", &overhead);
}

#[test]
fn the_process_puts_the_sums_of_its_lists_on_the_queue() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let (lists, sums) = lists();
    let queue = mp::Queue::new().unwrap();
    sums_into_queue((lists, queue.clone()));
    assert_eq!(queue.get_timeout(Duration::from_secs(10)).unwrap(), sums);
}

#[test]
fn process_and_queue_gives_the_same_sums_and_marks_t0_to_t3() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let (lists, sums) = lists();
    let overhead = with_process_and_queue(lists).unwrap();
    assert_eq!(overhead.sums, sums);
    assert_phases("with_process_and_queue", &overhead);
}

#[test]
fn all_three_ways_agree_on_larger_lists() {
    let _watchdog = course::watchdog(Duration::from_secs(60));
    let lists: Vec<Vec<u64>> = (0..10u64).map(|k| (k * 5000..(k + 1) * 5000).collect()).collect();
    let alone = without_processes(lists.clone()).sums;
    assert_eq!(with_pool_of_one(lists.clone()).unwrap().sums, alone, "Pool(1)");
    assert_eq!(with_process_and_queue(lists).unwrap().sums, alone, "Process + Queue");
}
