package client_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/nsfd/nsfd/client"
	"github.com/nsfd/nsfd/queue"
	"github.com/nsfd/nsfd/registry"
	_ "github.com/nsfd/nsfd/registry/sqlite" // the registry these examples open
	"github.com/nsfd/nsfd/wire"
)

// exampleDaemon serves h on loopback and registers it as name, what the
// master does for a daemon's workers; it returns a function that stops it.
func exampleDaemon(reg registry.Registry, name string, h wire.Handler) func() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- wire.Serve(ctx, l, h) }()
	err = reg.Register(ctx, registry.Daemon{Node: "alpha", Name: name, Encoding: wire.CodecJSON, MasterPID: os.Getpid(),
		Endpoints: []registry.Endpoint{{Proto: registry.ProtoTCP, Address: l.Addr().String()}}})
	if err != nil {
		log.Fatal(err)
	}
	return func() { cancel(); <-done }
}

// A program calls a daemon by name: the client resolves it in the registry,
// dials it and keeps the connection for the next call.
func ExampleClient_Call() {
	dir, err := os.MkdirTemp("", "client-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	reg, err := registry.Open(ctx, registry.TypeSQLite, filepath.Join(dir, "registry.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()

	greeter := wire.NewMux()
	greeter.RouteFunc("greet", func(ctx context.Context, req *wire.Request) *wire.Response {
		var who string
		if err := req.DecodeData(&who); err != nil {
			return wire.Failf(wire.CodeValueSyntax, "%v", err)
		}
		return wire.OK("hello, " + who)
	})
	defer exampleDaemon(reg, "greeter", greeter)()

	c := client.New(reg, client.Options{LocalNode: "alpha"})
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := wire.NewRequest("greet", "ann")
	resp, err := c.Call(ctx, "greeter", req)
	if err != nil {
		log.Fatal(err)
	}
	var greeting string
	resp.DecodeData(&greeting)
	fmt.Println(resp.Code, greeting)

	resp, err = c.Call(ctx, "greeter", &wire.Request{Command: "shout"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Err())

	_, err = c.Call(ctx, "nobody", req)
	fmt.Println(err)
	// Output:
	// 1000 hello, ann
	// wire: 2000 Unknown command: "shout"
	// client: resolve "nobody": not registered
}

// A daemon answers a slow command asynchronously: it puts a job into the
// spool through the queue daemon, answers 1001 with the job's id at once,
// and stores the result when it has it. The caller's Call waits for that
// result; CallAsync leaves the waiting for later.
func ExampleClient_CallAsync() {
	dir, err := os.MkdirTemp("", "client-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	reg, err := registry.Open(ctx, registry.TypeSQLite, filepath.Join(dir, "registry.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()
	sp, _ := queue.SpoolOf(reg)
	defer exampleDaemon(reg, "queue", queue.NewHandler(sp, queue.Options{Node: "alpha"}))()

	// The daemon: "report" is answered through the queue.
	daemonClient := client.New(reg, client.Options{LocalNode: "alpha"})
	defer daemonClient.Close()
	reports := wire.NewMux()
	reports.RouteFunc("report", func(ctx context.Context, req *wire.Request) *wire.Response {
		id, err := daemonClient.Enqueue(ctx, "reports", req)
		if err != nil {
			return wire.Fail(err)
		}
		go func() { // the slow work, then its result into the spool
			daemonClient.Finish(context.Background(), id, wire.OK(map[string]int{"pages": 12}))
		}()
		return client.Accepted(id)
	})
	defer exampleDaemon(reg, "reports", reports)()

	// The caller.
	c := client.New(reg, client.Options{LocalNode: "alpha"})
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p, err := c.CallAsync(ctx, "reports", &wire.Request{Command: "report"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("job id ends with:", p.ID()[len(p.ID())-6:])
	resp, err := p.Wait(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Code, string(resp.Data), resp.Meta.Transaction == p.ID())

	// Call does both.
	resp, err = c.Call(ctx, "reports", &wire.Request{Command: "report"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Code, string(resp.Data))
	// Output:
	// job id ends with: @alpha
	// 1000 {"pages":12} true
	// 1000 {"pages":12}
}
