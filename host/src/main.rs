use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = llama_stack_operator::cli::Cli::parse();
    llama_stack_operator::cli::run(cli)
}
