#!/usr/bin/perl
# nsfd-echo.pl, with its handler and modules loaded once by a fork-server
# (preload = true) and each worker forked from it (examples/perl/
# NsfdPreload.pm). Without preload it runs nsfd-echo.pl as a plain worker:
# BenchmarkPerlPreload runs the same script both ways.
#
#   command = perl bench/perl/nsfd-preload-echo.pl
#   port    = 127.0.0.1:7003
#   type    = notify
#   preload = true

use strict;
use warnings;
use FindBin ();
use lib $FindBin::Bin, "$FindBin::Bin/../../examples/perl";
use NsfdPreload ();
use EchoHandler ();
use Errno ();
use Fcntl ();
use IO::Socket::INET ();
use Socket ();

my $worker = "$FindBin::Bin/nsfd-echo.pl";
print "nsfd-preload-echo.pl $$: application loaded\n" if defined $ENV{'NSFD_PRELOAD_FD'};
NsfdPreload::preload(sub {
    do $worker; # serves until SIGTERM, and exits
    die $@ if $@;
    die "$worker: $!\n";
});
