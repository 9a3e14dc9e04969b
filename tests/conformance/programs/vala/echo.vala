void main () {
    string? line = stdin.read_line ();
    if (line != null) {
        stdout.printf ("%s\n", line);
    }
}
