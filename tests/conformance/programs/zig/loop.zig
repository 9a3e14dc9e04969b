pub fn main() void {
    var i: u64 = 0;
    while (true) {
        i +%= 1;
        @import("std").mem.doNotOptimizeAway(i);
    }
}
