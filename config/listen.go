package config

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// ParseListen parses one port value in Net::Server's syntax:
//
//	7001                  port on defaultHost
//	127.0.0.1:7001        host and port ("|" also separates: 127.0.0.1|7001)
//	*:7001, :7001         every address (Addr ":7001"); 0.0.0.0:7001 is IPv4's "any"
//	[::1]:7001            an IPv6 address, in brackets
//	localhost:0           any free port
//	host:port/udp         a protocol: tcp, udp, unix or unixdgram
//	host:port/tcp/IPv6    an address family: IPv4, IPv6 or IPv* (either)
//	/run/echo.sock|unix   a UNIX socket; relative paths resolve against dir
//	var/run/q.sock        a UNIX socket too, when defaultProto is unix or the value holds a "/"
//
// defaultHost ("" or "*": every address) applies to a bare port, and
// defaultProto ("": tcp) to a value that names no protocol. Port numbers
// must be numeric (0-65535); service names such as "http" are refused, and
// so are ssl and ssleay: nsfd passes sockets to workers, which terminate TLS
// themselves. The error quotes value and says what is wrong with it.
func ParseListen(value, defaultHost, defaultProto, dir string) (Listen, error) {
	return parseListen(value, defaultHost, defaultProto, 0, dir)
}

// parseListen is ParseListen with a default address family (the ipv key)
// for values that name none.
func parseListen(value, defHost, defProto string, defIPv int, dir string) (Listen, error) {
	fail := func(format string, args ...any) (Listen, error) {
		return Listen{}, fmt.Errorf("%q: %s", value, fmt.Sprintf(format, args...))
	}
	s := strings.TrimSpace(value)
	if s == "" {
		return fail("empty port")
	}
	if strings.ContainsAny(s, "\x00\n") {
		return fail("control character in port")
	}

	ipv, hasIPv := 0, false
	if rest, tok, ok := cutLast(s); ok {
		if v, ok := parseIPvToken(tok); ok {
			ipv, hasIPv, s = v, true, rest
		}
	}
	proto := ""
	if rest, tok, ok := cutLast(s); ok {
		lt := strings.ToLower(tok)
		switch {
		case isProto(lt):
			proto, s = lt, rest
		case isTLSProto(lt):
			return fail("proto %q is not supported, terminate TLS in the worker", tok)
		case isWord(tok) && endsInDigit(rest):
			return fail("unknown proto %q (want tcp, udp, unix or unixdgram)", tok)
		}
	}
	if proto == "" {
		dp := strings.ToLower(strings.TrimSpace(defProto))
		switch {
		case dp == "":
			dp = ProtoTCP
		case isTLSProto(dp):
			return fail("proto %q is not supported, terminate TLS in the worker", defProto)
		case !isProto(dp):
			return fail("unknown proto %q (want tcp, udp, unix or unixdgram)", defProto)
		}
		proto = dp
		if strings.Contains(s, "/") {
			switch dp {
			case ProtoTCP:
				proto = ProtoUnix
			case ProtoUDP:
				proto = ProtoUnixgram
			}
		}
	}

	if proto == ProtoUnix || proto == ProtoUnixgram {
		if ipv != 0 {
			return fail("IPv%d does not apply to a UNIX socket", ipv)
		}
		if s == "" {
			return fail("empty socket path")
		}
		path := s
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
		return Listen{Proto: proto, Addr: filepath.Clean(path)}, nil
	}

	host, port, bracketed := "", "", false
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return fail(`IPv6 address without "]"`)
		}
		host, bracketed = s[1:end], true
		rest := s[end+1:]
		if rest == "" || rest[0] != ':' && rest[0] != '|' {
			return fail("no port after the IPv6 address (write [%s]:PORT)", host)
		}
		port = rest[1:]
	} else if i := strings.LastIndexAny(s, ":|"); i >= 0 {
		host, port = s[:i], s[i+1:]
		if strings.Contains(host, ":") {
			return fail("write an IPv6 address in brackets, e.g. [::1]:80")
		}
	} else {
		host, port = strings.TrimSpace(defHost), s
		if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
			host, bracketed = host[1:len(host)-1], true
		}
	}
	if host == "*" {
		host = ""
	}
	var addr netip.Addr
	if host != "" {
		a, err := netip.ParseAddr(host)
		switch {
		case err == nil:
			addr = a
		case bracketed:
			return fail("%q is not an IPv6 address", host)
		case !hostName.MatchString(host):
			return fail("%q is not a host name or address", host)
		}
		if bracketed && !addr.Is6() {
			return fail("%q in brackets is not an IPv6 address", host)
		}
	}

	if port == "" {
		return fail("no port number")
	}
	if !isDigits(port) {
		if isWord(port) {
			return fail("service names such as %q are not supported, use a port number", port)
		}
		return fail("%q is not a port number", port)
	}
	n, err := strconv.ParseUint(port, 10, 32)
	if err != nil || n > 65535 {
		return fail("port %s is out of range 0-65535", port)
	}

	if !hasIPv {
		ipv = defIPv
	}
	if addr.IsValid() {
		switch {
		case ipv == 4 && !addr.Unmap().Is4():
			return fail("IPv4 with the IPv6 address %s", host)
		case ipv == 6 && addr.Is4():
			return fail("IPv6 with the IPv4 address %s", host)
		}
	}
	return Listen{Proto: proto, Addr: net.JoinHostPort(host, strconv.FormatUint(n, 10)), IPv: ipv}, nil
}

// hostName matches a DNS host name.
var hostName = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$`)

// cutLast splits s at its last "/" or "|".
func cutLast(s string) (rest, tok string, ok bool) {
	i := strings.LastIndexAny(s, "/|")
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}

// parseIPvToken reads Net::Server's IPv4, IPv6 or IPv* (either).
func parseIPvToken(tok string) (int, bool) {
	switch strings.ToLower(tok) {
	case "ipv4":
		return 4, true
	case "ipv6":
		return 6, true
	case "ipv*", "ipv46", "ipv64":
		return 0, true
	}
	return 0, false
}

// parseIPv reads the ipv key: 4, 6 or * (also IPv4, IPv6, IPv*, 46).
func parseIPv(s string) (int, error) {
	switch strings.ToLower(s) {
	case "4", "ipv4":
		return 4, nil
	case "6", "ipv6":
		return 6, nil
	case "*", "46", "64", "ipv*", "ipv46", "ipv64", "any":
		return 0, nil
	}
	return 0, fmt.Errorf("%q is not an address family (want 4, 6 or *)", s)
}

func isProto(s string) bool {
	switch s {
	case ProtoTCP, ProtoUDP, ProtoUnix, ProtoUnixgram:
		return true
	}
	return false
}

func isTLSProto(s string) bool {
	switch s {
	case "ssl", "ssleay", "tls", "ssl_tcp":
		return true
	}
	return false
}

// isWord tells a name such as "http" or "x-proto": letters, digits, "_"
// and "-", starting with a letter.
func isWord(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_' || r == '-' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func endsInDigit(s string) bool {
	return s != "" && s[len(s)-1] >= '0' && s[len(s)-1] <= '9'
}

// checkHost validates the host key: "*", an address or a host name.
func checkHost(h string) error {
	_, err := parseListen("0", h, ProtoTCP, 0, "")
	if err != nil {
		return fmt.Errorf("%q is not a host name or address", h)
	}
	return nil
}
