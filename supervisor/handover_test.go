package supervisor

import (
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/prefork"
)

// A master of the previous format (version 1) hands over to this binary:
// the migration moves the flat pipe table into the workers and fills in
// what version 1 did not have.
func TestDecodeHandoverV1(t *testing.T) {
	t.Parallel()
	v1 := `{"version":1,"started":"2026-01-02T03:04:05Z","reloads":7,"control_fd":5,
	  "daemons":[{"name":"echo","hash":"abc","listeners":[{"spec":{"Network":"tcp","Address":"127.0.0.1:7001"},"fd":6}],
	    "pool":{"notify_fd":7,"workers":[{"pid":100,"slot":0,"ready":true},{"pid":101,"slot":1}],"spawns":2}}],
	  "pipes":{"100":[8,9]}}`
	h, err := DecodeHandover([]byte(v1))
	if err != nil {
		t.Fatal(err)
	}
	if h.Version != 1 || h.Reloads != 7 || h.ControlFD != 5 || h.ResolverFD != -1 || !h.Started.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("master fields: %+v", h)
	}
	if len(h.Daemons) != 1 || h.Daemons[0].Hash != "abc" || h.Daemons[0].Listeners[0].FD != 6 || h.Daemons[0].Pool.NotifyFD != 7 {
		t.Fatalf("daemons: %+v", h.Daemons)
	}
	ws := h.Daemons[0].Pool.Workers
	if p0, p1 := ws[0].Pipes, ws[1].Pipes; p0.Stdout != 8 || p0.Stderr != 9 || p1.Stdout != -1 || p1.Stderr != -1 {
		t.Errorf("pipes: %+v %+v", ws[0].Pipes, ws[1].Pipes)
	}
	if got := h.fds(); len(got) != 5 { // control, listener, notify, two pipes
		t.Errorf("fds %v", got)
	}
}

func TestHandoverRoundTripAndVersions(t *testing.T) {
	t.Parallel()
	h := &Handover{FromVersion: "v1.2", ControlFD: 3, ResolverFD: 4, Upgrades: 2, Extra: map[string]string{"run_dir": "/run/nsfd"},
		Daemons: []DaemonHandover{{Name: "d", NotifyPath: "/run/nsfd/notify/d", Pool: &prefork.PoolHandover{NotifyFD: -1,
			Workers: []prefork.WorkerHandover{{PID: 42, Pipes: prefork.WorkerPipes{Stdout: 10, Stderr: -1}}}},
			Scale: &DaemonScale{FileMin: 1, FileMax: 3, Min: 2, Max: 4, Zero: true}}, {Name: "p", Pending: pendingPort}}}
	f, err := encodeHandover(h)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeHandover(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != HandoverVersion || got.Upgrades != 2 || got.Daemons[0].Pool.Workers[0].Pipes.Stdout != 10 || got.Extra["run_dir"] != "/run/nsfd" {
		t.Errorf("round trip: %+v", got)
	}
	if sc := got.Daemons[0].Scale; sc == nil || *sc != *h.Daemons[0].Scale || got.Daemons[1].Pending != pendingPort {
		t.Errorf("round trip of the scale and the pending start: %+v", got.Daemons)
	}
	for _, v := range []int{0, HandoverVersion + 1} {
		b, _ := json.Marshal(map[string]int{"version": v})
		if _, err := DecodeHandover(b); !errors.Is(err, ErrHandoverVersion) {
			t.Errorf("version %d: %v", v, err)
		}
	}
}

func TestDiffMaster(t *testing.T) {
	t.Parallel()
	cur := &config.Master{RunDir: "/run/nsfd", Registry: config.Registry{Type: "sqlite", DSN: "a.db"}, Log: config.Log{Level: "info"}}
	next := *cur
	next.Log.Level, next.RunDir, next.Registry.DSN = "warn", "/elsewhere", "other.db"
	c := diffMaster(cur, &next)
	if len(c.Applying) != 2 || c.Applying[0] != "registry.dsn" || c.Applying[1] != "log.level" {
		t.Errorf("applying %v", c.Applying)
	}
	if c.Pending["nsfd.run_dir"] == "" || len(c.Pending) != 1 || len(c.Notes) != 1 {
		t.Errorf("pending %v notes %v", c.Pending, c.Notes)
	}
	if c := diffMaster(cur, cur); c.Applying != nil || c.Pending != nil {
		t.Errorf("no change: %+v", c)
	}
}
