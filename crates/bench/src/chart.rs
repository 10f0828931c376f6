//! `bandwidth.svg`: bandwidth against message size, log-log, every transport and memcpy.

use std::path::Path;

use mp::plot::{Axis, Chart, Series};

use crate::{results::Results, sweep::Point};

/// The chart of `results`: one line per measured transport, memcpy dashed.
pub fn bandwidth_chart(results: &Results) -> Chart {
    let as_gb_per_s =
        |points: &[Point]| points.iter().map(|p| (p.bytes as f64, p.bandwidth_bps / 1e9)).collect();
    let mut series = Vec::new();
    let transports = [
        ("mp pipe (send_bytes / recv_bytes_into)", &results.ours.pipe),
        ("mp Comm (2 ranks)", &results.ours_comm),
        ("threads: rayon + mpsc, one copy", &results.threads),
        ("Python Pipe (send_bytes / recv_bytes)", &results.python.pipe),
        ("C MPI (Open MPI)", &results.mpi_c),
        ("mpi4py", &results.mpi4py),
    ];
    let ipc = &results.ipc_channel;
    let ipc_names = [
        format!("ipc-channel {}: IpcBytesSender", ipc.version),
        format!("ipc-channel {}: IpcSender<Vec<u8>>", ipc.version),
        format!("ipc-channel {}: IpcSharedMemory per message", ipc.version),
    ];
    let ipc_series =
        ipc_names.iter().map(String::as_str).zip([&ipc.bytes, &ipc.typed, &ipc.shared_memory]);
    for (name, outcome) in transports.into_iter().chain(ipc_series) {
        if let Some(points) = outcome.value().filter(|points| !points.is_empty()) {
            series.push(Series::line(name, as_gb_per_s(points)));
        }
    }
    if let Some(points) = results.memcpy.value().filter(|points| !points.is_empty()) {
        series.push(Series::dashed("memcpy, one thread (the limit)", as_gb_per_s(points)));
    }
    Chart {
        title: "Bandwidth against message size (one way = half a round trip)".into(),
        x: Axis::bytes("message size"),
        y: Axis::log("bandwidth [GB/s] (size / one-way time, 1 GB = 10^9 bytes)"),
        series,
    }
}

/// Writes the chart to `path`.
pub fn write(results: &Results, path: &Path) -> Result<(), String> {
    bandwidth_chart(results).write_svg(path).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample_results;

    #[test]
    fn every_measured_transport_and_memcpy_is_a_series() {
        let chart = bandwidth_chart(&sample_results());
        let names: Vec<&str> = chart.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "mp pipe (send_bytes / recv_bytes_into)",
                "mp Comm (2 ranks)",
                "Python Pipe (send_bytes / recv_bytes)",
                "C MPI (Open MPI)",
                "ipc-channel 0.23.1: IpcBytesSender",
                "ipc-channel 0.23.1: IpcSharedMemory per message",
                "memcpy, one thread (the limit)",
            ]
        );
        assert_eq!(chart.series[6].style, mp::plot::Style::Dashed);
        let svg = chart.to_svg().unwrap();
        assert!(svg.contains("message size [bytes]") && svg.contains("GB/s"));
    }
}
