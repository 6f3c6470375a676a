//! A progress bar that only appears when a job runs longer than a second and stderr is a
//! terminal, so short runs and logs in CI stay clean.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    shown: bool,
}

impl Progress {
    pub fn new(message: &str) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        if let Ok(style) =
            ProgressStyle::with_template("{msg} {wide_bar} {pos}/{len} rows, {per_sec}, eta {eta}")
        {
            bar.set_style(style);
        }
        bar.set_message(message.to_string());
        Self {
            bar,
            started: Instant::now(),
            shown: false,
        }
    }

    pub fn update(&mut self, done: usize, total: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_position(done as u64);
        if !self.shown && self.started.elapsed() > Duration::from_secs(1) {
            self.shown = true;
            // indicatif's stderr target draws nothing when stderr is not a terminal.
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
