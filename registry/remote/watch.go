package remote

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/nsfd/nsfd/registry"
)

// PathWatch is the path of the stream of registry changes.
const PathWatch = "/v1/watch"

// MaxWatchLine bounds one line of the change stream a Client reads.
const MaxWatchLine = 64 << 10

// Events of the change stream: one JSON object a line.
const (
	eventReady   = "ready"   // the server watches: changes from now on are sent
	eventChanged = "changed" // the daemons called name changed ("" any name)
	eventLost    = "lost"    // the server's watch failed: the stream ends
)

// watchEvent is one line of the change stream.
type watchEvent struct {
	Event string `json:"event"`
	Name  string `json:"name,omitempty"`
	Error string `json:"error,omitempty"`
}

// ServeWatch serves GET /v1/watch from w: a stream of one JSON object a
// line, flushed as it happens, for as long as the client stays:
//
//	{"event":"ready"}                  w watches: every change from now on is sent
//	{"event":"changed","name":"kv"}    the daemons called kv changed ("name" absent: any name)
//	{"event":"lost","error":"..."}     w's watch failed; the stream ends
//
// It is what lets a worker's client drop a cached resolution as soon as the
// registry changes, through its master, which watches the registry for all
// of its workers.
func ServeWatch(w registry.Watcher) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		rc := http.NewResponseController(rw)
		_ = rc.SetWriteDeadline(time.Time{}) // a stream: the server's write timeout does not apply
		rw.Header().Set("Content-Type", "application/x-ndjson")
		rw.WriteHeader(http.StatusOK)
		enc := json.NewEncoder(rw)
		send := func(ev watchEvent) {
			if enc.Encode(ev) == nil {
				_ = rc.Flush()
			}
		}
		err := w.Watch(req.Context(),
			func() { send(watchEvent{Event: eventReady}) },
			func(name string) { send(watchEvent{Event: eventChanged, Name: name}) })
		if req.Context().Err() != nil {
			return // the client left
		}
		if err == nil {
			err = errors.New("the watch ended")
		}
		send(watchEvent{Event: eventLost, Error: err.Error()})
	})
}

var _ registry.Watcher = (*Client)(nil)

// Watch is registry.Watcher's, through the resolver socket: it follows the
// master's stream of changes until ctx ends, the master's own watch of the
// registry fails (the error says why), or the connection ends.
func (c *Client) Watch(ctx context.Context, ready func(), changed func(name string)) error {
	u := url.URL{Scheme: "http", Host: "nsfd", Path: PathWatch}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("watch through %s: %w", c.path, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("watch through %s: %w", c.path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("watch through %s: %s", c.path, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 512), MaxWatchLine)
	for sc.Scan() {
		var ev watchEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("watch through %s: %w", c.path, err)
		}
		switch ev.Event {
		case eventReady:
			ready()
		case eventChanged:
			changed(ev.Name)
		case eventLost:
			return fmt.Errorf("watch through %s: the master's watch failed: %s", c.path, ev.Error)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("watch through %s: %w", c.path, err)
	}
	return fmt.Errorf("watch through %s: the master closed the stream", c.path)
}
