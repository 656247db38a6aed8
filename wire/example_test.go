package wire_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/nsfd/nsfd/wire"
)

// A daemon with one command, served on loopback, and a client calling it.
func Example() {
	mux := wire.NewMux()
	mux.RouteFunc("greet", func(ctx context.Context, req *wire.Request) *wire.Response {
		var name string
		if err := req.DecodeData(&name); err != nil {
			return wire.Failf(wire.CodeValueSyntax, "%v", err)
		}
		return wire.OK("hello, " + name)
	})

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- wire.Serve(ctx, l, mux) }()

	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	conn := wire.NewConn(nc, nil, 0)
	defer conn.Close()

	req, _ := wire.NewRequest("greet", "ann")
	req.ID = "t-1"
	resp, err := conn.Call(ctx, req)
	if err != nil {
		log.Fatal(err)
	}
	var greeting string
	resp.DecodeData(&greeting)
	fmt.Println(resp.Code, resp.Message, greeting, resp.Meta.Transaction)

	resp, err = conn.Call(ctx, &wire.Request{Command: "shout"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Err())

	cancel()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output:
	// 1000 Command completed successfully hello, ann t-1
	// wire: 2000 Unknown command: "shout"
}
