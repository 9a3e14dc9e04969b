use std::io;

fn main() {
    let mut line = String::new();
    io::stdin().read_line(&mut line).unwrap();
    let total: i64 = line.split_whitespace().map(|x| x.parse::<i64>().unwrap()).sum();
    println!("{}", total);
}
