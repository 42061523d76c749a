//! Placeholder: owned by the crate's issue; replaced when that work lands.

use anyhow::{Result, bail};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> Result<()> {
    bail!("this subcommand is not built yet")
}
