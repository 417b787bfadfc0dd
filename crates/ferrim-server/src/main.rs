//! The `ferrim` binary: parses the command line and hands over to the library.

// mimalloc instead of glibc's malloc: the message path allocates many small, short-lived
// buffers (frames, protobuf messages), and glibc spent a tenth of the server's core on
// them (consolidating and unlinking free chunks) in the chat benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    ferrim_server::cli::main()
}
