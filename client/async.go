package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nsfd/nsfd/queue"
	"github.com/nsfd/nsfd/wire"
)

// pendingData is the data of an Accepted response.
type pendingData struct {
	ID string `json:"id"`
}

// Accepted returns the response of a daemon that has put a job into the
// spool and will store the result there: wire.CodePending with
// {"id": id} as data. Call waits for the result when it gets one.
func Accepted(id string) *wire.Response {
	return wire.Reply(wire.CodePending, pendingData{ID: id})
}

// PendingID returns the job id of an Accepted response: a CodePending
// response whose data is {"id": "..."} or a JSON string. ok is false for any
// other response.
func PendingID(resp *wire.Response) (id string, ok bool) {
	if resp == nil || resp.Code != wire.CodePending || len(resp.Data) == 0 {
		return "", false
	}
	var d pendingData
	if json.Unmarshal(resp.Data, &d) == nil && d.ID != "" {
		return d.ID, true
	}
	if json.Unmarshal(resp.Data, &id) == nil && id != "" {
		return id, true
	}
	return "", false
}

// Pending is a call whose result may come later: see CallAsync.
type Pending struct {
	c    *Client
	id   string
	resp *wire.Response // the final response, when the daemon gave it at once
}

// CallAsync sends req to the daemon called name as Call does, but does not
// wait for an asynchronous result: the returned Pending has the job's id,
// and its Wait waits for the result. If the daemon answered at once, Wait
// returns that answer.
func (c *Client) CallAsync(ctx context.Context, name string, req *wire.Request) (*Pending, error) {
	resp, err := c.call(ctx, name, req)
	if err != nil {
		return nil, err
	}
	if id, ok := PendingID(resp); ok {
		return &Pending{c: c, id: id}, nil
	}
	return &Pending{c: c, resp: resp}, nil
}

// ID returns the job's id in the spool, or "" if the daemon answered at once.
func (p *Pending) ID() string { return p.id }

// Wait returns the call's result: at once if the daemon answered at once,
// otherwise once it is in the spool (see Client.Wait).
func (p *Pending) Wait(ctx context.Context) (*wire.Response, error) {
	if p.resp != nil {
		return p.resp, nil
	}
	return p.c.Wait(ctx, p.id)
}

// Wait waits for the result of the job id, through the queue daemon, and
// returns it: the response the daemon stored with Finish, with
// Meta.Transaction set to the job id if it had none, and Meta.Duration to
// the time from the job's creation to its result. Each `wait` request is held
// by the queue daemon until the result lands (at most queue.MaxWaitRequest, or
// what is left of ctx), and repeated until ctx ends; the error wraps
// ctx.Err() then. A job that is not, or no longer, in the spool gives an
// error wrapping a *wire.Error with wire.CodeNotExist.
func (c *Client) Wait(ctx context.Context, id string) (*wire.Response, error) {
	for {
		timeout := queue.MaxWaitRequest
		if dl, ok := ctx.Deadline(); ok {
			// Ask the queue to answer a little before the deadline, so that
			// the connection comes back usable.
			left := time.Until(dl)
			timeout = min(timeout, max(left-left/10, time.Millisecond))
		}
		resp, err := c.spool(ctx, queue.CmdWait, queue.SpoolArgs{ID: id, TimeoutMS: max(timeout.Milliseconds(), 1)})
		if err != nil {
			return nil, fmt.Errorf("client: wait for job %s: %w", id, err)
		}
		switch resp.Code {
		case wire.CodeOK:
			var j queue.Job
			if err := resp.DecodeData(&j); err != nil {
				return nil, fmt.Errorf("client: wait for job %s: %w", id, err)
			}
			return jobResult(&j)
		case wire.CodePending:
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("client: wait for job %s: %w", id, err)
			}
			continue
		default:
			return nil, fmt.Errorf("client: wait for job %s: %w", id, resp.Err())
		}
	}
}

