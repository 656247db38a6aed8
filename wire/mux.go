package wire

import (
	"context"
	"slices"
	"strings"
	"sync"
)

// Mux routes requests to handlers by their Command, and so is also the list
// of commands a daemon allows, as the Perl framework's Validate was. Command
// names match case-insensitively. A request without a command is answered
// with CodeMissingParam, one whose command is not routed with
// CodeUnknownCommand (or the NotFound handler's response). The zero value is
// an empty Mux ready to use; routes may be added while it serves.
type Mux struct {
	// NotFound, if set, answers requests for commands that are not routed,
	// instead of the CodeUnknownCommand response.
	NotFound Handler

	mu     sync.RWMutex
	routes map[string]Handler
}

var _ Handler = (*Mux)(nil)

// NewMux returns an empty Mux.
func NewMux() *Mux { return new(Mux) }

// Route makes h answer command. It panics if command is empty, h is nil or
// command is already routed, as net/http's ServeMux does.
func (m *Mux) Route(command string, h Handler) {
	if command == "" {
		panic("wire: Mux.Route with an empty command")
	}
	if h == nil {
		panic("wire: Mux.Route of " + command + " with a nil Handler")
	}
	key := strings.ToLower(command)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.routes[key]; dup {
		panic("wire: Mux.Route called twice for " + command)
	}
	if m.routes == nil {
		m.routes = make(map[string]Handler)
	}
	m.routes[key] = h
}

// RouteFunc makes f answer command (see Route).
func (m *Mux) RouteFunc(command string, f func(ctx context.Context, req *Request) *Response) {
	m.Route(command, HandlerFunc(f))
}

// Commands returns the routed commands, lower-cased and sorted.
func (m *Mux) Commands() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	cmds := make([]string, 0, len(m.routes))
	for c := range m.routes {
		cmds = append(cmds, c)
	}
	slices.Sort(cmds)
	return cmds
}

// Handler returns the handler for command and whether there is one.
func (m *Mux) Handler(command string) (Handler, bool) {
	m.mu.RLock()
	h, ok := m.routes[command]
	if !ok {
		h, ok = m.routes[strings.ToLower(command)]
	}
	m.mu.RUnlock()
	return h, ok
}

// Handle answers req with the handler routed for req.Command.
func (m *Mux) Handle(ctx context.Context, req *Request) *Response {
	if req.Command == "" {
		return Failf(CodeMissingParam, "command")
	}
	if h, ok := m.Handler(req.Command); ok {
		return h.Handle(ctx, req)
	}
	if m.NotFound != nil {
		return m.NotFound.Handle(ctx, req)
	}
	return Failf(CodeUnknownCommand, "%q", req.Command)
}
