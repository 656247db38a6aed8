package logging

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Targets a Sink can write to.
const (
	TargetFile   = "file"
	TargetStderr = "stderr"
	TargetSyslog = "syslog"
)

// Formats of the records a Sink writes.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// Streams of a worker's output, as they appear in its records.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
)

// Defaults applied by Open to a Config's zero fields.
const (
	DefaultFormat      = FormatText
	DefaultLevel       = "info"
	DefaultBuffer      = 16384    // records
	DefaultBufferBytes = 32 << 20 // bytes of record data
	DefaultMaxFiles    = 5        // rotated files kept when MaxSize is set

	// DefaultStallTimeout is how long one write to the target may take
	// before the Sink counts as stalled: it stops holding workers' output
	// back and drops what does not fit in its buffer instead.
	DefaultStallTimeout = time.Second

	DefaultSyslogIdent    = "nsfd"
	DefaultSyslogFacility = "daemon"
)

// MaxLineBytes is the longest worker line written as one record; longer lines
// are split into several records (at a UTF-8 character boundary).
const MaxLineBytes = 64 << 10

// TimeLayout is the layout of every record's time, in UTC.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// ErrInvalidConfig is wrapped by the error Open returns for a Config it
// cannot use.
var ErrInvalidConfig = errors.New("invalid log config")

// ErrClosed is returned by Reopen on a closed Sink.
var ErrClosed = errors.New("log sink closed")

// Config says where and how a Sink writes. Open applies the defaults and
// validates it; the zero Config writes text records at level info to stderr.
type Config struct {
	// Target is "file", "stderr" or "syslog". Empty means "file" when File
	// is set, "stderr" otherwise.
	Target string
	// File is the log file, for target "file". Its directory is created.
	File string
	// Format is "text" (default) or "json".
	Format string
	// Level is the least severe master record written: trace, debug, info
	// (default), warn or error; Net::Server's log_level 0-4 is accepted too.
	// Worker lines are written whatever the level.
	Level string
	// MaxSize, when > 0, rotates the file once it would grow past this many
	// bytes: nsfd.log -> nsfd.log.1 -> nsfd.log.2 ...
	MaxSize int64
	// MaxFiles is how many rotated files are kept; default DefaultMaxFiles.
	MaxFiles int
	// Buffer is how many records wait for the writer before new ones are
	// dropped; default DefaultBuffer.
	Buffer int
	// BufferBytes bounds the memory of the waiting records; default
	// DefaultBufferBytes.
	BufferBytes int64
	// StallTimeout is how long one write to the target may take before the
	// Sink gives up holding workers' output back (see the package
	// documentation); default DefaultStallTimeout.
	StallTimeout time.Duration

	// SyslogAddr is where target "syslog" sends its messages: empty for the
	// local syslog socket (/dev/log, /var/run/syslog or /var/run/log),
	// "udp://host:port" or "tcp://host:port" for a remote receiver (RFC 5424
	// messages), "unix:///path" or "unixgram:///path" for another local
	// socket. See the package documentation.
	SyslogAddr string
	// SyslogIdent is the syslog tag (APP-NAME) of every message; default
	// DefaultSyslogIdent. Characters syslog does not allow there become '_'.
	SyslogIdent string
	// SyslogFacility is the facility of every message, by its syslog.conf
	// name: kern, user, mail, daemon (default), auth, syslog, lpr, news,
	// uucp, cron, authpriv, ftp, local0 ... local7.
	SyslogFacility string
}

// withDefaults returns cfg with its zero fields set and checks it.
func (cfg Config) withDefaults() (Config, hclog.Level, error) {
	if cfg.Target == "" {
		cfg.Target = TargetStderr
		if cfg.File != "" {
			cfg.Target = TargetFile
		}
	}
	switch cfg.Target {
	case TargetFile:
		if cfg.File == "" {
			return cfg, 0, fmt.Errorf("%w: target file needs a file", ErrInvalidConfig)
		}
	case TargetStderr:
	case TargetSyslog:
		if cfg.SyslogIdent == "" {
			cfg.SyslogIdent = DefaultSyslogIdent
		}
		if cfg.SyslogFacility == "" {
			cfg.SyslogFacility = DefaultSyslogFacility
		}
		if _, ok := syslogFacilities[cfg.SyslogFacility]; !ok {
			return cfg, 0, fmt.Errorf("%w: syslog facility %q (want daemon, user, local0...local7, ...)", ErrInvalidConfig, cfg.SyslogFacility)
		}
		if _, err := parseSyslogAddr(cfg.SyslogAddr, nil); err != nil {
			return cfg, 0, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	default:
		return cfg, 0, fmt.Errorf("%w: target %q (want file, stderr or syslog)", ErrInvalidConfig, cfg.Target)
	}
	if cfg.Format == "" {
		cfg.Format = DefaultFormat
	}
	if cfg.Format != FormatText && cfg.Format != FormatJSON {
		return cfg, 0, fmt.Errorf("%w: format %q (want text or json)", ErrInvalidConfig, cfg.Format)
	}
	if cfg.Level == "" {
		cfg.Level = DefaultLevel
	}
	level, err := ParseLevel(cfg.Level)
	if err != nil {
		return cfg, 0, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if cfg.MaxSize < 0 || cfg.MaxFiles < 0 || cfg.Buffer < 0 || cfg.BufferBytes < 0 || cfg.StallTimeout < 0 {
		return cfg, 0, fmt.Errorf("%w: max size, max files, buffer sizes and stall timeout must not be negative", ErrInvalidConfig)
	}
	if cfg.MaxFiles == 0 {
		cfg.MaxFiles = DefaultMaxFiles
	}
	if cfg.Buffer == 0 {
		cfg.Buffer = DefaultBuffer
	}
	if cfg.BufferBytes == 0 {
		cfg.BufferBytes = DefaultBufferBytes
	}
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = DefaultStallTimeout
	}
	return cfg, level, nil
}

// ParseLevel maps a level name (trace, debug, info, warn or warning, error;
// any case) or a Net::Server log_level (0 error, 1 warn, 2 and 3 info,
// 4 debug) to an hclog level.
func ParseLevel(s string) (hclog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "trace":
		return hclog.Trace, nil
	case "debug", "4":
		return hclog.Debug, nil
	case "info", "2", "3":
		return hclog.Info, nil
	case "warn", "warning", "1":
		return hclog.Warn, nil
	case "error", "0":
		return hclog.Error, nil
	}
	return hclog.NoLevel, fmt.Errorf("level %q (want trace, debug, info, warn, error or 0-4)", s)
}
