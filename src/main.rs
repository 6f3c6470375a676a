//! The `robust` command line. Everything of substance lives in the library; this file only
//! parses arguments, sets up logging and turns errors into an exit code.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Past a file-size limit (`ulimit -f`) the kernel would kill the process with SIGXFSZ and
    // leave its temporary files behind; ignored, the write fails with EFBIG instead, and the
    // error path removes them.
    // SAFETY: setting a signal's disposition to SIG_IGN before any thread starts.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    robust::model::runtime::tune_malloc();
    let args = cli::Cli::parse();
    cli::init_logging(&args.global);
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
