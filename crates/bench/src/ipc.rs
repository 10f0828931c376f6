//! ipc-channel, what a Rust user would pick for processes that talk to each other, measured
//! with the same ping-pong as mp's pipe: a copy of this program, started as an echoing child
//! (`ipc_pingpong::serve_if_child` at the top of `main`), reached through
//! `IpcOneShotServer`. Three ways of sending: bytes, typed (serde) and `IpcSharedMemory`.

use std::time::Duration;

use ipc_pingpong::{Kind, Peer};

use crate::sweep::{RawPoint, SweepPlan, sweep};

/// The time limit of one sweep's child: generous for the largest sizes, so that only a hang
/// reaches it (the watchdog then kills the child and the sweep fails with a note).
pub fn limit_for(plan: &SweepPlan) -> Duration {
    Duration::from_secs_f64(60.0 + 4.0 * plan.budget_s * plan.sizes.len() as f64)
}

/// The ping-pong sweep of `kind` against a child started with `command`.
pub fn sweep_with(
    kind: Kind,
    command: std::process::Command,
    plan: &SweepPlan,
) -> Result<Vec<RawPoint>, String> {
    let peer = Peer::spawn(kind, command, limit_for(plan))?;
    let mut reply = Vec::new();
    let points = sweep(plan, |message| {
        peer.round_trip(message, &mut reply)?;
        if reply.len() == message.len() {
            Ok(())
        } else {
            Err(format!("sent {} B but {} B came back", message.len(), reply.len()))
        }
    });
    let finished = peer.finish();
    let points = points?;
    finished?;
    Ok(points)
}

/// The ping-pong sweep of `kind` against a copy of this program.
pub fn ipc_sweep(kind: Kind, plan: &SweepPlan) -> Result<Vec<RawPoint>, String> {
    sweep_with(kind, ipc_pingpong::this_program(), plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The echoing child when this test binary is started as one; otherwise nothing.
    #[test]
    fn child_entry() {
        ipc_pingpong::exit_if_test_child();
    }

    #[test]
    fn a_tiny_sweep_of_every_kind_gives_positive_times() {
        let plan =
            SweepPlan { sizes: vec![1, 4096, 300_000], budget_s: 0.005, samples: 3, cpus: None };
        for kind in Kind::ALL {
            let child = ipc_pingpong::test_child("ipc::tests::child_entry");
            let points = sweep_with(kind, child, &plan).unwrap();
            assert_eq!(points.iter().map(|p| p.bytes).collect::<Vec<_>>(), [1, 4096, 300_000]);
            for point in &points {
                assert_eq!(point.one_way_s.len(), 3);
                assert!(point.one_way_s.iter().all(|&t| t > 0.0 && t.is_finite()), "{point:?}");
            }
        }
    }
}
