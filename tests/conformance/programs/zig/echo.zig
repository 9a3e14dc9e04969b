const std = @import("std");

pub fn main() !void {
    var buf: [4096]u8 = undefined;
    const line = try std.io.getStdIn().reader().readUntilDelimiterOrEof(&buf, '\n');
    if (line) |text| {
        try std.io.getStdOut().writer().print("{s}\n", .{text});
    }
}
