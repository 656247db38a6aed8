package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nsfd/nsfd/prefork"
	"github.com/nsfd/nsfd/registry"
)

// fakePools is an Options.NewPool whose pools run no process: they record
// what the master asks of them.
type fakePools struct {
	mu    sync.Mutex
	pools map[string]*fakePool       // the latest pool of each daemon
	made  []string                   // daemons in the order their pools were made
	stops []string                   // daemons in the order their pools' Stop began
	fail  map[string]error           // NewPool of these daemons fails with this
	gates map[string]chan struct{}   // Stop of these daemons waits until the channel is closed
	opens []func()                   // open every gate
	hooks map[string]func(*fakePool) // run by NewPool on the new pool of these daemons
}

func newFakePools() *fakePools {
	return &fakePools{
		pools: map[string]*fakePool{},
		fail:  map[string]error{},
		gates: map[string]chan struct{}{},
		hooks: map[string]func(*fakePool){},
	}
}

// new is the Options.NewPool.
func (f *fakePools) new(cfg prefork.Config) (Pool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail[cfg.Name]; err != nil {
		return nil, err
	}
	p := &fakePool{f: f, cfg: cfg, policy: cfg.Policy, maxRequests: cfg.MaxRequests, settled: make(chan struct{})}
	if h := f.hooks[cfg.Name]; h != nil {
		h(p)
	}
	f.pools[cfg.Name] = p
	f.made = append(f.made, cfg.Name)
	return p, nil
}

// pool returns daemon name's latest pool; the test fails if it has none.
func (f *fakePools) pool(tb testing.TB, name string) *fakePool {
	tb.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.pools[name]
	if p == nil {
		tb.Fatalf("no pool was made for %s", name)
	}
	return p
}

// madeOrder returns the daemons in the order their pools were made.
func (f *fakePools) madeOrder() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.made)
}

// stopOrder returns the daemons in the order their pools' Stop began.
func (f *fakePools) stopOrder() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.stops)
}

// gate makes the Stop of daemon name's pools wait until the returned
// function is called.
func (f *fakePools) gate(name string) (open func()) {
	c := make(chan struct{})
	open = sync.OnceFunc(func() { close(c) })
	f.mu.Lock()
	f.gates[name] = c
	f.opens = append(f.opens, open)
	f.mu.Unlock()
	return open
}

// openGates opens every gate: nothing waits for the test any more.
func (f *fakePools) openGates() {
	f.mu.Lock()
	opens := slices.Clone(f.opens)
	f.mu.Unlock()
	for _, open := range opens {
		open()
	}
}

// fakePool is a Pool without workers.
type fakePool struct {
	f *fakePools

	mu          sync.Mutex
	cfg         prefork.Config
	calls       []string // "start", "stop", "restart", "update", "set-policy", "resize"
	policy      prefork.PolicyOptions
	maxRequests int
	state       prefork.PoolState
	settled     chan struct{}
	restartErr  error // Restart's answer
}

var _ Pool = (*fakePool)(nil)

func (p *fakePool) record(call string) {
	p.mu.Lock()
	p.calls = append(p.calls, call)
	p.mu.Unlock()
}

// Calls returns what the master asked of the pool, in order.
func (p *fakePool) Calls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// config returns the pool's configuration as last set.
func (p *fakePool) config() prefork.Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

func (p *fakePool) Start(ctx context.Context) error {
	p.record("start")
	p.mu.Lock()
	p.state = prefork.PoolRunning
	obs := p.cfg.Observer
	p.mu.Unlock()
	close(p.settled)
	if obs != nil {
		obs(prefork.Event{Kind: prefork.EventState, Pool: p.cfg.Name, State: prefork.PoolRunning})
	}
	return nil
}

func (p *fakePool) Stop(ctx context.Context) error {
	p.f.mu.Lock()
	p.f.stops = append(p.f.stops, p.cfg.Name)
	gate := p.f.gates[p.cfg.Name]
	p.f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	p.record("stop")
	p.mu.Lock()
	p.state = prefork.PoolStopped
	p.mu.Unlock()
	return nil
}

func (p *fakePool) Restart(ctx context.Context) error {
	p.record("restart")
	return p.restartErr
}

func (p *fakePool) Update(ctx context.Context, cfg prefork.Config) error {
	p.record("update")
	p.mu.Lock()
	defer p.mu.Unlock()
	cfg.Name = p.cfg.Name
	p.cfg, p.policy, p.maxRequests = cfg, cfg.Policy, cfg.MaxRequests
	return nil
}

func (p *fakePool) SetPolicy(ctx context.Context, o prefork.PolicyOptions, maxRequests, jitter int) error {
	if err := o.Validate(); err != nil {
		return err
	}
	p.record("set-policy")
	p.mu.Lock()
	defer p.mu.Unlock()
	p.policy, p.maxRequests = o, maxRequests
	return nil
}

func (p *fakePool) Resize(ctx context.Context, f func(prefork.PolicyOptions) (prefork.PolicyOptions, error)) (prefork.PolicyOptions, error) {
	p.record("resize")
	p.mu.Lock()
	defer p.mu.Unlock()
	o, err := f(p.policy)
	if err == nil {
		err = o.Validate()
	}
	if err != nil {
		return prefork.PolicyOptions{}, err
	}
	p.policy = o
	return o, nil
}

// Brief is Status: the fake has no accounting.
func (p *fakePool) Brief(ctx context.Context) (prefork.Status, error) { return p.Status(ctx) }

