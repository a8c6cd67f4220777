use std::process::ExitCode;

fn main() -> ExitCode {
    infralog::cli::run()
}
