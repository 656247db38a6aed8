package config

import (
	"strings"
	"testing"
)

func TestParseListen(t *testing.T) {
	tests := []struct {
		value, host, proto string
		want               Listen
		err                string // substring of the error; "" for none
	}{
		{value: "7001", want: Listen{Proto: "tcp", Addr: ":7001"}},
		{value: "7001", host: "*", want: Listen{Proto: "tcp", Addr: ":7001"}},
		{value: "7001", host: "127.0.0.1", want: Listen{Proto: "tcp", Addr: "127.0.0.1:7001"}},
		{value: "7001", host: "::1", want: Listen{Proto: "tcp", Addr: "[::1]:7001"}},
		{value: "7001", host: "[::1]", want: Listen{Proto: "tcp", Addr: "[::1]:7001"}},
		{value: " 7001 ", want: Listen{Proto: "tcp", Addr: ":7001"}},
		{value: "0", want: Listen{Proto: "tcp", Addr: ":0"}},
		{value: "localhost:0", want: Listen{Proto: "tcp", Addr: "localhost:0"}},
		{value: "65535", want: Listen{Proto: "tcp", Addr: ":65535"}},
		{value: "007", want: Listen{Proto: "tcp", Addr: ":7"}},
		{value: "127.0.0.1:7001", want: Listen{Proto: "tcp", Addr: "127.0.0.1:7001"}},
		{value: "127.0.0.1|7001", want: Listen{Proto: "tcp", Addr: "127.0.0.1:7001"}},
		{value: "127.0.0.1|7001|udp", want: Listen{Proto: "udp", Addr: "127.0.0.1:7001"}},
		{value: "*:80", want: Listen{Proto: "tcp", Addr: ":80"}},
		{value: ":80", want: Listen{Proto: "tcp", Addr: ":80"}},
		{value: "0.0.0.0:80", want: Listen{Proto: "tcp", Addr: "0.0.0.0:80"}},
		{value: "[::1]:80", want: Listen{Proto: "tcp", Addr: "[::1]:80"}},
		{value: "[::]:80/tcp/IPv6", want: Listen{Proto: "tcp", Addr: "[::]:80", IPv: 6}},
		{value: "[fe80::1%eth0]:80", want: Listen{Proto: "tcp", Addr: "[fe80::1%eth0]:80"}},
		{value: "localhost:7001/udp", want: Listen{Proto: "udp", Addr: "localhost:7001"}},
		{value: "localhost:7001/UDP/IPv4", want: Listen{Proto: "udp", Addr: "localhost:7001", IPv: 4}},
		{value: "localhost:7001/IPv6", want: Listen{Proto: "tcp", Addr: "localhost:7001", IPv: 6}},
		{value: "7001/tcp/IPv*", want: Listen{Proto: "tcp", Addr: ":7001"}},
		{value: "7001", proto: "udp", want: Listen{Proto: "udp", Addr: ":7001"}},
		{value: "/run/echo.sock|unix", want: Listen{Proto: "unix", Addr: "/run/echo.sock"}},
		{value: "/run/echo.sock/unix", want: Listen{Proto: "unix", Addr: "/run/echo.sock"}},
		{value: "/run/echo.sock", want: Listen{Proto: "unix", Addr: "/run/echo.sock"}},
		{value: "run/echo.sock|unix", want: Listen{Proto: "unix", Addr: "/etc/nsfd/run/echo.sock"}},
		{value: "../var/run/q.sock", want: Listen{Proto: "unix", Addr: "/etc/var/run/q.sock"}},
		{value: "var/run/q.sock", proto: "unix", want: Listen{Proto: "unix", Addr: "/etc/nsfd/var/run/q.sock"}},
		{value: "q.sock", proto: "unix", want: Listen{Proto: "unix", Addr: "/etc/nsfd/q.sock"}},
		{value: "q.sock|unixdgram", want: Listen{Proto: "unixdgram", Addr: "/etc/nsfd/q.sock"}},
		{value: "var/log.sock", proto: "udp", want: Listen{Proto: "unixdgram", Addr: "/etc/nsfd/var/log.sock"}},
		{value: "/run/x/tcp/unix", want: Listen{Proto: "unix", Addr: "/run/x/tcp"}},

		{value: "", err: "empty port"},
		{value: "http", err: `service names such as "http" are not supported`},
		{value: "localhost:http", err: `service names such as "http" are not supported`},
		{value: "70000", err: "port 70000 is out of range 0-65535"},
		{value: "99999999999999999999", err: "out of range"},
		{value: "-1", err: `"-1" is not a port number`},
		{value: "443/ssl", err: `proto "ssl" is not supported, terminate TLS in the worker`},
		{value: "443/SSLeay", err: `proto "SSLeay" is not supported`},
		{value: "443", proto: "ssl", err: "terminate TLS in the worker"},
		{value: "443", proto: "sctp", err: `unknown proto "sctp"`},
		{value: "443/sctp", err: `unknown proto "sctp"`},
		{value: "[::1]:80/tcp/IPv4", err: "IPv4 with the IPv6 address ::1"},
		{value: "127.0.0.1:80/IPv6", err: "IPv6 with the IPv4 address 127.0.0.1"},
		{value: "::1:80", err: "write an IPv6 address in brackets"},
		{value: "[::1", err: `IPv6 address without "]"`},
		{value: "[::1]", err: "no port after the IPv6 address"},
		{value: "[127.0.0.1]:80", err: "in brackets is not an IPv6 address"},
		{value: "[host]:80", err: "is not an IPv6 address"},
		{value: "bad host:80", err: "is not a host name or address"},
		{value: "localhost:", err: "no port number"},
		{value: "/run/echo.sock|unix|IPv6", err: "IPv6 does not apply to a UNIX socket"},
		{value: "|unix", err: "empty socket path"},
	}
	for _, tt := range tests {
		got, err := ParseListen(tt.value, tt.host, tt.proto, "/etc/nsfd")
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseListen(%q, %q, %q) = %v, %v; want error %q", tt.value, tt.host, tt.proto, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseListen(%q, %q, %q) = %+v, %v; want %+v", tt.value, tt.host, tt.proto, got, err, tt.want)
			continue
		}
		// What String renders parses back to the same listener.
		again, err := ParseListen(got.String(), "", "", "/elsewhere")
		if err != nil || again != got {
			t.Errorf("ParseListen(%q) round trip = %+v, %v; want %+v", got.String(), again, err, got)
		}
	}
}

func TestListenNetwork(t *testing.T) {
	for _, tt := range []struct {
		l    Listen
		want string
	}{
		{Listen{Proto: "tcp"}, "tcp"},
		{Listen{Proto: "tcp", IPv: 4}, "tcp4"},
		{Listen{Proto: "udp", IPv: 6}, "udp6"},
		{Listen{Proto: "unix"}, "unix"},
		{Listen{Proto: "unixdgram"}, "unixgram"},
	} {
		if got := tt.l.Network(); got != tt.want {
			t.Errorf("%+v.Network() = %q, want %q", tt.l, got, tt.want)
		}
	}
}
