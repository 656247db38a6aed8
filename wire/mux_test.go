package wire

import (
	"context"
	"reflect"
	"testing"
)

func TestMux(t *testing.T) {
	m := NewMux()
	echo := func(ctx context.Context, req *Request) *Response { return OK(req.Command) }
	m.RouteFunc("get", echo)
	m.RouteFunc("Put", echo)

	tests := []struct {
		command string
		code    int
		data    string
	}{
		{"get", CodeOK, `"get"`},
		{"GET", CodeOK, `"GET"`},
		{"put", CodeOK, `"put"`},
		{"del", CodeUnknownCommand, ""},
		{"", CodeMissingParam, ""},
		{"ge", CodeUnknownCommand, ""}, // no substring matches, unlike the Perl grep
	}
	for _, tt := range tests {
		resp := m.Handle(context.Background(), &Request{Command: tt.command})
		if resp.Code != tt.code || string(resp.Data) != tt.data {
			t.Errorf("%q: %d %s, want %d %s", tt.command, resp.Code, resp.Data, tt.code, tt.data)
		}
		if resp.Message == "" {
			t.Errorf("%q: no message", tt.command)
		}
	}
	if got := m.Commands(); !reflect.DeepEqual(got, []string{"get", "put"}) {
		t.Errorf("Commands() = %q", got)
	}

	m.NotFound = HandlerFunc(func(ctx context.Context, req *Request) *Response {
		return Failf(CodeUnimplementedCommand, "%s", req.Command)
	})
	if resp := m.Handle(context.Background(), &Request{Command: "del"}); resp.Code != CodeUnimplementedCommand {
		t.Errorf("NotFound: %d", resp.Code)
	}

	var zero Mux
	if resp := zero.Handle(context.Background(), &Request{Command: "x"}); resp.Code != CodeUnknownCommand {
		t.Errorf("zero Mux: %d", resp.Code)
	}
}

func TestMuxRoutePanics(t *testing.T) {
	h := HandlerFunc(func(ctx context.Context, req *Request) *Response { return nil })
	for name, f := range map[string]func(m *Mux){
		"empty":     func(m *Mux) { m.Route("", h) },
		"nil":       func(m *Mux) { m.Route("x", nil) },
		"duplicate": func(m *Mux) { m.Route("x", h); m.Route("X", h) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f(NewMux())
		}()
	}
}
