package queue

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"time"

	"github.com/nsfd/nsfd/registry"
	"github.com/nsfd/nsfd/wire"
	"github.com/nsfd/nsfd/worker"
)

// Defaults of Options.
const (
	// DefaultMaxWait is the longest a `wait` request is held.
	DefaultMaxWait = MaxWaitRequest
	// DefaultRetain is how long finished jobs are kept.
	DefaultRetain = 24 * time.Hour
	// DefaultConcurrency is how many connections a queue worker serves at
	// once.
	DefaultConcurrency = 256
)

// Options configure a Handler and Run.
type Options struct {
	// Node is the node name that ends job ids; "" means $NSFD_NODE, else
	// the host name.
	Node string
	// MaxWait is the longest a `wait` request is held before it is
	// answered CodePending; 0 means DefaultMaxWait.
	MaxWait time.Duration
	// Retain is how long Run keeps finished jobs before purging them;
	// 0 means DefaultRetain.
	Retain time.Duration
	// Concurrency is how many connections a worker serves at once (Run);
	// 0 means DefaultConcurrency.
	Concurrency int
}

func (o Options) withDefaults() Options {
	if o.Node == "" {
		o.Node = os.Getenv(worker.EnvNode)
	}
	if o.Node == "" {
		o.Node, _ = os.Hostname()
	}
	if o.MaxWait <= 0 {
		o.MaxWait = DefaultMaxWait
	}
	if o.Retain <= 0 {
		o.Retain = DefaultRetain
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	return o
}

// Handler answers the queue's commands from a spool. It is a wire.Handler.
type Handler struct {
	*wire.Mux
	sp   Spool
	opts Options
}

var _ wire.Handler = (*Handler)(nil)

// NewHandler returns the handler of the queue's commands on sp.
func NewHandler(sp Spool, o Options) *Handler {
	h := &Handler{Mux: wire.NewMux(), sp: sp, opts: o.withDefaults()}
	h.RouteFunc(CmdPut, h.put)
	h.RouteFunc(CmdGet, h.get)
	h.RouteFunc(CmdMod, h.mod)
	h.RouteFunc(CmdDel, h.del)
	h.RouteFunc(CmdList, h.list)
	h.RouteFunc(CmdVirgin, h.virgin)
	h.RouteFunc(CmdWait, h.wait)
	return h
}

// args decodes a request's SpoolArgs; needID: the command needs an id.
func args(req *wire.Request, needID bool) (SpoolArgs, *wire.Response) {
	var a SpoolArgs
	if err := req.DecodeData(&a); err != nil {
		return a, wire.Failf(wire.CodeSyntaxError, "%v", err)
	}
	if needID && a.ID == "" {
		return a, wire.Failf(wire.CodeMissingParam, "id")
	}
	return a, nil
}

// view is the Job as the queue answers it: Request and Response only if
// they are valid JSON, which the spool does not check.
func view(j Job) Job {
	v := Job{ID: j.ID, Daemon: j.Daemon, Status: j.Status, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt}
	if json.Valid(j.Request) {
		v.Request = j.Request
	}
	if json.Valid(j.Response) {
		v.Response = j.Response
	}
	return v
}

// failure is the response for a spool error.
func failure(err error) *wire.Response {
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return wire.Failf(wire.CodeNotExist, "%v", err)
	case errors.Is(err, ErrExists):
		return wire.Failf(wire.CodeExists, "%v", err)
	}
	return wire.Failf(wire.CodeCommandFailed, "%v", err)
}

// newID returns a job id: 32 hex digits of a hash, "@", the node.
func (h *Handler) newID(req *wire.Request, daemon string) string {
	var salt [8]byte
	rand.Read(salt[:])
	sum := sha256.New()
	var buf [16]byte
	binary.BigEndian.PutUint64(buf[:8], uint64(time.Now().UnixNano()))
	binary.BigEndian.PutUint64(buf[8:], uint64(os.Getpid()))
	for _, s := range []string{req.User, req.Command, daemon} {
		sum.Write([]byte(s))
		sum.Write([]byte{0})
	}
	sum.Write(buf[:])
	sum.Write(salt[:])
	return hex.EncodeToString(sum.Sum(nil)[:16]) + "@" + h.opts.Node
}

