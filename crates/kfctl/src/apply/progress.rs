//! Progress: a bar per phase on a terminal, one line per change (and per
//! phase) otherwise, so CI logs stay short and greppable.

use std::io::{IsTerminal as _, Write};

use indicatif::{ProgressBar, ProgressStyle};

use super::Outcome;
use super::objects::Phase;

pub struct Progress<'a> {
    err: &'a mut dyn Write,
    bars: bool,
    bar: Option<ProgressBar>,
    counts: [usize; 4],
}

impl<'a> Progress<'a> {
    /// Bars only on a terminal and outside CI (`CI` set by every CI system).
    pub fn new(err: &'a mut dyn Write, interactive: bool) -> Self {
        let bars = interactive && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        Progress {
            err,
            bars,
            bar: None,
            counts: [0; 4],
        }
    }

    pub fn line(&mut self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => {
                let _ = writeln!(self.err, "{text}");
            }
        }
    }

    pub fn phase(&mut self, phase: Phase, total: usize, verb: &str) {
        self.counts = [0; 4];
        if self.bars {
            let bar = ProgressBar::new(total as u64).with_message(format!("{verb} {}", phase.name()));
            if let Ok(style) = ProgressStyle::with_template("{msg:32} [{bar:30}] {pos}/{len}") {
                bar.set_style(style.progress_chars("=> "));
            }
            self.bar = Some(bar);
        } else {
            let _ = writeln!(self.err, "{verb} {}: {total} object(s)", phase.name());
        }
    }

    /// One object done; in line mode only what changed or failed is printed.
    pub fn object(&mut self, id: &str, outcome: &Outcome) {
        let i = match outcome {
            Outcome::Created => 0,
            Outcome::Configured => 1,
            Outcome::Unchanged => 2,
            Outcome::Failed(_) => 3,
        };
        self.counts[i] += 1;
        match (&self.bar, outcome) {
            (Some(bar), Outcome::Failed(reason)) => bar.println(format!("{id} failed: {reason}")),
            (Some(bar), _) => bar.inc(1),
            (None, Outcome::Unchanged) => {}
            (None, o) => {
                let _ = writeln!(self.err, "{id} {}", o.word());
            }
        }
    }

    pub fn finish_phase(&mut self, phase: Phase) {
        let [c, u, n, f] = self.counts;
        let text = format!(
            "{}: {c} created, {u} configured, {n} unchanged, {f} failed",
            phase.name()
        );
        // The bar gives way to its phase's counts, one line that stays.
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let _ = writeln!(self.err, "{text}");
    }
}
