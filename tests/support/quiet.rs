//! Running a compiled model's requests without logs, as the tests do.

use optc::run::{execute, RunOptions, RunReport};
use optc::Model;

/// Runs every request of `model` quietly, discarding the log.
pub fn run_quiet(model: &mut Model) -> RunReport {
    execute(
        model,
        &RunOptions {
            quiet: true,
            ..Default::default()
        },
        &mut std::io::sink(),
    )
}
