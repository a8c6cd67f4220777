//! `infralog radl check|fmt`: validate and format users' RADL templates.

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum RadlCommand {}

pub fn run(command: RadlCommand) -> ExitCode {
    match command {}
}
