//go:build unix

package worker

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testBoards maps one board file twice, as two workers of a pool do: the
// first with this process's pid, the second with the parent's (a live
// process this test may signal).
func testBoards(t *testing.T) (a, b *loadBoard) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "board")
	if err := os.WriteFile(path, make([]byte, LoadBoardSize), 0o600); err != nil {
		t.Fatal(err)
	}
	mk := func(pid int) *loadBoard {
		lb := &loadBoard{pid: uint32(pid), mem: mapBoard(path)}
		if lb.mem == nil {
			t.Fatal("mapBoard failed")
		}
		lb.me.Store(-1)
		return lb
	}
	return mk(os.Getpid()), mk(os.Getppid())
}

func TestLoadBoardYield(t *testing.T) {
	a, b := testBoards(t)
	a.add(2) // held before joining: published when it joins
	if !a.join() || !b.join() {
		t.Fatal("join failed")
	}
	if a.yield() {
		t.Error("a yields to a peer that is not waiting in accept")
	}
	b.wait(true)
	if !a.yield() {
		t.Error("a (2 held) does not yield to a waiting peer with none")
	}
	if b.yield() {
		t.Error("b (0 held) yields")
	}
	b.add(2)
	if a.yield() {
		t.Error("a yields to a peer that holds as many")
	}
	b.add(-1)
	if !a.yield() {
		t.Error("a (2 held) does not yield to a waiting peer holding half of it")
	}
	a.add(2)
	b.add(2)
	if a.yield() {
		t.Error("a (4 held) yields to a peer holding 3: more than half of it")
	}
	b.add(-1)
	if !a.yield() {
		t.Error("a (4 held) does not yield to a waiting peer holding half of it")
	}
	a.add(-2)
	b.add(-2)
	a.add(-1)
	if a.yield() {
		t.Errorf("a yields while it holds %d, under yieldFrom", a.held.Load())
	}
	a.add(1)
	b.wait(false)
	if a.yield() {
		t.Error("a yields to a peer that stopped waiting")
	}
	b.wait(true)
	b.leave()
	if a.yield() {
		t.Error("a yields to a peer that left the board")
	}
	if got := b.word(0).Load() | b.word(2).Load(); got != a.pid {
		t.Errorf("after b left, the pid words hold %d, want only a's %d", got, a.pid)
	}
}

func TestLoadBoardDeadPeer(t *testing.T) {
	a, b := testBoards(t)
	b.pid = 1 << 30 // beyond pid_max: no such process
	a.add(3)
	if !a.join() || !b.join() {
		t.Fatal("join failed")
	}
	b.wait(true)
	if a.yield() {
		t.Error("a yields to a peer whose process is gone")
	}
}

func TestLoadBoardFull(t *testing.T) {
	a, b := testBoards(t)
	for n := range LoadBoardEntries {
		b.word(2 * n).Store(uint32(n + 1000000))
	}
	if a.join() {
		t.Error("joined a full board")
	}
	a.add(5)
	if a.yield() {
		t.Error("a worker off the board yields")
	}
}

func TestLoadBoardCountWord(t *testing.T) {
	a, _ := testBoards(t)
	a.join()
	a.wait(true)
	a.add(3)
	a.add(-1)
	if w := a.entry().Load(); w != boardWaiting|2 {
		t.Errorf("count word %#x, want waiting|2", w)
	}
	a.wait(false)
	a.add(-5) // more ends than begins: never below zero
	if w := a.entry().Load(); w != 0 {
		t.Errorf("count word %#x, want 0", w)
	}
}

// TestBalanceLeavesConnectionToPeer drives Balance's listener on a real
// socket: while a waiting peer holds fewer, a pending connection is left
// for BalanceWait, and one the peer takes meanwhile is not accepted.
func TestBalanceLeavesConnectionToPeer(t *testing.T) {
	a, b := testBoards(t)
	a.add(2)
	a.join()
	b.join()
	b.wait(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nb := newNBListener(ln)
	// A wait long enough for the test to play the peer on a loaded machine.
	bl := &balancedListener{Listener: ln, nb: nb, board: a, wait: time.Second}
	defer bl.Close()

	got := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := bl.Accept()
			if err != nil {
				close(got)
				return
			}
			got <- c
		}
	}()
	first, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	// The peer takes it (the test accepts on the shared socket) while a
	// leaves it.
	tcp := ln.(*net.TCPListener)
	tcp.SetDeadline(time.Now().Add(10 * time.Second))
	peer, err := tcp.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	b.wait(false) // the peer is busy now: a takes the next one itself
	second, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	select {
	case c := <-got:
		defer c.Close()
		if c.RemoteAddr().String() != second.LocalAddr().String() {
			t.Errorf("accepted %s, want the second connection %s (the first, %s, was the peer's)",
				c.RemoteAddr(), second.LocalAddr(), first.LocalAddr())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second connection was not accepted")
	}
}
