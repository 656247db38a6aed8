package logging

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Syslog severities (RFC 5424 section 6.2.1) that records are sent with.
const (
	severityErr     = 3
	severityWarning = 4
	severityNotice  = 5
	severityInfo    = 6
	severityDebug   = 7
)

// syslogFacilities are the facilities by their syslog.conf names.
var syslogFacilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// localSyslogPaths are the local syslog sockets tried, in order, for an
// empty Config.SyslogAddr: Linux, macOS, the BSDs.
var localSyslogPaths = []string{"/dev/log", "/var/run/syslog", "/var/run/log"}

const (
	syslogDialTimeout  = 5 * time.Second
	syslogWriteTimeout = 10 * time.Second
	syslogMinBackoff   = 100 * time.Millisecond
	syslogMaxBackoff   = 10 * time.Second

	// maxDatagram is the longest message sent in one datagram (udp,
	// unixgram); longer ones are cut, at a character boundary. It stays
	// under UDP's 65,507-byte limit.
	maxDatagram = 65000
	// maxAppName is RFC 5424's limit on APP-NAME, applied to the ident.
	maxAppName = 48
	// syslogSDID is the SD-ID of a worker line's structured data. SD-IDs
	// without "@" are IANA's to assign; 32473 is the enterprise number
	// RFC 5612 reserves for documentation, nsfd having none of its own.
	syslogSDID = "nsfd@32473"
)

// syslogFraming is how messages are delimited on a connection.
type syslogFraming int

const (
	framingDatagram syslogFraming = iota // one message per datagram
	framingOctet                         // RFC 6587 octet counting: "LEN SP MSG"
	framingNUL                           // a NUL after each message, as glibc's syslog(3) on a stream socket
)

// syslogDest is one address to dial.
type syslogDest struct{ network, addr string }

// syslogAddr is a parsed Config.SyslogAddr.
type syslogAddr struct {
	dests  []syslogDest // tried in order; the first that connects is used
	remote bool         // udp or tcp: RFC 5424 messages; else local-socket messages
}

// parseSyslogAddr parses a Config.SyslogAddr: empty for the local sockets,
// udp://host:port, tcp://host:port, unix:///path (a datagram socket, or
// failing that a stream socket) or unixgram:///path.
func parseSyslogAddr(s string, local []string) (syslogAddr, error) {
	if s == "" {
		var a syslogAddr
		for _, p := range local {
			a.dests = append(a.dests, syslogDest{"unixgram", p}, syslogDest{"unix", p})
		}
		return a, nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return syslogAddr{}, fmt.Errorf("syslog address %q (want udp://host:port, tcp://host:port or unix:///path)", s)
	}
	switch u.Scheme {
	case "udp", "tcp":
		_, port, err := net.SplitHostPort(u.Host)
		if n, perr := strconv.ParseUint(port, 10, 16); err != nil || perr != nil || n == 0 || (u.Path != "" && u.Path != "/") {
			return syslogAddr{}, fmt.Errorf("syslog address %q: %s needs a host and a port", s, u.Scheme)
		}
		return syslogAddr{dests: []syslogDest{{u.Scheme, u.Host}}, remote: true}, nil
	case "unix", "unixgram":
		if u.Host != "" || !filepath.IsAbs(u.Path) {
			return syslogAddr{}, fmt.Errorf("syslog address %q: %s needs an absolute path, as in %s:///dev/log", s, u.Scheme, u.Scheme)
		}
		a := syslogAddr{dests: []syslogDest{{"unixgram", u.Path}}}
		if u.Scheme == "unix" {
			a.dests = append(a.dests, syslogDest{"unix", u.Path})
		}
		return a, nil
	}
	return syslogAddr{}, fmt.Errorf("syslog address %q: scheme %q (want udp, tcp or unix)", s, u.Scheme)
}

// syslogTarget sends each record as one syslog message. It connects at
// Open; when the connection fails it connects again, at once for the record
// whose write failed (which is then written a second time, once), later ones
// after a back-off that doubles from syslogMinBackoff to syslogMaxBackoff.
// Records written during the back-off fail at once, and so are counted as
// dropped.
type syslogTarget struct {
	addr     syslogAddr
	json     bool // records are in the json format
	facility int
	ident    string // sanitized
	hostname string // sanitized, for RFC 5424
	pid      int    // the master's

	conn    net.Conn
	framing syslogFraming
	backoff time.Duration
	retryAt time.Time
	lastErr error

	minBackoff, maxBackoff time.Duration
	msg, frame             []byte // reused buffers
}

