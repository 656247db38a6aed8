package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/nsfd/nsfd/logging"
	"github.com/nsfd/nsfd/supervisor"
)

// verbs are the actions a page may post.
var verbs = map[string]bool{"restart": true, "stop": true, "start": true, "scale": true}

// act runs an action: a POST with the viewer's token, passed to the
// control API in the viewer's name, then back to the daemon's page.
func (s *server) act(w http.ResponseWriter, r *http.Request) {
	name, verb := r.PathValue("name"), r.PathValue("verb")
	if !verbs[verb] {
		http.Error(w, fmt.Sprintf("unknown action %q", verb), http.StatusNotFound)
		return
	}
	if !s.validToken(r) {
		s.opts.Log.Warn("action without a valid token refused", "daemon", name, "action", verb, "by", actor(r))
		http.Error(w, "the form's token is missing or wrong: reload the page", http.StatusForbidden)
		return
	}
	if !s.may(r, verb) {
		http.Error(w, fmt.Sprintf("%s may not %s", actor(r), verb), http.StatusForbidden)
		return
	}
	var q url.Values
	if verb == "scale" {
		q = url.Values{"n": {r.PostFormValue("n")}}
	}
	ctx := supervisor.WithActor(r.Context(), actor(r))
	err := s.api.call(ctx, http.MethodPost, "/v1/daemons/"+url.PathEscape(name)+"/"+verb, q, nil)
	if err != nil {
		code := http.StatusInternalServerError
		var ae *apiError
		if errors.As(err, &ae) {
			code = ae.Code
		}
		http.Error(w, verb+" "+name+": "+err.Error(), code)
		return
	}
	http.Redirect(w, r, "/ui/daemons/"+url.PathEscape(name), http.StatusSeeOther)
}

// follow streams the daemon's log lines as server-sent events, one event a
// line: a reset event, the last logLines lines, then each new one until the
// reader goes.
func (s *server) follow(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if s.opts.LogFile == "" {
		http.Error(w, "the central log does not go to a file", http.StatusNotFound)
		return
	}
	if _, err := s.status(r.Context(), name); err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	rc := http.NewResponseController(w)
	// A stream outlives the server's write timeout: each write gets its
	// own deadline instead, so a reader that stops reading is let go.
	extend := func() error { return rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)) }
	// Nor does the request's read deadline end it (the server would
	// cancel its context).
	_ = rc.SetReadDeadline(time.Time{})
	if err := extend(); err != nil {
		http.Error(w, "cannot stream: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The stream starts with the last lines the page shows, after a
	// reset event that clears them: a line written between the page's
	// rendering and the stream's start is not lost, and a reconnect
	// starts over.
	if _, err := fmt.Fprint(w, ": following\n\nevent: reset\ndata:\n\n"); err != nil {
		return
	}
	rc.Flush()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// The lines and the keep-alive comments write from two goroutines; a
	// failed write ends the stream.
	var mu sync.Mutex
	send := func(ev string) {
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if extend() != nil {
			cancel()
			return
		}
		if _, err := io.WriteString(w, ev); err != nil || rc.Flush() != nil {
			cancel()
		}
	}
	// A comment now and then tells a reader that went away from one that
	// is waiting for lines.
	go func() {
		t := time.NewTicker(streamKeepAlive)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				send(": keep-alive\n\n")
			}
		}
	}()
	_ = logging.Tail(ctx, s.opts.LogFile, logging.FollowOptions{Lines: logLines, Follow: true, Daemon: name},
		func(line []byte, _ logging.Record) error {
			send("data: " + string(logging.AppendEscaped(nil, line)) + "\n\n")
			return ctx.Err()
		})
}

const (
	// streamWriteTimeout is how long one event may take to write.
	streamWriteTimeout = 10 * time.Second
	// streamKeepAlive is how often an idle stream gets a comment.
	streamKeepAlive = 15 * time.Second
)
