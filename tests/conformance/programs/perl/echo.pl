use strict;
use warnings;

my $line = <STDIN>;
print $line if defined $line;
