package NsfdPreload;

# nsfd's preload fork-server in core Perl (docs/protocol.md, "Preload
# fork-server"). With `preload = true` nsfd starts the daemon's program
# once, with NSFD_PRELOAD_FD naming a control socket: the program loads its
# application, then calls preload(\&serve), which forks a worker each time
# nsfd asks. Without NSFD_PRELOAD_FD, preload(\&serve) just calls serve():
# the same program runs as a plain worker.
#
#   use NsfdPreload ();
#   use MyApp ();                  # loaded once, shared copy-on-write
#   NsfdPreload::preload(\&MyApp::serve);

use strict;
use warnings;
use POSIX ();

# prctl(PR_SET_PDEATHSIG) is a raw syscall: its number from syscall.ph,
# else the common ones.
my $SYS_prctl = eval { package main; require 'syscall.ph'; &SYS_prctl() }
    // { 'x86_64' => 157, 'aarch64' => 167 }->{ (POSIX::uname())[4] };

# preload($serve) runs the fork-server loop if nsfd asked for one, else
# calls $serve. In a worker it never returns: the worker exits when $serve does.
sub preload {
    my ($serve) = @_;
    my $fd = delete $ENV{'NSFD_PRELOAD_FD'};
    if (!defined $fd) {
        $serve->();
        return;
    }
    open(my $ctl, '+<&=', $fd) or die "NsfdPreload: fd $fd: $!\n";
    my $master = getppid();
    syswrite($ctl, "ready\n");
    my $buf = '';
    while (1) {
        my $n = sysread($ctl, $buf, 4096, length $buf);
        POSIX::_exit(0) if !$n; # the master closed the socket: leave
        while ($buf =~ s/\A([^\n]*)\n//) {
            my @f = split /\t/, $1, -1;
            my $reply = @f >= 3 && $f[0] eq 'fork'
                ? _fork($ctl, $master, $serve, @f[1 .. $#f])
                : 'err unknown request';
            syswrite($ctl, "$reply\n");
        }
    }
}

# _fork double-forks a worker and returns the reply line.
sub _fork {
    my ($ctl, $master, $serve, @req) = @_;
    pipe(my $r, my $w) or return "err pipe: $!";
    my $mid = fork;
    return "err fork: $!" if !defined $mid;
    if (!$mid) { # the intermediate: fork the worker and leave at once
        close $r;
        my $me = $$;
        my $pid = fork;
        _child($ctl, $w, $me, $master, $serve, @req) if defined $pid && $pid == 0;
        POSIX::_exit(0);
    }
    close $w;
    my $said = '';
    1 while sysread($r, $said, 512, length $said);
    close $r;
    waitpid($mid, 0); # now the worker is the master's child
    $said =~ s/\s+\z//;
    return $said =~ /\A(?:ok|err) / ? $said : 'err the worker exited while it started';
}

sub _child {
    my ($ctl, $w, $mid, $master, $serve, $out, $err, @env) = @_;
    my $ok = eval {
        POSIX::setpgid(0, 0) or die "setpgid: $!\n";
        open(STDOUT, '>', $out) or die "open $out: $!\n";
        open(STDERR, '>', $err) or die "open $err: $!\n";
        for (@env) {
            my ($k, $v) = split /=/, $_, 2;
            $ENV{$k} = $v;
        }
        $ENV{'LISTEN_PID'} = $$;
        $ENV{'WATCHDOG_PID'} = $$ if exists $ENV{'WATCHDOG_USEC'};
        close $ctl;
        1;
    };
    if (!$ok) {
        (my $msg = $@) =~ s/\s+/ /g;
        syswrite($w, "err $msg\n");
        POSIX::_exit(127);
    }
    syswrite($w, "ok $$\n");
    close $w;
    # The intermediate exits at once; then the master is our parent, and we
    # die with it, as an exec'd worker does.
    my $deadline = time + 5;
    select(undef, undef, undef, 0.0002) while getppid() == $mid && time < $deadline;
    syscall($SYS_prctl, 1, 9, 0, 0, 0) if $SYS_prctl; # PR_SET_PDEATHSIG, SIGKILL
    POSIX::_exit(1) if getppid() != $master;
    STDOUT->autoflush(1);
    STDERR->autoflush(1);
    my $code = eval { $serve->(); 0 } // do { print STDERR $@; 1 };
    exit $code;
}

1;
