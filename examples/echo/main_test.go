package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// serveOne runs e on one accepted connection; the returned cancel drains it.
func serveOne(t *testing.T, e *echo) (net.Conn, *bufio.Reader, context.CancelFunc, <-chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	sc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer sc.Close()
		e.ServeConn(ctx, sc)
	}()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c, bufio.NewReader(c), cancel, done
}

func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	s, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %q, %v", s, err)
	}
	return s
}

func TestEchoLinesUnchanged(t *testing.T) {
	c, r, _, done := serveOne(t, &echo{greeting: "hi"})
	if got := readLine(t, r); got != "hi\n" {
		t.Fatalf("greeting %q", got)
	}
	for _, line := range []string{"hello\n", "with CRLF\r\n", "  spaces\tand tabs \n", "\n"} {
		io.WriteString(c, line)
		if got := readLine(t, r); got != line {
			t.Fatalf("sent %q, got %q", line, got)
		}
	}
	io.WriteString(c, "no newline")
	c.(*net.TCPConn).CloseWrite()
	if rest, _ := io.ReadAll(r); string(rest) != "no newline" {
		t.Fatalf("partial last line: got %q", rest)
	}
	<-done
}

func TestEchoDrainClosesIdleConnection(t *testing.T) {
	c, r, cancel, done := serveOne(t, &echo{})
	io.WriteString(c, "one\n")
	readLine(t, r)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("an idle connection was not closed on drain")
	}
	if _, err := r.ReadString('\n'); !errors.Is(err, io.EOF) {
		t.Fatalf("after drain: %v, want EOF", err)
	}
}

func TestEchoDrainAnswersBufferedLines(t *testing.T) {
	c, r, cancel, done := serveOne(t, &echo{slow: 50 * time.Millisecond})
	io.WriteString(c, "a\nb\n")
	if got := readLine(t, r); got != "a\n" { // b is in the handler's buffer now
		t.Fatalf("got %q", got)
	}
	cancel()
	if got := readLine(t, r); got != "b\n" {
		t.Fatalf("buffered line after drain: %q", got)
	}
	<-done
}

func TestEchoFlags(t *testing.T) {
	var out strings.Builder
	err := run(context.Background(), []string{"--concurrency", "2", "--slow", "1ms"}, &out)
	if os.Getenv("LISTEN_FDS") == "" && err == nil {
		t.Fatal("run without inherited listeners succeeded")
	}
	if !strings.HasPrefix(out.String(), "echo worker ") {
		t.Fatalf("stdout %q", out.String())
	}
	if err := run(context.Background(), []string{"--slow", "soon"}, io.Discard); err == nil {
		t.Fatal("a bad --slow was accepted")
	}
}

func TestEchoDatagrams(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&echo{}).servePackets(ctx, pc)
	}()
	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("ping\n"))
	buf := make([]byte, 100)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "ping\n" {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
	cancel() // what worker.Serve does on drain: cancel, then a read deadline
	pc.SetReadDeadline(time.Now())
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("servePackets did not return on drain")
	}
}
