package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/prefork"
	"github.com/nsfd/nsfd/worker"
)

// healthBodyMax bounds what of an http check's answer is read.
const healthBodyMax = 64 << 10

// probeOf is the probe of t's check, the default healthChecks.probe.
func probeOf(t healthTarget, log hclog.Logger) healthProbe {
	if t.check.Kind == config.HealthExec {
		return func(ctx context.Context) error { return execCheck(ctx, t, log) }
	}
	return func(ctx context.Context) error { return httpCheck(ctx, t) }
}

// httpCheck asks for the check's path with GET over the daemon's first
// stream listener, on a connection of its own: healthy on a 2xx answer.
// A connection the master's listener accepts with no worker behind it
// gets no answer, and fails at ctx's end.
func httpCheck(ctx context.Context, t healthTarget) error {
	what := "GET " + t.check.Path
	if t.network == "" {
		return fmt.Errorf("%s: the daemon has no tcp or unix listener", what)
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, t.network, t.address)
		},
		DisableKeepAlives: true,
		// The daemon's own listener, on this host: the check asks
		// whether it answers, not who it is.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}
	defer tr.CloseIdleConnections()
	scheme, host := "http", t.address
	if t.tls {
		scheme = "https"
	}
	if t.network == "unix" {
		host = "localhost"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+host+t.check.Path, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	req.Header.Set("User-Agent", "nsfd-health")
	c := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: no answer within %s", what, t.check.Timeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, healthBodyMax))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s: %d", what, resp.StatusCode)
	}
	return nil
}

// execCheck runs the check's program, as the daemon's user, with
// NSFD_DAEMON, NSFD_ADDRESS and NSFD_LISTENERS in its environment, its
// process group killed at ctx's end: healthy on exit status 0. Its output
// goes to the central log (at debug level while it passes).
func execCheck(ctx context.Context, t healthTarget, log hclog.Logger) error {
	argv := t.check.Command
	what := filepath.Base(argv[0])
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	addr := ""
	if len(t.addresses) > 0 {
		_, addr, _ = strings.Cut(t.addresses[0], ":")
	}
	cmd.Env = append(hookBaseEnv(), worker.EnvDaemon+"="+t.daemon, worker.EnvAddress+"="+addr,
		worker.EnvListeners+"="+strings.Join(t.addresses, " "))
	cmd.Dir = t.cwd
	var out limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: credentialOf(t.creds)}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	lvl := hclog.Debug
	if err != nil {
		lvl = hclog.Info
	}
	sc := bufio.NewScanner(bytes.NewReader(out.b.Bytes()))
	for sc.Scan() {
		log.Log(lvl, "health check output", "line", sc.Text())
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%s: killed, no result within %s", what, t.check.Timeout)
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}

// credentialOf is who an exec check runs as: the daemon's user and
// groups, or nil (the master's) when it sets none or the master is not
// root.
func credentialOf(c config.Creds) *syscall.Credential {
	if (c.UID < 0 && c.GID < 0) || os.Geteuid() != 0 {
		return nil
	}
	cred := &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid()), Groups: []uint32{}}
	if c.UID >= 0 {
		cred.Uid = uint32(c.UID)
	}
	if c.GID >= 0 {
		cred.Gid = uint32(c.GID)
	}
	for _, g := range c.Groups {
		cred.Groups = append(cred.Groups, uint32(g))
	}
	return cred
}

// dialAddress is where to reach listener l from this host: its bound
// address, an unspecified host (0.0.0.0, ::) read as loopback.
func dialAddress(l *prefork.Listener) string {
	a := l.Addr.String()
	host, port, err := net.SplitHostPort(a)
	if err != nil || (l.Proto() != "tcp" && l.Proto() != "udp") {
		return a
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if ip.To4() != nil {
			host = "127.0.0.1"
		} else {
			host = "::1"
		}
		return net.JoinHostPort(host, port)
	}
	return a
}
