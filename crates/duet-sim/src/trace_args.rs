//! The command-line options of tracing (`--trace FILE`, `--log[=FILE]`), kept apart from the
//! other options of `main.rs`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use duet_trace::Recorder;

/// Tracing options, global (before or after the subcommand).
#[derive(Args, Debug, Default)]
pub struct TraceArgs {
    /// Record every message between the cores and each core's activity, and write them to
    /// FILE as Chrome/Perfetto trace-event JSON (open it in https://ui.perfetto.dev or
    /// chrome://tracing; see docs/tracing.md).
    #[arg(long, global = true, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Write a decoded log of every message between the cores: to FILE with --log=FILE, else
    /// to standard output once the run is over.
    #[arg(long, global = true, value_name = "FILE", num_args = 0..=1,
          require_equals = true, default_missing_value = "-")]
    pub log: Option<PathBuf>,
    /// Draw the first answered call (or, without one, the whole run) as an SVG picture into
    /// FILE: one lane per core, activity, messages and the arrows between the cores.
    #[arg(long, global = true, value_name = "FILE")]
    pub trace_svg: Option<PathBuf>,
}

impl TraceArgs {
    /// A recorder if `--trace` or `--log` was given.
    pub fn recorder(&self) -> Option<Arc<Recorder>> {
        (self.trace.is_some() || self.log.is_some() || self.trace_svg.is_some())
            .then(|| Arc::new(Recorder::new()))
    }

    /// Writes the trace and the log of what `recorder` holds.
    pub fn write(&self, recorder: &Recorder) -> std::io::Result<()> {
        let timeline = recorder.timeline();
        if let Some(path) = &self.trace {
            std::fs::write(path, duet_trace::chrome::write(&timeline))?;
            eprintln!(
                "duet-sim: trace of {} messages written to {} (open it in https://ui.perfetto.dev)",
                timeline.messages.len(),
                path.display()
            );
        }
        if let Some(path) = &self.trace_svg {
            let (from, to) =
                duet_trace::svg::first_call_window(&timeline).unwrap_or((0, timeline.end_ns));
            std::fs::write(path, duet_trace::svg::write(&timeline, from, to))?;
        }
        match self.log.as_deref() {
            None => {}
            Some(p) if p.as_os_str() == "-" => print!("{}", duet_trace::log::write(&timeline)),
            Some(p) => std::fs::write(p, duet_trace::log::write(&timeline))?,
        }
        Ok(())
    }
}
