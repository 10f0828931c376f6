//! `mp-bench`: one command that measures `mp` side by side with Python's `multiprocessing`,
//! MPI and the hardware's limits on this machine, and writes `report.md`, `results.json` and
//! `bandwidth.svg`. `cargo run --release -p mp-bench -- --help` lists the flags.
//!
//! Workers are copies of this executable, so `main` calls `mp::init()` first, and then
//! `ipc_pingpong::serve_if_child()` for the ipc-channel ping-pong's child.

mod chart;
mod cli;
mod external;
mod ipc;
mod limit;
mod load;
mod machine;
mod memory;
mod mpi;
mod ours;
mod python;
mod report;
mod results;
mod run;
mod stats;
mod sweep;

use std::process::ExitCode;

fn main() -> ExitCode {
    mp::init();
    // A copy of this program started as ipc-channel's echoing child (see ipc.rs).
    if let Some(code) = ipc_pingpong::serve_if_child() {
        return code;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    // A copy of this program started as a busy process of `--load` (see load.rs).
    if args.first().map(String::as_str) == Some(load::BUSY_FLAG) {
        load::busy_loop();
    }
    let options = match cli::parse(&args) {
        Ok(cli::Command::Help) => {
            print!("{}", cli::HELP);
            return ExitCode::SUCCESS;
        }
        Ok(cli::Command::Run(options)) => options,
        Err(error) => {
            eprintln!("mp-bench: {error}\nRun `cargo run -p mp-bench -- --help` for the flags.");
            return ExitCode::from(2);
        }
    };
    match run::run(&options) {
        Ok(written) => {
            println!("report:  {}", written.report.display());
            println!("figures: {}", written.json.display());
            match written.chart {
                Ok(chart) => println!("chart:   {}", chart.display()),
                Err(error) => println!("chart:   not drawn: {error}"),
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("mp-bench: {error}");
            ExitCode::FAILURE
        }
    }
}
