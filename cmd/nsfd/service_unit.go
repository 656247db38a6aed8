package main

// The service files nsfd renders: a systemd unit and a launchd plist.

import (
	"fmt"
	"path/filepath"
	"strings"
)

// render returns the unit or plist for s. It holds no "{{", so
// kardianos/service, which reads it as a template, writes it unchanged.
func (s serviceSpec) render() (string, error) {
	var text string
	var err error
	if s.Manager == managerLaunchd {
		text, err = s.launchdPlist()
	} else {
		text, err = s.systemdUnit()
	}
	if err != nil {
		return "", err
	}
	if strings.Contains(text, "{{") {
		return "", fmt.Errorf("%q or %q: paths with \"{{\" are not supported", s.Bin, s.Etc)
	}
	return text, nil
}

// systemdUnit renders the systemd unit (init/nsfd.service for
// /usr/local/bin/nsfd on /etc/nsfd).
func (s serviceSpec) systemdUnit() (string, error) {
	words := make([]string, 0, 4)
	for _, a := range append([]string{s.Bin}, s.args()...) {
		q, err := systemdQuote(a)
		if err != nil {
			return "", err
		}
		words = append(words, q)
	}
	edit, wanted := "systemctl edit nsfd", "multi-user.target"
	if s.User {
		edit, wanted = "systemctl --user edit nsfd", "default.target"
	}
	var b strings.Builder
	line := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	line("# nsfd, the process supervisor: written by `nsfd service install%s`.", userFlag(s.User))
	line("# Change settings with a drop-in (%s): a reinstall rewrites this file.", edit)
	line("[Unit]")
	line("Description=nsfd process supervisor")
	line("Documentation=https://github.com/nsfd/nsfd")
	if !s.User {
		line("Wants=network-online.target")
		line("After=network-online.target")
	}
	line("")
	line("[Service]")
	line("# The master sends READY=1 once its daemons are up, RELOADING=1 and")
	line("# READY=1 around a reload (SIGHUP), STOPPING=1 when it drains.")
	line("Type=notify")
	line("NotifyAccess=main")
	line("ExecStart=%s", strings.Join(words, " "))
	line("ExecReload=/bin/kill -HUP $MAINPID")
	line("# SIGTERM to the master alone: it drains its workers itself. Whatever")
	line("# is left after TimeoutStopSec gets SIGKILL. Raise it if your daemons'")
	line("# graceful_timeout (10s by default) adds up to more.")
	line("KillMode=mixed")
	line("# The unit's control group is the master's to divide: one group per")
	line("# daemon and per worker, with the daemons' limits (memory_max, ...).")
	line("Delegate=yes")
	line("TimeoutStopSec=%d", serviceStopTimeout)
	line("Restart=on-failure")
	line("RestartSec=1")
	line("")
	line("[Install]")
	line("WantedBy=%s", wanted)
	return b.String(), nil
}

// systemdQuote quotes one word of an ExecStart= line: "%" and "$" are
// doubled (no specifier or variable expansion), and a word with blanks,
// quotes, backslashes or ";" is double-quoted with C-style escapes.
func systemdQuote(s string) (string, error) {
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", fmt.Errorf("%q: control characters are not supported in a unit", s)
	}
	s = strings.NewReplacer("%", "%%", "$", "$$").Replace(s)
	if s != "" && !strings.ContainsAny(s, " \t\"'\\;") {
		return s, nil
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`, nil
}

// launchdPlist renders the launchd plist (init/com.nsfd.nsfd.plist for
// /usr/local/bin/nsfd on /etc/nsfd).
func (s serviceSpec) launchdPlist() (string, error) {
	for _, a := range []string{s.Bin, s.Etc} {
		if strings.ContainsFunc(a, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return "", fmt.Errorf("%q: control characters are not supported in a plist", a)
		}
	}
	logFile := "/var/log/nsfd.stderr.log"
	if s.User {
		logFile = filepath.Join(s.Home, "Library/Logs/nsfd.stderr.log")
	}
	var b strings.Builder
	line := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	line(`<?xml version="1.0" encoding="UTF-8"?>`)
	line(`<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">`)
	line("<!-- nsfd, the process supervisor: written by `nsfd service install%s`. -->", userFlag(s.User))
	line(`<plist version="1.0">`)
	line(`<dict>`)
	line("\t<key>Label</key>")
	line("\t<string>%s</string>", launchdLabel)
	line("\t<key>ProgramArguments</key>")
	line("\t<array>")
	for _, a := range append([]string{s.Bin}, s.args()...) {
		line("\t\t<string>%s</string>", xmlEscaper.Replace(a))
	}
	line("\t</array>")
	line("\t<key>RunAtLoad</key>")
	line("\t<true/>")
	line("\t<!-- Restarted when it fails; a drain after SIGTERM exits 0 and stays down. -->")
	line("\t<key>KeepAlive</key>")
	line("\t<dict>")
	line("\t\t<key>SuccessfulExit</key>")
	line("\t\t<false/>")
	line("\t</dict>")
	line("\t<!-- SIGTERM drains every daemon; SIGKILL after this many seconds. -->")
	line("\t<key>ExitTimeOut</key>")
	line("\t<integer>%d</integer>", serviceStopTimeout)
	line("\t<!-- Only what the master prints before its central log is open. -->")
	line("\t<key>StandardOutPath</key>")
	line("\t<string>%s</string>", xmlEscaper.Replace(logFile))
	line("\t<key>StandardErrorPath</key>")
	line("\t<string>%s</string>", xmlEscaper.Replace(logFile))
	line(`</dict>`)
	line(`</plist>`)
	return b.String(), nil
}

// xmlEscaper escapes text for a plist <string>.
var xmlEscaper = strings.NewReplacer(`&`, "&amp;", `<`, "&lt;", `>`, "&gt;", `"`, "&quot;", `'`, "&apos;")
