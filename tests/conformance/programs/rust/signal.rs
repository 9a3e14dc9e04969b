// abort(): SIGABRT.
fn main() {
    std::process::abort();
}