// Status shows one idle worker a min_servers.
func (p *fakePool) Status(ctx context.Context) (prefork.Status, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := prefork.Status{Name: p.cfg.Name, State: p.state, Policy: p.policy}
	for i := range p.policy.MinServers {
		st.Workers = append(st.Workers, prefork.WorkerStatus{PID: 1000 + i, Slot: i, State: prefork.StateIdle.String()})
	}
	return st, nil
}

func (p *fakePool) Settled() <-chan struct{} { return p.settled }

// noProcs is a process backend that starts nothing: the fake pools never
// ask it, the tests only check it is handed to them.
type noProcs struct{}

var _ prefork.Procs = noProcs{}

func (noProcs) Start(context.Context, prefork.Command) (*prefork.Process, error) {
	return nil, errors.New("no processes in these tests")
}

func (noProcs) Drop(any) {}

// testMaster is a Supervisor on fake pools, its loop running (no control
// socket, no watcher, no registry connection), with an etc/ of its own.
type testMaster struct {
	*Supervisor
	t     testing.TB
	dir   string // holds etc/ and var/
	etc   string
	pools *fakePools

	cancel context.CancelFunc // ends the loop: every daemon drains
	done   chan struct{}      // closed when the loop has returned
}

// testMasterIni is the nsfd.ini of a testMaster.
const testMasterIni = "[nsfd]\nrun_dir = ../var/run\n[log]\nfile = ../var/log/nsfd.log\nlevel = debug\n"

// startTestMaster writes files (name -> text) into a new etc/, runs the
// master's loop on it until the test ends, and returns once the first
// reload is done. before, if not nil, may prepare the fake pools first.
func startTestMaster(t testing.TB, files map[string]string, before func(*fakePools)) *testMaster {
	t.Helper()
	dir, err := os.MkdirTemp("", "nsfd") // short: UNIX socket paths have a limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	tm := &testMaster{t: t, dir: dir, etc: filepath.Join(dir, "etc"), pools: newFakePools()}
	if err := os.Mkdir(tm.etc, 0o755); err != nil {
		t.Fatal(err)
	}
	tm.write("nsfd.ini", testMasterIni)
	for name, text := range files {
		tm.write(name, text)
	}
	if before != nil {
		before(tm.pools)
	}
	tm.Supervisor = newTestMaster(t, tm.etc, Options{Shim: []string{"/bin/false"}, NewPool: tm.pools.new, Procs: noProcs{}})
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	tm.cancel, tm.done = cancel, make(chan struct{})
	go func() {
		defer close(tm.done)
		tm.serve(ctx, nil, func(context.Context) { close(started) })
	}()
	t.Cleanup(func() { tm.pools.openGates(); tm.stopLoop(); tm.waitLoop() })
	select {
	case <-started:
	case <-tm.done:
		t.Fatal("the master's loop ended before its first reload")
	}
	return tm
}

// stopLoop ends the master's loop, as SIGTERM does; waitLoop waits for it
// to return, every daemon drained.
func (tm *testMaster) stopLoop() { tm.cancel() }
func (tm *testMaster) waitLoop() { <-tm.done }

// daemonFile is a daemon file: /bin/true on the UNIX socket sock (in the
// test's directory), one server, then the extra lines.
func (tm *testMaster) daemonFile(sock string, extra ...string) string {
	text := fmt.Sprintf("command = /bin/true\nport = %s|unix\nmin_servers = 1\nmax_servers = 2\nmin_spare_servers = 0\nmax_spare_servers = 1\n",
		filepath.Join(tm.dir, sock))
	for _, l := range extra {
		text += l + "\n"
	}
	return text
}

// write puts a file into etc/ the safe way: a temporary name, then a rename.
func (tm *testMaster) write(name, text string) {
	tm.t.Helper()
	tmp := filepath.Join(tm.etc, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		tm.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(tm.etc, name)); err != nil {
		tm.t.Fatal(err)
	}
}

func (tm *testMaster) remove(name string) {
	tm.t.Helper()
	if err := os.Remove(filepath.Join(tm.etc, name)); err != nil {
		tm.t.Fatal(err)
	}
}

func (tm *testMaster) file(name string) string { return filepath.Join(tm.etc, name) }

// reload is `nsfd reload`.
func (tm *testMaster) reload() ReloadResult {
	tm.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := tm.Reload(ctx)
	if err != nil {
		tm.t.Fatal(err)
	}
	return r
}

// status returns the master's status.
func (tm *testMaster) status() Status {
	tm.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := tm.Status(ctx, "")
	if err != nil {
		tm.t.Fatal(err)
	}
	return st
}

// daemon returns name's status, or nil.
func (tm *testMaster) daemon(name string) *DaemonStatus {
	tm.t.Helper()
	st := tm.status()
	for i := range st.Daemons {
		if st.Daemons[i].Name == name {
			return &st.Daemons[i]
		}
	}
	return nil
}

// daemonNames returns the names of the daemons the status lists.
func (tm *testMaster) daemonNames() []string {
	tm.t.Helper()
	var names []string
	for _, d := range tm.status().Daemons {
		names = append(names, d.Name)
	}
	return names
}

// configHash returns the hash of the config daemon name runs on.
func (tm *testMaster) configHash(name string) string {
	tm.t.Helper()
	var hash string
	if err := tm.do(context.Background(), func(context.Context) { hash = tm.daemons[name].cfg.Hash }); err != nil {
		tm.t.Fatal(err)
	}
	return hash
}

// registered returns what the registrar means to register of name, and
// whether it means to keep it registered.
func (tm *testMaster) registered(name string) (registry.Daemon, bool) {
	tm.reg.mu.Lock()
	defer tm.reg.mu.Unlock()
	d := tm.reg.daemons[name]
	if d == nil {
		return registry.Daemon{}, false
	}
	return d.rec, !d.gone
}
