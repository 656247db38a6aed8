package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nsfd/nsfd/config"
	"github.com/nsfd/nsfd/prefork"
)

// hookQueue bounds the hooks waiting for a free runner; past it they are
// dropped and logged, so that a storm of restarts never grows memory.
const hookQueue = 64

// hookOutputMax bounds what of a hook's output reaches the central log.
const hookOutputMax = 64 << 10

// hookEvent is one run of the hooks of an event.
type hookEvent struct {
	daemon, event string
	pid           int
	exitStatus    string // "1", "signal KILL", or ""
	reason        string
}

// hooks runs the on_fatal, on_restart and on_recover commands: the
// daemon's own, then the master's [hooks] ones. It learns of events from
// the pools' observer, on their goroutines, and never blocks them: an
// event is queued, and a bounded number of runners run the commands, each
// under a timeout, its process group killed when it runs out. A failing or
// hanging hook costs a runner, never a supervision step.
type hooks struct {
	cfg config.Hooks
	log hclog.Logger
	q   chan hookEvent

	mu   sync.Mutex
	cmds map[string]config.HookCommands // daemon -> its own hooks
	down map[string]prefork.PoolState   // daemon -> the fatal or backoff state it has not recovered from

	stop context.CancelFunc
	wg   sync.WaitGroup
}

func newHooks(cfg config.Hooks, log hclog.Logger) *hooks {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = config.DefaultHookConcurrency
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = config.DefaultHookTimeout
	}
	return &hooks{cfg: cfg, log: log, q: make(chan hookEvent, hookQueue),
		cmds: map[string]config.HookCommands{}, down: map[string]prefork.PoolState{}}
}

// start runs the runners until stop.
func (h *hooks) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.stop = cancel
	for range h.cfg.Concurrency {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case ev := <-h.q:
					h.run(ctx, ev)
				}
			}
		}()
	}
}

// close stops the runners, killing the hooks still running.
func (h *hooks) close() {
	if h.stop != nil {
		h.stop()
		h.wg.Wait()
	}
}

// set records daemon's own hooks (nil: none; the daemon is gone).
func (h *hooks) set(daemon string, cmds config.HookCommands) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cmds == nil {
		delete(h.cmds, daemon)
		delete(h.down, daemon)
		return
	}
	h.cmds[daemon] = cmds
}

// observe turns a pool's event into hook events.
func (h *hooks) observe(e prefork.Event) {
	switch e.Kind {
	case prefork.EventExit:
		if e.Cause.Unplanned() {
			status := strconv.Itoa(e.ExitCode)
			if e.Signal != "" {
				status = "signal " + e.Signal
			}
			h.fire(hookEvent{daemon: e.Pool, event: config.HookRestart, pid: e.PID, exitStatus: status, reason: e.Cause.String()})
		}
	case prefork.EventState:
		// A recovery is running again after fatal or backoff, whatever
		// came between (a fatal pool restarts through starting).
		h.mu.Lock()
		was, down := h.down[e.Pool]
		switch e.State {
		case prefork.PoolFatal:
			h.down[e.Pool] = e.State
		case prefork.PoolBackoff:
			if was != prefork.PoolFatal {
				h.down[e.Pool] = e.State
			}
		case prefork.PoolRunning, prefork.PoolStopped:
			delete(h.down, e.Pool)
		}
		h.mu.Unlock()
		switch {
		case e.State == prefork.PoolFatal && was != prefork.PoolFatal:
			h.fire(hookEvent{daemon: e.Pool, event: config.HookFatal, reason: "start_retries failed starts in a row"})
		case e.State == prefork.PoolRunning && down:
			h.fire(hookEvent{daemon: e.Pool, event: config.HookRecover, reason: "running again after " + was.String()})
		}
	}
}

// fire queues ev if a hook is configured for it.
func (h *hooks) fire(ev hookEvent) {
	h.mu.Lock()
	_, own := h.cmds[ev.daemon][ev.event]
	h.mu.Unlock()
	if _, all := h.cfg.Commands[ev.event]; !own && !all {
		return
	}
	select {
	case h.q <- ev:
	default:
		h.log.Named(ev.daemon).Warn("hook dropped: too many hooks waiting", "event", ev.event, "waiting", hookQueue)
	}
}

// run runs ev's commands, the daemon's own first.
func (h *hooks) run(ctx context.Context, ev hookEvent) {
	h.mu.Lock()
	own := h.cmds[ev.daemon][ev.event]
	h.mu.Unlock()
	for _, argv := range [][]string{own, h.cfg.Commands[ev.event]} {
		if len(argv) > 0 {
			h.runOne(ctx, ev, argv)
		}
	}
}

// runOne runs one hook command under the timeout, its output to the log.
func (h *hooks) runOne(ctx context.Context, ev hookEvent, argv []string) {
	log := h.log.Named(ev.daemon)
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// A small environment, not the master's (which may hold secrets):
	// PATH and the locale, then what the event is.
	cmd.Env = append(hookBaseEnv(),
		"NSFD_DAEMON="+ev.daemon, "NSFD_EVENT="+ev.event, "NSFD_PID="+pidString(ev.pid),
		"NSFD_EXIT_STATUS="+ev.exitStatus, "NSFD_REASON="+ev.reason)
	cmd.Stdin = nil
	var out limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, killed whole when the timeout ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	sc := bufio.NewScanner(bytes.NewReader(out.b.Bytes()))
	for sc.Scan() {
		log.Info("hook output", "event", ev.event, "line", sc.Text())
	}
	took := time.Since(start).Round(time.Millisecond)
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		log.Error("hook killed: it ran past [hooks] timeout", "event", ev.event, "command", argv[0], "timeout", h.cfg.Timeout)
	case err != nil:
		log.Error("hook failed", "event", ev.event, "command", argv[0], "error", err, "took", took)
	default:
		log.Info("hook ran", "event", ev.event, "command", argv[0], "took", took)
	}
}

// hookBaseEnv is the master's PATH and locale, the environment a hook
// starts from.
func hookBaseEnv() []string {
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if p := os.Getenv("PATH"); p != "" {
		env[0] = "PATH=" + p
	}
	for _, k := range []string{"LANG", "LC_ALL", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func pidString(pid int) string {
	if pid == 0 {
		return ""
	}
	return strconv.Itoa(pid)
}

// limitedBuffer keeps the first hookOutputMax bytes written to it.
type limitedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := hookOutputMax - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
