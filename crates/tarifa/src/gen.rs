//! Placeholder: the synthetic traffic generator is being written.
use clap::Args;

#[derive(Args)]
pub struct GenArgs {}

pub fn run(_args: &GenArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
