// Package logging is the central log of nsfd: one sink for the master's own
// records and for every line its workers write to stdout and stderr.
//
// # Records
//
// The master logs through go-hclog: [Sink.Logger] is the root logger, named
// "nsfd", and each daemon gets a sub-logger, Logger().Named("echo"), whose
// records carry the module "nsfd.echo". Worker output is cut into lines by a
// [Sink.LineWriter], which the master's event loop writes what it reads from a
// worker's pipe to ([Sink.Capture] does the same from an io.Reader, and
// [Sink.WorkerLine] takes one line at a time), and written as records that
// carry the daemon, the worker's pid and the stream.
// One record is one line of the central file, in the text format
//
//	2026-11-24T19:15:00.123Z [INFO]  nsfd.echo: worker started: pid=1234
//	2026-11-24T19:15:00.125Z echo[1234] stdout: the worker's line
//
// or, with Format "json", as hclog's JSON objects:
//
//	{"@level":"info","@message":"worker started","@module":"nsfd.echo","@timestamp":"2026-11-24T19:15:00.123Z","pid":1234}
//	{"@timestamp":"2026-11-24T19:15:00.125Z","@level":"info","@module":"nsfd.echo","@message":"the worker's line","daemon":"echo","pid":1234,"stream":"stdout"}
//
// Times are UTC with millisecond precision. In the text format, control
// characters other than tab are escaped (\n, \r, \xNN) so that a record can
// never spill onto a second line; that holds for master records too, including
// hclog's multi-line field values. [ParseRecord] reads either format back,
// which is what `nsfd logs --daemon NAME` filters on.
//
// # Never blocking the caller, holding workers back
//
// Writing a record never waits for the sink. Records go into a bounded
// in-memory buffer (Config.Buffer records, Config.BufferBytes bytes) that one
// writer goroutine drains into the target, taking every record waiting (up to
// 256 KiB of them) and writing them with one write(2). When the buffer is
// full the record is dropped and counted: [Sink.Dropped] returns the count,
// and a record "N log lines dropped" is written once the writer has caught
// up. A record the target failed to write is counted the same way. Nothing
// accepted into the buffer is lost by [Sink.Close], which writes everything
// buffered before it returns.
//
// So that a worker that writes faster than the target takes its lines does
// not lose them, the readers of workers' output pace themselves with
// [Sink.Hold] ([LineWriter.Hold]; [Sink.Capture] does it itself): once the
// buffer is half full (the high-water mark, of Config.Buffer or of
// Config.BufferBytes) they stop reading, the workers' pipes fill and the
// workers block in write(2), as they would writing to a slow disk; when the
// writer has taken the buffer down to a quarter (the low-water mark) they
// read again. The master's own records are never held back: they go into
// the half of the buffer above the high-water mark, with what is read from a
// worker's pipes at its exit (read at once, so that the exit is reported at
// once), and are dropped only when the buffer is full.
//
// A target that is stuck (a blocked FIFO, a hung syslog, a full disk that
// does not fail) must not hold the daemons hostage: when the writer has been
// in one write for Config.StallTimeout (default one second), the readers are
// let go, the stall is reported on standard error, and from then on the
// buffer fills and what does not fit is dropped and counted, as above, until
// the target completes a write again, when holding resumes.
//
// # Targets
//
// The file target appends to one file (mode 0640, its directory created 0750),
// reopens it on [Sink.Reopen] (logrotate's SIGUSR1: rename, then signal; the
// writer does it between two batches) and, with Config.MaxSize set, rotates it
// by size itself, splitting a batch where a record would take the file past
// MaxSize, so that no file is larger unless one record is: nsfd.log becomes
// nsfd.log.1, nsfd.log.1 becomes nsfd.log.2, and so on, keeping
// Config.MaxFiles rotated files. The stderr target writes to the process's
// standard error, for running in the foreground or under systemd's journal.
//
// # Syslog
//
// The syslog target sends one message per record: per worker line, per
// master record. nsfd writes the messages itself (log/syslog is frozen and
// missing on some platforms). With Config.SyslogAddr empty it speaks to the
// local syslog socket, the first of /dev/log, /var/run/syslog and
// /var/run/log that accepts a datagram (or else a stream) connection, in the
// format syslog(3) uses there and rsyslog, syslog-ng and journald expect,
// RFC 3164 without a hostname:
//
//	<30>Nov 24 19:15:00 nsfd[999]: echo[1234] stdout: the worker's line
//
// "unix:///path" and "unixgram:///path" name another local socket. With
// "udp://host:port" or "tcp://host:port" it sends RFC 5424 messages, over
// TCP with RFC 6587 octet-counting framing:
//
//	<30>1 2026-11-24T19:15:00.125Z host nsfd 999 - [nsfd@32473 daemon="echo" pid="1234" stream="stdout"] echo[1234] stdout: the worker's line
//	<28>1 2026-11-24T19:15:00.130Z host nsfd 999 - - nsfd.echo: worker exited: pid=1234
//
// The tag (APP-NAME) is Config.SyslogIdent and the pid (PROCID) the
// master's; the daemon, the worker's pid and the stream are in the text, and
// for RFC 5424 in structured data too. The text is the record as the file
// would have it, without its time (and without a master record's level);
// with Format "json" it is the JSON object. The facility is
// Config.SyslogFacility; the severity is a master record's level (debug,
// info, warning, err), and for worker lines info for stdout and notice for
// stderr. Datagrams are cut at 65,000 bytes.
//
// A connection that fails is made again: at once for the record whose write
// failed, then with a back-off from 100ms to 10s during which records are
// dropped and counted. Before each write on a stream connection nsfd checks,
// without blocking, whether the receiver has closed it, so that a receiver
// that restarted does not cost a line. (Lines a receiver had not read when
// it went away are lost with its connection, as with any plain TCP syslog.)
// Reopen connects again. Open fails when no local socket can be connected
// to; a remote receiver that is down at Open is tried again later.
//
// # Reading the log
//
// [Tail] shows the last lines of the central file and follows it across
// rotation, as `nsfd logs [-f] [-n N] [--daemon NAME]` does.
package logging
