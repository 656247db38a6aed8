#!/usr/bin/perl
# An echo daemon in core Perl whose workers are forked from a preloaded
# fork-server (NsfdPreload): the modules are loaded once, and each worker
# nsfd asks for is a fork of the loaded program, not a new perl. Without
# preload it runs as a plain worker. The worker contract is docs/protocol.md:
# its listener is fd 3; READY=1, BUSY=1/0 and STOPPING=1 go to NOTIFY_SOCKET.
#
#   command = perl examples/perl/preload-echo.pl
#   port    = 127.0.0.1:7004
#   type    = notify
#   preload = true

use strict;
use warnings;
use FindBin ();
use lib $FindBin::Bin;
use NsfdPreload ();
use IO::Socket::INET ();
use Time::HiRes ();
use Socket qw(AF_UNIX SOCK_DGRAM SOL_SOCKET SO_RCVTIMEO SO_SNDTIMEO pack_sockaddr_un);

$SIG{'PIPE'} = 'IGNORE';
print "preload-echo.pl $$: application loaded\n";

# serve is one worker: its environment is the worker's (LISTEN_PID,
# NOTIFY_SOCKET, NSFD_WORKER), set by the fork-server before it runs.
sub serve {
    my ($sock, $addr);
    if (($ENV{'NOTIFY_SOCKET'} // '') ne '') {
        (my $path = $ENV{'NOTIFY_SOCKET'}) =~ s/^@/\0/;
        $addr = pack_sockaddr_un($path);
        socket($sock, AF_UNIX, SOCK_DGRAM, 0) or die "notify socket: $!\n";
        setsockopt($sock, SOL_SOCKET, SO_SNDTIMEO, pack('l!l!', 1, 0));
    }
    my $notify = sub { send($sock, $_[0], 0, $addr) if $sock };
    die "no listener: run me under nsfd (LISTEN_FDS)\n"
        if ($ENV{'LISTEN_PID'} // '') ne $$ || ($ENV{'LISTEN_FDS'} // 0) < 1;
    my $listener = IO::Socket::INET->new_from_fd(3, 'r') or die "fd 3: $!\n";
    # A blocking accept gives up after 1 s without a connection (Linux
    # applies SO_RCVTIMEO to accept): see the second race below.
    setsockopt($listener, SOL_SOCKET, SO_RCVTIMEO, pack('l!l!', 1, 0)) or die "accept timeout: $!\n";
    my ($busy, $stopping) = (0, 0);
    # SIGTERM ends the loop after the connection being served, if any
    # (exiting here would reset a connection accepted just before). An idle
    # worker's accept fails with EINTR (Perl's safe signals do not restart
    # it), but the handler runs between two operations: if it runs just
    # before accept's system call, a 50 ms interval timer interrupts it; if
    # the signal comes after Perl's last look for one and before the system
    # call, the handler runs when accept times out.
    $SIG{'ALRM'} = sub { };
    for my $sig (qw(TERM INT HUP)) {
        $SIG{$sig} = sub {
            $notify->("STOPPING=1") if !$stopping;
            $stopping = 1;
            Time::HiRes::ualarm(50_000, 50_000);
        };
    }
    $notify->("READY=1");
    print "perl echo worker $$ ready LISTEN_PID=$ENV{LISTEN_PID} slot=$ENV{NSFD_WORKER}\n";
    while (!$stopping) {
        my $conn = $listener->accept;
        if (!$conn) { # EINTR, the timeout, or another worker was quicker
            my $rin = '';
            vec($rin, fileno($listener), 1) = 1;
            select($rin, undef, undef, 1) if $!{EAGAIN}; # a non-blocking listener
            next;
        }
        $busy = 1;
        $notify->("BUSY=1");
        $conn->autoflush(1);
        while (defined(my $line = <$conn>)) {
            print {$conn} $line or last;
        }
        close $conn;
        $notify->("BUSY=0");
        $busy = 0;
    }
    exit 0;
}

NsfdPreload::preload(\&serve);
