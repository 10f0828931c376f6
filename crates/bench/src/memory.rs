//! Peak memory for one large message: how much resident memory the sending and the receiving
//! process needed, compared with the message itself.
//!
//! Both sides are fresh processes (so their peak is theirs alone). Each reads its high-water
//! mark of resident memory (`VmHWM` in `/proc/self/status`, the peak RSS that `getrusage`
//! reports as `ru_maxrss`) before touching the message and after it has gone or arrived.

use serde::{Deserialize, Serialize};

use mp::{Process, Receiver, Sender};

/// One side's resident memory, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SideMemory {
    /// Peak resident memory before the message existed.
    pub baseline_bytes: u64,
    /// Peak resident memory once the message was sent or received.
    pub peak_bytes: u64,
}

impl SideMemory {
    /// What the message cost this side: the peak above the baseline, in bytes.
    pub fn added_bytes(&self) -> u64 {
        self.peak_bytes.saturating_sub(self.baseline_bytes)
    }
}

/// Both sides of one message.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemoryPeak {
    /// Message size in bytes.
    pub message_bytes: u64,
    /// The process that built and sent the message.
    pub sender: SideMemory,
    /// The process that received it.
    pub receiver: SideMemory,
}

/// The peak resident set (`VmHWM`) in bytes from the text of `/proc/<pid>/status`.
pub fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let mut fields = line["VmHWM:".len()..].split_whitespace();
    let value: u64 = fields.next()?.parse().ok()?;
    match fields.next()? {
        "kB" => Some(value * 1024),
        _ => None,
    }
}

fn own_peak() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|error| format!("reading /proc/self/status: {error}"))?;
    parse_vm_hwm(&status).ok_or_else(|| "no VmHWM line in /proc/self/status".to_string())
}

fn send_side((sender, n_bytes): (Sender<()>, usize)) -> Result<SideMemory, String> {
    let baseline_bytes = own_peak()?;
    let message = vec![1u8; n_bytes];
    sender.send_bytes(&message).map_err(|error| error.to_string())?;
    drop(message);
    drop(sender);
    Ok(SideMemory { baseline_bytes, peak_bytes: own_peak()? })
}

fn receive_side((receiver, n_bytes): (Receiver<()>, usize)) -> Result<SideMemory, String> {
    let baseline_bytes = own_peak()?;
    let message = receiver.recv_bytes().map_err(|error| error.to_string())?;
    if message.len() != n_bytes {
        return Err(format!("received {} B, expected {n_bytes} B", message.len()));
    }
    Ok(SideMemory { baseline_bytes, peak_bytes: own_peak()? })
}

/// Sends one `n_bytes` message with `send_bytes` over `mp::pipe_simplex` from one started
/// process to another, and reports both sides' peaks.
pub fn ours(n_bytes: u64) -> Result<MemoryPeak, String> {
    let size = usize::try_from(n_bytes).map_err(|_| format!("{n_bytes} B is too large"))?;
    let (sender, receiver) = mp::pipe_simplex::<()>().map_err(|error| error.to_string())?;
    let mut receiving =
        Process::spawn(receive_side, (receiver, size)).map_err(|e| e.to_string())?;
    let mut sending = Process::spawn(send_side, (sender, size)).map_err(|e| e.to_string())?;
    let sender = sending.join().map_err(|error| error.to_string())??;
    let receiver = receiving.join().map_err(|error| error.to_string())??;
    Ok(MemoryPeak { message_bytes: n_bytes, sender, receiver })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_high_water_mark_in_bytes() {
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t    2048 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(2048 * 1024));
    }

    #[test]
    fn a_missing_or_odd_line_is_none() {
        assert_eq!(parse_vm_hwm("VmRSS:\t 1000 kB\n"), None);
        assert_eq!(parse_vm_hwm("VmHWM:\t 1000 pages\n"), None);
        assert_eq!(parse_vm_hwm("VmHWM:\t lots kB\n"), None);
    }

    #[test]
    fn the_added_memory_never_goes_below_zero() {
        let side = SideMemory { baseline_bytes: 10, peak_bytes: 4 };
        assert_eq!(side.added_bytes(), 0);
        assert_eq!(SideMemory { baseline_bytes: 4, peak_bytes: 10 }.added_bytes(), 6);
    }

    #[test]
    fn this_process_has_a_peak() {
        assert!(own_peak().unwrap() > 0);
    }
}
