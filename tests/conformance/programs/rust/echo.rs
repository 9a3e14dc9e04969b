use std::io::{self, BufRead, Write};

fn main() {
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line).unwrap();
    if !line.is_empty() && !line.ends_with('\n') {
        line.push('\n');
    }
    io::stdout().write_all(line.as_bytes()).unwrap();
}
