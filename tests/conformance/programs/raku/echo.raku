with $*IN.get -> $line {
    say $line;
}
