package fleettest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Node is one host of the fleet: a namespace with its address and one
// master.
type Node struct {
	f *Fleet
	// Index is the node's place in Fleet.Nodes; Name its node_name
	// ("node1"); Addr its address; NS its network namespace.
	Index          int
	Name, Addr, NS string
	Dir, Etc       string // Dir holds etc/ and var/
	port           string // its bridge port, in the switch's namespace
	cmd            *exec.Cmd
	exited         <-chan struct{}
	out            syncBuffer
	mu             sync.Mutex
}

// syncBuffer is a bytes.Buffer for several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// setup writes the node's nsfd.ini.
func (n *Node) setup() {
	n.Dir = nodeDir(n.f.tb)
	n.Etc = filepath.Join(n.Dir, "etc")
	must(n.f.tb, os.MkdirAll(n.Etc, 0o755))
	n.Write("nsfd.ini", fmt.Sprintf(`[nsfd]
node_name = %s
run_dir = ../var/run
[registry]
type = postgres
dsn = %s
heartbeat = %s
[log]
file = ../var/log/nsfd.log
level = debug
`, n.Name, n.f.DSN, n.f.opts.Heartbeat))
}

// Write writes etc/name: {{node}} in content becomes the node's name,
// {{addr}} its address.
func (n *Node) Write(name, content string) {
	n.f.tb.Helper()
	content = strings.NewReplacer("{{node}}", n.Name, "{{addr}}", n.Addr).Replace(content)
	must(n.f.tb, os.WriteFile(filepath.Join(n.Etc, name), []byte(content), 0o644))
}

// Log is the node's central log.
func (n *Node) Log() string {
	b, _ := os.ReadFile(filepath.Join(n.Dir, "var", "log", "nsfd.log"))
	return string(b)
}

// Running reports whether the node's master runs.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.exited == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// MasterPID is the pid of the node's master, 0 if none was started.
func (n *Node) MasterPID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Start starts the node's master, `nsfd run`, in its namespace.
func (n *Node) Start() {
	n.f.tb.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	cmd := exec.Command(n.f.opts.Nsfd, "run", "--etc", n.Etc)
	cmd.Stdout, cmd.Stderr = &n.out, &n.out
	exited, err := startIn(n.NS, cmd)
	if err != nil {
		n.f.tb.Fatalf("fleettest: start %s: %v", n.Name, err)
	}
	n.cmd, n.exited = cmd, exited
}

// Kill SIGKILLs the node's master, as a crash or a power cut would, and
// waits until every process of the node is gone (its workers die with
// their master, by their parent-death signal); it fails the test if one
// survives 10 seconds.
func (n *Node) Kill() {
	n.f.tb.Helper()
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	ino, err := nsInode(n.NS)
	must(n.f.tb, err)
	before := pidsIn(ino)
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	deadline := time.Now().Add(10 * time.Second)
	for {
		var left []int
		for _, p := range before {
			if alive(p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			n.f.tb.Fatalf("fleettest: %s: processes %v outlived their master by 10s", n.Name, left)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Stop sends the master SIGTERM and waits for it to drain and exit.
func (n *Node) Stop() {
	n.f.tb.Helper()
	if !n.stopMaster(30 * time.Second) {
		n.f.tb.Fatalf("fleettest: %s: the master did not exit 30s after SIGTERM", n.Name)
	}
}

// stopMaster sends SIGTERM, then SIGKILL after d; it reports whether the
// master exited in time.
func (n *Node) stopMaster(d time.Duration) bool {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return true
	}
	select {
	case <-exited:
		return true
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return true
	case <-time.After(d):
		cmd.Process.Kill()
		<-exited
		return false
	}
}

// Partition takes the node's link down (its port of the bridge): the node
// keeps running, cut off from the registry and the other nodes; a connect
// to it hangs.
func (n *Node) Partition() {
	n.f.tb.Helper()
	must(n.f.tb, ip("-n", n.f.sw, "link", "set", n.port, "down"))
}

// Heal brings the node's link back up.
func (n *Node) Heal() {
	n.f.tb.Helper()
	must(n.f.tb, ip("-n", n.f.sw, "link", "set", n.port, "up"))
}

// Nsfd runs one `nsfd --etc ETC args...` command in the node's namespace,
// as a user on that host types it, and returns its output and exit status.
func (n *Node) Nsfd(args ...string) (stdout, stderr string, code int) {
	n.f.tb.Helper()
	return n.f.Run(n.NS, n.f.opts.Nsfd, append([]string{"--etc", n.Etc}, args...)...)
}

// Run runs a command to completion in namespace ns ("" for the client
// namespace) and returns its output and exit status.
func (f *Fleet) Run(ns, name string, args ...string) (stdout, stderr string, code int) {
	f.tb.Helper()
	if ns == "" {
		ns = f.clientNS
	}
	var o, e syncBuffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	exited, err := startIn(ns, cmd)
	if err != nil {
		f.tb.Fatal(err)
	}
	<-exited
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}
