use strict;
my $x = ;
print "unreachable\n"
