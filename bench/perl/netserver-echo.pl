#!/usr/bin/perl
# An echo server on Net::Server::PreFork, the engine nsfd succeeds, serving
# EchoHandler::serve (the handler nsfd-echo.pl serves under nsfd). Options
# come from the command line in Net::Server's own syntax, for example
#
#   perl netserver-echo.pl --port=127.0.0.1:0 --min_servers=8 --max_servers=80 \
#       --min_spare_servers=4 --max_spare_servers=72 --max_requests=1000 \
#       --log_file=/tmp/ns.log
#
# It runs in the foreground. Once bound it logs "listening on HOST:PORT"
# (the port it got when asked for 0) at log level 2, into log_file. Each child asks the kernel
# to kill it when the parent dies (prctl PR_SET_PDEATHSIG), so that a
# benchmark killed hard leaves no orphan behind; that is one system call at
# the start of a child and nothing per connection.

use strict;
use warnings;
use FindBin ();
use lib $FindBin::Bin;

package EchoServer;

use base 'Net::Server::PreFork';
use EchoHandler ();

sub process_request {
    my $self = shift;
    EchoHandler::serve($self->{'server'}->{'client'});
}

sub post_bind_hook {
    my $self = shift;
    my $sock = $self->{'server'}->{'sock'}->[0];
    $self->log(2, "listening on " . $sock->sockhost . ":" . $sock->sockport);
}

sub child_init_hook {
    eval { require 'sys/syscall.ph'; syscall(SYS_prctl(), 1, 9) }; # PR_SET_PDEATHSIG, SIGKILL
}

package main;

EchoServer->run;
