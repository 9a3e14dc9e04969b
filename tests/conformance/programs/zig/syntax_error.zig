pub fn main() void {
    const x: i32 = ;
}
