package EchoHandler;

# The one echo handler both Perl servers of BenchmarkPerlEcho run: read a
# line, write it back, until the client closes the connection. The
# Net::Server::PreFork server (netserver-echo.pl) calls it from
# process_request, the nsfd worker (nsfd-echo.pl) from its accept loop, with
# the accepted socket in both.

use strict;
use warnings;

# serve($sock) echoes each line read from $sock back to it, unbuffered, and
# returns at end of file or on the first failed write.
sub serve {
    my ($sock) = @_;
    $sock->autoflush(1);
    while (defined(my $line = <$sock>)) {
        print {$sock} $line or last;
    }
    return;
}

1;
