#!/usr/bin/perl
# An nsfd worker in core Perl serving EchoHandler::serve, the handler
# netserver-echo.pl serves under Net::Server::PreFork. It speaks the worker
# contract of docs/protocol.md:
#
#   - its listening socket is fd 3 (LISTEN_FDS, LISTEN_PID);
#   - it sends READY=1 once it accepts, BUSY=1 when it has accepted a
#     connection and BUSY=0 when that connection is done, and STOPPING=1 on
#     SIGTERM, as datagrams to NOTIFY_SOCKET (a path, or @name for an
#     abstract socket), each with a 1 s send timeout;
#   - it serves one connection at a time, as a Net::Server::PreFork child.
#
# The listener is shared with every other worker of the daemon. While it is
# in blocking mode (as nsfd hands it over) accept sleeps in the kernel,
# which wakes one sleeper per connection; if a worker made it non-blocking,
# accept fails with EAGAIN and the worker waits in select instead.
#
#   command = perl bench/perl/nsfd-echo.pl
#   port    = 127.0.0.1:7003
#   type    = notify

use strict;
use warnings;
use FindBin ();
use lib $FindBin::Bin;
use EchoHandler ();
use Errno qw(EAGAIN EWOULDBLOCK);
use Fcntl qw(F_SETFD FD_CLOEXEC);
use IO::Socket::INET ();
use Time::HiRes ();
use Socket qw(AF_UNIX SOCK_DGRAM SOL_SOCKET SO_RCVTIMEO SO_SNDTIMEO pack_sockaddr_un);

$| = 1;
$SIG{'PIPE'} = 'IGNORE';

# sd_notify: one datagram per message to NOTIFY_SOCKET, if it is set.
my $notify_addr;
my $notify_sock;
if (defined $ENV{'NOTIFY_SOCKET'} && $ENV{'NOTIFY_SOCKET'} ne '') {
    my $path = $ENV{'NOTIFY_SOCKET'};
    $path =~ s/^@/\0/;
    $notify_addr = pack_sockaddr_un($path);
    socket($notify_sock, AF_UNIX, SOCK_DGRAM, 0) or die "nsfd-echo.pl: notify socket: $!\n";
    setsockopt($notify_sock, SOL_SOCKET, SO_SNDTIMEO, pack('l!l!', 1, 0))
        or die "nsfd-echo.pl: notify timeout: $!\n";
}

sub notify {
    my ($words) = @_;
    return if !$notify_sock;
    defined send($notify_sock, $words, 0, $notify_addr)
        or print STDERR "nsfd-echo.pl: notify $words: $!\n";
}

# sd_listen_fds: the first inherited listener, or exit.
my $pid_ok = !defined $ENV{'LISTEN_PID'} || $ENV{'LISTEN_PID'} eq $$;
my $nfds = $pid_ok ? ($ENV{'LISTEN_FDS'} || 0) : 0;
delete @ENV{qw(LISTEN_FDS LISTEN_PID LISTEN_FDNAMES)}; # not for our children
die "nsfd-echo.pl: no listener: run me under nsfd (LISTEN_FDS)\n" if $nfds < 1;
my $listener = IO::Socket::INET->new_from_fd(3, 'r')
    or die "nsfd-echo.pl: fd 3: $!\n";
my @inherited = ($listener);
for my $fd (4 .. 3 + $nfds - 1) {
    my $fh;
    push @inherited, $fh if open($fh, '<&=', $fd); # kept open: closing $fh would close the fd
}
fcntl($_, F_SETFD, FD_CLOEXEC) for @inherited;

# A blocking accept returns EAGAIN after 1 s without a connection (Linux
# applies SO_RCVTIMEO to accept on a TCP listener; not on a Multipath TCP
# one, which nsfd does not bind), which bounds the signal race described
# below. Every worker of the daemon runs this script and sets the same
# value; a worker that polls a non-blocking listener never sees it.
setsockopt($listener, SOL_SOCKET, SO_RCVTIMEO, pack('l!l!', 1, 0))
    or die "nsfd-echo.pl: accept timeout: $!\n";

# SIGTERM ends the loop after the connection being served, if any (exiting
# in the handler would reset a connection accepted just before). An idle
# worker's accept fails with EINTR, as Perl's safe signals do not restart
# it; but Perl runs the handler between two operations, which leaves two
# races with accept's system call:
#
#   - the handler runs just before it, and accept then blocks with nothing
#     left to interrupt it: the handler also starts a 50 ms interval timer
#     whose SIGALRM does (reads and writes of a connection being served are
#     restarted by PerlIO and do not notice it);
#   - the signal arrives after Perl's last look for pending signals and
#     before the system call: its handler runs only once accept returns,
#     which the 1 s accept timeout above makes sure of.
my ($busy, $stopping) = (0, 0);
$SIG{'ALRM'} = sub { };
for my $sig (qw(TERM INT HUP)) {
    $SIG{$sig} = sub {
        notify("STOPPING=1") if !$stopping;
        $stopping = 1;
        Time::HiRes::ualarm(50_000, 50_000);
    };
}

notify("READY=1");
print "perl echo worker $$ ready\n";
while (!$stopping) {
    my $conn = $listener->accept;
    if (!$conn) {
        if ($! == EAGAIN || $! == EWOULDBLOCK) {
            # The accept timeout, or a non-blocking listener on which
            # another worker was quicker: wait until it is readable, for
            # at most 1 s (the same race as accept's).
            my $rin = '';
            vec($rin, fileno($listener), 1) = 1;
            select($rin, undef, undef, 1);
        }
        next; # EINTR, ECONNABORTED, ...
    }
    $busy = 1;
    notify("BUSY=1");
    EchoHandler::serve($conn);
    close($conn);
    notify("BUSY=0");
    $busy = 0;
}
exit 0;
