// Package logging is the central log of nsfd: one sink for the master's own
// records and for every line its workers write to stdout and stderr.
//
// # Records
//
// The master logs through go-hclog: [Sink.Logger] is the root logger, named
// "nsfd", and each daemon gets a sub-logger, Logger().Named("echo"), whose
// records carry the module "nsfd.echo". Worker output is read line by line by
// [Sink.Capture] (or handed over one line at a time with [Sink.WorkerLine]) and
// written as records that carry the daemon, the worker's pid and the stream.
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
// # Never blocking the caller
//
// Writing a record never waits for the sink. Records go into a bounded
// in-memory buffer (Config.Buffer records, Config.BufferBytes bytes) that one
// writer goroutine drains into the target. When the buffer is full the record
// is dropped and counted: [Sink.Dropped] returns the count, and a record
// "N log lines dropped" is written once the writer has caught up. A record the
// target failed to write is counted the same way. Nothing accepted into the
// buffer is lost by [Sink.Close], which writes everything buffered before it
// returns.
//
// # Targets
//
// The file target appends to one file (mode 0640, its directory created 0750),
// reopens it on [Sink.Reopen] (logrotate's SIGUSR1: rename, then signal) and,
// with Config.MaxSize set, rotates it by size itself: nsfd.log becomes
// nsfd.log.1, nsfd.log.1 becomes nsfd.log.2, and so on, keeping
// Config.MaxFiles rotated files. The stderr target writes to the process's
// standard error, for running in the foreground or under systemd's journal.
package logging