var _ target = (*syslogTarget)(nil)

// openSyslogTarget connects to cfg.SyslogAddr, or to the first of local
// that accepts a connection when it is empty. A local socket that cannot be
// connected to is an error: there is no syslog daemon to speak to. A remote
// one is not: it may come up later, and is tried again with back-off.
func openSyslogTarget(cfg Config, local []string) (*syslogTarget, error) {
	a, err := parseSyslogAddr(cfg.SyslogAddr, local)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	host, _ := os.Hostname()
	t := &syslogTarget{
		addr:       a,
		json:       cfg.Format == FormatJSON,
		facility:   syslogFacilities[cfg.SyslogFacility],
		ident:      sanitizeSyslogName(cfg.SyslogIdent, maxAppName),
		hostname:   sanitizeSyslogName(host, 255),
		pid:        os.Getpid(),
		minBackoff: syslogMinBackoff,
		maxBackoff: syslogMaxBackoff,
	}
	if err := t.connect(true); err != nil && !a.remote {
		return nil, err
	}
	return t, nil
}

// Write sends the record as one message. A connection the receiver closed
// is replaced before the write; see syslogTarget for failures.
func (t *syslogTarget) Write(e *entry, p []byte) error {
	msg := t.message(e, p)
	if err := t.connect(false); err != nil {
		return err
	}
	if t.framing != framingDatagram && peerClosed(t.conn) {
		t.disconnect()
		if err := t.connect(true); err != nil {
			return err
		}
	}
	err := t.send(msg)
	if err == nil {
		return nil
	}
	t.disconnect()
	if t.connect(true) == nil {
		if err = t.send(msg); err == nil {
			return nil
		}
		t.disconnect()
	}
	t.lastErr = fmt.Errorf("write to syslog: %w", err)
	t.failed()
	return t.lastErr
}

// Reopen closes the connection and connects again.
func (t *syslogTarget) Reopen() error {
	t.disconnect()
	return t.connect(true)
}

// Close closes the connection.
func (t *syslogTarget) Close() error {
	if t.conn == nil {
		return nil
	}
	err := t.conn.Close()
	t.conn = nil
	return err
}

// connect connects if there is no connection: at once with force, else
// only once the back-off has passed.
func (t *syslogTarget) connect(force bool) error {
	if t.conn != nil {
		return nil
	}
	if !force && time.Now().Before(t.retryAt) {
		return fmt.Errorf("syslog not connected, retrying in %v: %w", time.Until(t.retryAt).Round(time.Millisecond), t.lastErr)
	}
	var first error
	tried := make([]string, 0, len(t.addr.dests))
	for _, d := range t.addr.dests {
		c, err := net.DialTimeout(d.network, d.addr, syslogDialTimeout)
		if err == nil {
			t.conn, t.backoff, t.lastErr = c, 0, nil
			t.framing = framingDatagram
			switch d.network {
			case "tcp":
				t.framing = framingOctet
			case "unix":
				t.framing = framingNUL
			}
			return nil
		}
		if first == nil {
			first = err
		}
		if !slices.Contains(tried, d.addr) {
			tried = append(tried, d.addr)
		}
	}
	if first == nil {
		first = errors.New("no address to connect to")
	}
	t.lastErr = fmt.Errorf("connect to syslog (%s): %w", strings.Join(tried, ", "), first)
	t.failed()
	return t.lastErr
}

// failed starts or doubles the back-off.
func (t *syslogTarget) failed() {
	t.backoff = min(max(2*t.backoff, t.minBackoff), t.maxBackoff)
	t.retryAt = time.Now().Add(t.backoff)
}

func (t *syslogTarget) disconnect() {
	if t.conn != nil {
		t.conn.Close()
		t.conn = nil
	}
}

// send writes msg in one write, framed for the connection.
func (t *syslogTarget) send(msg []byte) error {
	b := msg
	switch t.framing {
	case framingOctet:
		t.frame = strconv.AppendInt(t.frame[:0], int64(len(msg)), 10)
		t.frame = append(append(t.frame, ' '), msg...)
		b = t.frame
	case framingNUL:
		b = append(msg, 0)
	default:
		if len(b) > maxDatagram {
			b = b[:runeCut(b[:maxDatagram])]
		}
	}
	if err := t.conn.SetWriteDeadline(time.Now().Add(syslogWriteTimeout)); err != nil {
		return err
	}
	_, err := t.conn.Write(b)
	return err
}

