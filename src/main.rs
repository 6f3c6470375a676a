//! The `robust` command line. Everything of substance lives in the library; this file only
//! parses arguments, sets up logging and turns errors into an exit code.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    // Past a file-size limit (`ulimit -f`) the kernel would kill the process with SIGXFSZ and
    // leave its temporary files behind; ignored, the write fails with EFBIG instead, and the
    // error path removes them.
    // SAFETY: setting a signal's disposition to SIG_IGN before any thread starts.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    // The runtime's telemetry client writes under HOME unless this is set before the library
    // loads (see `TELEMETRY_VARIABLE`); a user's own setting is left alone.
    let telemetry = robust::model::runtime::TELEMETRY_VARIABLE;
    if std::env::var_os(telemetry).is_none() {
        // SAFETY: no thread of this process exists yet, so nothing reads the environment
        // concurrently.
        unsafe { std::env::set_var(telemetry, "1") };
    }
    robust::model::runtime::tune_malloc();
    let args = cli::parse();
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
