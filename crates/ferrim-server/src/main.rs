//! The `ferrim` binary: parses the command line and hands over to the library.

fn main() -> std::process::ExitCode {
    ferrim_server::cli::main()
}