// message renders e, which p holds in the Sink's format, as a syslog
// message. Over udp and tcp it is RFC 5424:
//
//	<30>1 2026-11-24T19:15:00.125Z host nsfd 999 - [nsfd@32473 daemon="echo" pid="1234" stream="stdout"] echo[1234] stdout: the line
//	<30>1 2026-11-24T19:15:00.123Z host nsfd 999 - - nsfd.echo: worker started: pid=1234
//
// and on a local socket it is what syslog(3) writes there, RFC 3164 without
// the hostname, in local time:
//
//	<30>Nov 24 19:15:00 nsfd[999]: echo[1234] stdout: the line
//
// where 999 is the master's pid and nsfd the ident. The message text is the
// record as the file has it without its time (and, for a master record in
// the text format, without its level, which the severity carries); in the
// json format it is the whole JSON object.
func (t *syslogTarget) message(e *entry, p []byte) []byte {
	ts := e.time
	if ts.IsZero() {
		ts = time.Now()
	}
	b := append(t.msg[:0], '<')
	b = strconv.AppendInt(b, int64(t.facility*8+severity(e)), 10)
	b = append(b, '>')
	if t.addr.remote {
		b = append(b, "1 "...)
		b = ts.UTC().AppendFormat(b, TimeLayout)
		b = append(b, ' ')
		b = append(b, t.hostname...)
		b = append(b, ' ')
		b = append(b, t.ident...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(t.pid), 10)
		b = append(b, " - "...)
		if e.master {
			b = append(b, '-')
		} else {
			b = append(b, "["+syslogSDID+` daemon="`...)
			b = appendSDValue(b, e.daemon)
			b = append(b, `" pid="`...)
			b = strconv.AppendInt(b, int64(e.pid), 10)
			b = append(b, `" stream="`...)
			b = appendSDValue(b, e.stream)
			b = append(b, `"]`...)
		}
	} else {
		b = ts.Local().AppendFormat(b, time.Stamp)
		b = append(b, ' ')
		b = append(b, t.ident...)
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(t.pid), 10)
		b = append(b, ']', ':')
	}
	if text := t.text(e, p); len(text) > 0 {
		b = append(b, ' ')
		b = append(b, text...)
	}
	t.msg = b
	return b
}

// text is the message text of a record: see message.
func (t *syslogTarget) text(e *entry, p []byte) []byte {
	p = bytes.TrimSuffix(p, []byte{'\n'})
	if t.json {
		return p
	}
	_, p, _ = bytes.Cut(p, []byte{' '}) // the time
	if e.master && len(p) > 0 && p[0] == '[' {
		if _, rest, ok := bytes.Cut(p, []byte{']'}); ok {
			p = bytes.TrimLeft(rest, " ")
		}
	}
	return p
}

// severity maps a record to a syslog severity: a master record's level
// (trace and debug to debug, info to info, warn to warning, error to err);
// a worker's stdout to info and its stderr to notice, so that a filter can
// tell them apart and both pass one that keeps info.
func severity(e *entry) int {
	if !e.master {
		if e.stream == StreamStderr {
			return severityNotice
		}
		return severityInfo
	}
	switch l := e.lvl(); {
	case l <= hclog.Debug:
		return severityDebug
	case l == hclog.Info:
		return severityInfo
	case l == hclog.Warn:
		return severityWarning
	default:
		return severityErr
	}
}

// appendSDValue appends s as an RFC 5424 PARAM-VALUE: '"', '\' and ']'
// escaped with a backslash.
func appendSDValue(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\', ']':
			b = append(b, '\\', c)
		default:
			b = append(b, c)
		}
	}
	return b
}

// sanitizeSyslogName makes s a valid RFC 5424 header field that a 3164
// parser reads back too: printable ASCII without space, ':', '[' or ']'
// (others become '_'), at most limit bytes, "-" if empty.
func sanitizeSyslogName(s string, limit int) string {
	if s == "" {
		return "-"
	}
	b := []byte(s)
	if len(b) > limit {
		b = b[:limit]
	}
	for i, c := range b {
		if c <= ' ' || c > '~' || c == ':' || c == '[' || c == ']' {
			b[i] = '_'
		}
	}
	return string(b)
}