// jobResult returns the response a finished job holds.
func jobResult(j *queue.Job) (*wire.Response, error) {
	resp := new(wire.Response)
	if len(j.Response) > 0 {
		if err := json.Unmarshal(j.Response, resp); err != nil {
			return nil, fmt.Errorf("client: job %s: stored response: %w", j.ID, err)
		}
	} else { // finished without a stored response
		resp.Code = wire.CodeOK
		if j.Status != queue.JobDone {
			resp.Code = wire.CodeCommandFailed
		}
	}
	if resp.Code == 0 {
		resp.Code = wire.CodeOK
	}
	if resp.Message == "" {
		resp.Message = wire.Message(resp.Code)
	}
	if resp.Meta.Transaction == "" {
		resp.Meta.Transaction = j.ID
	}
	if resp.Meta.Duration == 0 && !j.CreatedAt.IsZero() {
		resp.Meta.Duration = j.UpdatedAt.Sub(j.CreatedAt)
	}
	return resp, nil
}

// spool sends one command to the queue daemon.
func (c *Client) spool(ctx context.Context, command string, args queue.SpoolArgs) (*wire.Response, error) {
	req, err := wire.NewRequest(command, args)
	if err != nil {
		return nil, err
	}
	return c.call(ctx, c.opts.Queue, req)
}

// spoolJob sends one command to the queue daemon and decodes the Job it
// answers; an error code is returned as an error wrapping a *wire.Error.
func (c *Client) spoolJob(ctx context.Context, command string, args queue.SpoolArgs) (*queue.Job, error) {
	resp, err := c.spool(ctx, command, args)
	if err != nil {
		return nil, err
	}
	if err := resp.Err(); err != nil {
		return nil, err
	}
	j := new(queue.Job)
	if err := resp.DecodeData(j); err != nil {
		return nil, err
	}
	return j, nil
}

// Enqueue puts req, without its Pass, into the spool as a job of daemon,
// through the queue daemon, and returns the job's id: what a daemon does
// before it answers Accepted(id).
func (c *Client) Enqueue(ctx context.Context, daemon string, req *wire.Request) (string, error) {
	r := *req
	r.Pass = ""
	data, err := json.Marshal(&r)
	if err != nil {
		return "", fmt.Errorf("client: enqueue %q: %w", req.Command, err)
	}
	j, err := c.spoolJob(ctx, queue.CmdPut, queue.SpoolArgs{Daemon: daemon, Request: data})
	if err != nil {
		return "", fmt.Errorf("client: enqueue %q: %w", req.Command, err)
	}
	return j.ID, nil
}

// Working marks the job id as being worked on (queue.JobWorking), for
// whoever lists the spool.
func (c *Client) Working(ctx context.Context, id string) error {
	if _, err := c.spoolJob(ctx, queue.CmdMod, queue.SpoolArgs{ID: id, Status: queue.JobWorking}); err != nil {
		return fmt.Errorf("client: job %s: %w", id, err)
	}
	return nil
}

// Finish stores resp as the result of the job id, through the queue daemon,
// which wakes whoever waits for it. The job becomes done, or failed if
// resp's code is an error. A zero code is stored as wire.CodeOK, an empty
// message as the code's, an empty Meta.Transaction as the job id.
func (c *Client) Finish(ctx context.Context, id string, resp *wire.Response) error {
	r := *resp
	if r.Code == 0 {
		r.Code = wire.CodeOK
	}
	if r.Message == "" {
		r.Message = wire.Message(r.Code)
	}
	if r.Meta.Transaction == "" {
		r.Meta.Transaction = id
	}
	data, err := json.Marshal(&r)
	if err != nil {
		return fmt.Errorf("client: finish job %s: %w", id, err)
	}
	if _, err := c.spoolJob(ctx, queue.CmdMod, queue.SpoolArgs{ID: id, Response: data}); err != nil {
		return fmt.Errorf("client: finish job %s: %w", id, err)
	}
	return nil
}

// Job returns the job id as the queue daemon has it; an error wrapping a
// *wire.Error with wire.CodeNotExist if there is none.
func (c *Client) Job(ctx context.Context, id string) (*queue.Job, error) {
	j, err := c.spoolJob(ctx, queue.CmdGet, queue.SpoolArgs{ID: id})
	if err != nil {
		return nil, fmt.Errorf("client: job %s: %w", id, err)
	}
	return j, nil
}

// IsNotExist reports whether err is, or wraps, a wire error with
// wire.CodeNotExist: the job (or object) is not there.
func IsNotExist(err error) bool {
	return errors.Is(err, &wire.Error{Code: wire.CodeNotExist})
}
