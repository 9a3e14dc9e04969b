const std = @import("std");

pub fn main() !void {
    var buf: [4096]u8 = undefined;
    const line = (try std.io.getStdIn().reader().readUntilDelimiterOrEof(&buf, '\n')) orelse return;
    var it = std.mem.tokenizeAny(u8, line, " \t\r");
    const a = try std.fmt.parseInt(i64, it.next().?, 10);
    const b = try std.fmt.parseInt(i64, it.next().?, 10);
    try std.io.getStdOut().writer().print("{d}\n", .{a + b});
}