func (h *Handler) put(ctx context.Context, req *wire.Request) *wire.Response {
	a, fail := args(req, false)
	if fail != nil {
		return fail
	}
	if a.Daemon == "" {
		return wire.Failf(wire.CodeMissingParam, "daemon")
	}
	var request []byte
	inner := new(wire.Request)
	if len(a.Request) > 0 {
		if err := json.Unmarshal(a.Request, inner); err != nil {
			return wire.Failf(wire.CodeValueSyntax, "request: %v", err)
		}
		inner.Pass = "" // never stored
		var err error
		if request, err = json.Marshal(inner); err != nil {
			return wire.Failf(wire.CodeValueSyntax, "request: %v", err)
		}
	}
	j, err := h.sp.PutJob(ctx, Job{ID: h.newID(inner, a.Daemon), Daemon: a.Daemon, Request: request})
	if err != nil {
		return failure(err)
	}
	return wire.OK(view(j))
}

func (h *Handler) get(ctx context.Context, req *wire.Request) *wire.Response {
	a, fail := args(req, true)
	if fail != nil {
		return fail
	}
	j, err := h.sp.GetJob(ctx, a.ID)
	if err != nil {
		return failure(err)
	}
	return wire.OK(view(j))
}

func (h *Handler) mod(ctx context.Context, req *wire.Request) *wire.Response {
	a, fail := args(req, true)
	if fail != nil {
		return fail
	}
	u := JobUpdate{Status: a.Status}
	if len(a.Response) > 0 {
		var resp wire.Response
		if err := json.Unmarshal(a.Response, &resp); err != nil {
			return wire.Failf(wire.CodeValueSyntax, "response: %v", err)
		}
		u.Response = a.Response
		if u.Status == "" {
			u.Status = JobDone
			if !wire.IsSuccess(resp.Code) && resp.Code != 0 {
				u.Status = JobFailed
			}
		}
	}
	if u.Status == "" {
		return wire.Failf(wire.CodeMissingParam, "status or response")
	}
	switch u.Status {
	case JobVirgin, JobWorking, JobDone, JobFailed:
	default:
		return wire.Failf(wire.CodeValueRange, "status %q (want %s, %s, %s or %s)", u.Status,
			JobVirgin, JobWorking, JobDone, JobFailed)
	}
	j, err := h.sp.ModJob(ctx, a.ID, u)
	if err != nil {
		return failure(err)
	}
	return wire.OK(view(j))
}

func (h *Handler) del(ctx context.Context, req *wire.Request) *wire.Response {
	a, fail := args(req, true)
	if fail != nil {
		return fail
	}
	if err := h.sp.DelJob(ctx, a.ID); err != nil {
		return failure(err)
	}
	return wire.OK(nil)
}

func (h *Handler) list(ctx context.Context, req *wire.Request) *wire.Response {
	a, fail := args(req, false)
	if fail != nil {
		return fail
	}
	return h.listJobs(ctx, JobFilter{Daemon: a.Daemon, Status: a.Status, Limit: a.Limit})
}

func (h *Handler) virgin(ctx context.Context, req *wire.Request) *wire.Response {
	a, fail := args(req, false)
	if fail != nil {
		return fail
	}
	return h.listJobs(ctx, JobFilter{Daemon: a.Daemon, Status: JobVirgin, Limit: a.Limit})
}

func (h *Handler) listJobs(ctx context.Context, f JobFilter) *wire.Response {
	js, err := h.sp.ListJobs(ctx, f)
	if err != nil {
		return failure(err)
	}
	out := Jobs{Jobs: make([]Job, 0, len(js))}
	for _, j := range js {
		out.Jobs = append(out.Jobs, view(j))
	}
	return wire.OK(out)
}

// wait answers once the job is finished, or CodePending with the job as it
// is when the request's timeout (at most MaxWait) passes or the worker
// drains.
func (h *Handler) wait(ctx context.Context, req *wire.Request) *wire.Response {
	a, fail := args(req, true)
	if fail != nil {
		return fail
	}
	timeout := h.opts.MaxWait
	if a.TimeoutMS > 0 {
		timeout = min(timeout, time.Duration(a.TimeoutMS)*time.Millisecond)
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	j, err := h.sp.WaitJob(wctx, a.ID)
	if err == nil {
		return wire.OK(view(j))
	}
	if wctx.Err() == nil || errors.Is(err, registry.ErrNotFound) {
		return failure(err)
	}
	// Timed out, or draining: say how the job is, if that is quick.
	gctx, cancelGet := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancelGet()
	if j, err := h.sp.GetJob(gctx, a.ID); err == nil {
		if JobFinished(j.Status) {
			return wire.OK(view(j))
		}
		return wire.Reply(wire.CodePending, view(j))
	} else if errors.Is(err, registry.ErrNotFound) {
		return failure(err)
	}
	return wire.Reply(wire.CodePending, Job{ID: a.ID})
}
