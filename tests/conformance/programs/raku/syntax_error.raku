sub main( {
    say "unbalanced";
