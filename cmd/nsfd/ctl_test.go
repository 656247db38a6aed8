//go:build linux

package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nsfd/nsfd/prefork"
	"github.com/nsfd/nsfd/supervisor"
)

// A worker's STATUS= can neither act on the terminal, nor add a column or
// a line to the status table, nor fill the screen.
func TestPrintStatusCells(t *testing.T) {
	st := supervisor.Status{Version: "v", Node: "n", Started: time.Now(), Daemons: []supervisor.DaemonStatus{{
		Name: "d\x1b[2J", State: "running", Listeners: []string{"tcp 127.0.0.1:1"},
		Workers: []prefork.WorkerStatus{
			{PID: 1, State: "idle", Started: time.Now(), Status: "a\tfake column\x1b]0;t\x07\u202e"},
			{PID: 2, State: "idle", Started: time.Now(), Status: strings.Repeat("€", 2000)},
		},
	}}}
	var b bytes.Buffer
	printStatus(&b, st)
	out := b.String()
	for _, want := range []string{`d\x1b[2J`, `a\tfake column\x1b]0;t\x07\u202e`} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.ContainsAny(out, "\x1b\u202e") || strings.Count(out, "\t") > 0 {
		t.Errorf("raw escapes or tabs in the table:\n%q", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if len(line) > 300 {
			t.Errorf("a line of %d bytes: the STATUS text is not clipped", len(line))
		}
	}
	if !strings.Contains(out, strings.Repeat("€", 40)+"…") {
		t.Errorf("the long STATUS text is not clipped on a character boundary with a mark:\n%s", out)
	}
}

// A saturated pool says so under its row; one with room does not.
func TestPrintStatusSaturated(t *testing.T) {
	t.Parallel()
	d := supervisor.DaemonStatus{Name: "web", State: "running", Policy: prefork.PolicyOptions{MinServers: 1, MaxServers: 2},
		Workers: []prefork.WorkerStatus{{PID: 1, State: "busy"}, {PID: 2, State: "busy"}}}
	for _, saturated := range []bool{false, true} {
		d.Saturated = saturated
		var b bytes.Buffer
		printStatus(&b, supervisor.Status{Daemons: []supervisor.DaemonStatus{d}})
		if got := strings.Contains(b.String(), "saturated: all 2 workers busy at max_servers"); got != saturated {
			t.Errorf("saturated %v, text:\n%s", saturated, b.String())
		}
	}
}
