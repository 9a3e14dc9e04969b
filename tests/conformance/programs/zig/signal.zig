// abort(): SIGABRT.
pub fn main() void {
    @import("std").posix.abort();
}
