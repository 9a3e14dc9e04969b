void main () {
    string[] parts = stdin.read_line ().strip ().split (" ");
    int64 total = int64.parse (parts[0]) + int64.parse (parts[parts.length - 1]);
    stdout.printf ("%" + int64.FORMAT + "\n", total);
}
