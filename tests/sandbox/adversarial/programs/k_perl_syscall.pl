# LANG-04: Perl's raw syscall() and system() reach only the kernel sandbox.
use strict;
use warnings;
$! = 0; my $r = syscall(272, 0x10000000);            # unshare(CLONE_NEWUSER)
print "unshare_user=", ($r == -1 ? ($!{EPERM} ? "EPERM" : "other:" . ($! + 0)) : "OK"), "\n";
my ($src, $dst, $type) = ("none", "/tmp", "tmpfs");
$! = 0; $r = syscall(165, $src, $dst, $type, 0, 0);   # mount
print "mount=", ($r == -1 ? ($!{EPERM} ? "EPERM" : "other:" . ($! + 0)) : "OK"), "\n";
$! = 0; $r = syscall(101, 16, 1, 0, 0);               # ptrace(PTRACE_ATTACH, 1)
print "ptrace=", ($r == -1 ? ($!{EPERM} ? "EPERM" : "other:" . ($! + 0)) : "OK"), "\n";
my $id = `id -u`; chomp $id;
print "id=$id\n";
exit 0;
