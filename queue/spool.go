package queue

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nsfd/nsfd/internal/sqlstore"
	"github.com/nsfd/nsfd/registry"
)

// Job statuses. A job is put JobVirgin (the Perl Spooler's word for a job
// nobody has touched); the daemon that does the work may mark it
// JobWorking, and stores its result with JobDone or JobFailed, the final
// statuses WaitJob waits for. The Perl Spooler's "modified" is JobDone or
// JobFailed here.
const (
	JobVirgin  = "virgin"
	JobWorking = "working"
	JobDone    = "done"
	JobFailed  = "failed"
)

// JobFinished reports whether status is final: JobDone or JobFailed.
func JobFinished(status string) bool { return status == JobDone || status == JobFailed }

// validJobStatus reports whether status is one of the job statuses.
func validJobStatus(status string) bool {
	switch status {
	case JobVirgin, JobWorking, JobDone, JobFailed:
		return true
	}
	return false
}

// Limits of ListJobs.
const (
	// DefaultJobLimit is how many jobs ListJobs returns when
	// JobFilter.Limit is 0.
	DefaultJobLimit = 100
	// MaxJobLimit is the most jobs ListJobs returns, whatever the limit.
	MaxJobLimit = 10000
	// MaxJobIDLength is the longest job id PutJob accepts, in bytes.
	MaxJobIDLength = 256
)

// ErrExists is returned (wrapped) by PutJob for an id that is already in the
// spool.
var ErrExists = errors.New("already exists")

// errNoJob is the error for a job that is not in the spool: it says so, and
// errors.Is(err, registry.ErrNotFound) holds.
var errNoJob error = &notFound{"no such job"}

type notFound struct{ msg string }

func (e *notFound) Error() string        { return e.msg }
func (e *notFound) Is(target error) bool { return target == registry.ErrNotFound }

// Job is a row of the spool, one asynchronous call, and what the queue
// daemon answers about it. Request and Response are JSON texts that the
// spool stores as they are (the queue daemon keeps a wire request and its
// response in them, and shows them only if they are valid JSON).
type Job struct {
	ID        string          `json:"id"`                 // "<hash>@<node>", made by whoever puts the job
	Daemon    string          `json:"daemon"`             // the daemon whose call it is
	Status    string          `json:"status"`             // JobVirgin, JobWorking, JobDone or JobFailed
	Request   json.RawMessage `json:"request,omitempty"`  // what was asked, without its pass; may be empty
	Response  json.RawMessage `json:"response,omitempty"` // the result; nil until there is one
	CreatedAt time.Time       `json:"created_at"`         // set by the spool; millisecond precision
	UpdatedAt time.Time       `json:"updated_at"`         // set by the spool at every change
}

// JobUpdate is a change ModJob makes to a job.
type JobUpdate struct {
	// Status is the new status; "" keeps the job's.
	Status string
	// Response is the job's result; nil keeps the job's.
	Response []byte
}

// JobFilter selects the jobs ListJobs returns.
type JobFilter struct {
	Daemon string // only this daemon's jobs; "" for every daemon's
	Status string // only jobs in this status; "" for any
	// Limit is how many jobs at most, oldest first; 0 means
	// DefaultJobLimit, and it is capped at MaxJobLimit.
	Limit int
}

// Spool is the store of asynchronous calls, the spool table of the registry
// database: the queue daemon keeps its jobs in it. Every registry that
// registry.Open returns has one (SpoolOf). All methods are safe for concurrent
// use, and several processes may use the same spool.
type Spool interface {
	// PutJob stores a new job. j.ID and j.Daemon are required; an empty
	// j.Status means JobVirgin; j.CreatedAt and j.UpdatedAt are ignored
	// and set. It returns the job as stored, and an error wrapping
	// ErrExists if j.ID is already in the spool.
	PutJob(ctx context.Context, j Job) (Job, error)
	// GetJob returns the job id, or an error wrapping registry.ErrNotFound.
	GetJob(ctx context.Context, id string) (Job, error)
	// ModJob changes the job id's status and response (what u sets) and
	// stamps its UpdatedAt, and returns the job as changed; an error
	// wrapping registry.ErrNotFound if there is no such job. It wakes the WaitJob
	// calls waiting for it.
	ModJob(ctx context.Context, id string, u JobUpdate) (Job, error)
	// DelJob deletes the job id; an error wrapping registry.ErrNotFound if
	// there is no such job. A WaitJob waiting for it returns ErrNotFound.
	DelJob(ctx context.Context, id string) error
	// ListJobs returns the jobs f selects, oldest first.
	ListJobs(ctx context.Context, f JobFilter) ([]Job, error)
	// PurgeJobs deletes the finished jobs (JobDone, JobFailed) last
	// changed more than olderThan ago, and returns how many.
	PurgeJobs(ctx context.Context, olderThan time.Duration) (int, error)
	// WaitJob returns the job id once it is finished (JobFinished), or an
	// error wrapping ctx.Err() when ctx ends first, or registry.ErrNotFound if the
	// job is not, or no longer, in the spool. It does not poll: see
	// spool_wait.go for how each engine wakes it.
	WaitJob(ctx context.Context, id string) (Job, error)
}

// sqlSpool is the Spool in the database of a registry that a driver of
// nsfd opened (registry/sqlite, registry/postgres): the spool table, on the
// registry's connections, in its dialect.
type sqlSpool struct {
	s *sqlstore.Store
	q *spoolQueries
}

var _ Spool = (*sqlSpool)(nil)

// SpoolOf returns the spool in reg's database. Every Registry that
// registry.Open returns has one; an error means reg comes from elsewhere (a
// test fake).
func SpoolOf(reg registry.Registry) (Spool, error) {
	s, ok := sqlstore.Of(reg)
	if !ok {
		return nil, fmt.Errorf("queue: registry %T has no spool", reg)
	}
	return &sqlSpool{s: s, q: newSpoolQueries(s.Dialect())}, nil
}

// spoolQueries is the SQL of the spool, rendered for one dialect.
type spoolQueries struct {
	put, get, mod, del, purge string
	// notify announces a change of a job to other processes (the
	// dialect's Notify: channel, job id); "" if the engine has none.
	notify string
	// list, by filter: [daemon set][status set].
	list [2][2]string
}

const jobColumns = `id, daemon, status, request, response, created_at, updated_at`

func newSpoolQueries(d *sqlstore.Dialect) *spoolQueries {
	q := &spoolQueries{
		put: d.Render(`INSERT INTO spool (` + jobColumns + `)
			VALUES (?, ?, ?, ?, ?, {{now}}, {{now}})
			ON CONFLICT (id) DO NOTHING
			RETURNING created_at, updated_at`),
		get: d.Render(`SELECT ` + jobColumns + ` FROM spool WHERE id = ?`),
		mod: d.Render(`UPDATE spool SET status = COALESCE(?, status), response = COALESCE(?, response),
				updated_at = {{now}}
			WHERE id = ?
			RETURNING ` + jobColumns),
		del: d.Render(`DELETE FROM spool WHERE id = ?`),
		purge: d.Render(`DELETE FROM spool WHERE status IN ('` + JobDone + `', '` + JobFailed + `')
			AND updated_at < {{now}} - ?`),
	}
	if d.Notify != "" {
		q.notify = d.Render(d.Notify)
	}
	for byDaemon := range 2 {
		for byStatus := range 2 {
			where := ""
			switch {
			case byDaemon == 1 && byStatus == 1:
				where = `WHERE daemon = ? AND status = ? `
			case byDaemon == 1:
				where = `WHERE daemon = ? `
			case byStatus == 1:
				where = `WHERE status = ? `
			}
			q.list[byDaemon][byStatus] = d.Render(`SELECT ` + jobColumns + ` FROM spool ` + where +
				`ORDER BY created_at, id LIMIT ?`)
		}
	}
	return q
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanJob(sc scanner) (Job, error) {
	var (
		j                Job
		request          string
		response         sql.NullString
		created, updated int64
	)
	if err := sc.Scan(&j.ID, &j.Daemon, &j.Status, &request, &response, &created, &updated); err != nil {
		return Job{}, err
	}
	if request != "" {
		j.Request = []byte(request)
	}
	if response.Valid {
		j.Response = []byte(response.String)
	}
	j.CreatedAt, j.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	return j, nil
}

// nullText is b as a TEXT parameter: NULL for nil.
func nullText(b []byte) sql.NullString {
	return sql.NullString{String: string(b), Valid: b != nil}
}

func (sp *sqlSpool) PutJob(ctx context.Context, j Job) (Job, error) {
	what := fmt.Sprintf("%q", j.ID)
	switch {
	case j.ID == "" || j.Daemon == "":
		return Job{}, fmt.Errorf("put job %s: id and daemon are required", what)
	case len(j.ID) > MaxJobIDLength:
		return Job{}, fmt.Errorf("put job: id of %d bytes, longer than %d", len(j.ID), MaxJobIDLength)
	}
	if j.Status == "" {
		j.Status = JobVirgin
	}
	if !validJobStatus(j.Status) {
		return Job{}, fmt.Errorf("put job %s: unknown status %q", what, j.Status)
	}
	var created, updated int64
	err := sp.s.Writer().QueryRowContext(ctx, sp.q.put, j.ID, j.Daemon, j.Status, string(j.Request),
		nullText(j.Response)).Scan(&created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrExists
	}
	if err != nil {
		return Job{}, sp.s.Fail("put job", what, err)
	}
	j.CreatedAt, j.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	return j, nil
}

func (sp *sqlSpool) GetJob(ctx context.Context, id string) (Job, error) {
	j, err := scanJob(sp.s.Reader().QueryRowContext(ctx, sp.q.get, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = errNoJob
	}
	if err != nil {
		return Job{}, sp.s.Fail("get job", fmt.Sprintf("%q", id), err)
	}
	return j, nil
}

func (sp *sqlSpool) ModJob(ctx context.Context, id string, u JobUpdate) (Job, error) {
	what := fmt.Sprintf("%q", id)
	if u.Status != "" && !validJobStatus(u.Status) {
		return Job{}, fmt.Errorf("mod job %s: unknown status %q", what, u.Status)
	}
	status := sql.NullString{String: u.Status, Valid: u.Status != ""}
	var (
		j   Job
		err error
	)
	if sp.q.notify != "" {
		// NOTIFY is delivered at commit, with the change visible.
		err = sp.s.InTx(ctx, func(tx *sql.Tx) error {
			var err error
			j, err = scanJob(tx.QueryRowContext(ctx, sp.q.mod, status, nullText(u.Response), id))
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, sp.q.notify, spoolChannel, id)
			return err
		})
	} else {
		j, err = scanJob(sp.s.Writer().QueryRowContext(ctx, sp.q.mod, status, nullText(u.Response), id))
	}
	if errors.Is(err, sql.ErrNoRows) {
		err = errNoJob
	}
	if err != nil {
		return Job{}, sp.s.Fail("mod job", what, err)
	}
	wakeWaiters(sp.s, id)
	return j, nil
}

func (sp *sqlSpool) DelJob(ctx context.Context, id string) error {
	var err error
	if sp.q.notify != "" {
		err = sp.s.InTx(ctx, func(tx *sql.Tx) error {
			if err := sqlstore.MustAffect(tx.ExecContext(ctx, sp.q.del, id)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, sp.q.notify, spoolChannel, id)
			return err
		})
	} else {
		err = sqlstore.MustAffect(sp.s.Writer().ExecContext(ctx, sp.q.del, id))
	}
	if errors.Is(err, registry.ErrNotFound) {
		err = errNoJob
	}
	if err != nil {
		return sp.s.Fail("del job", fmt.Sprintf("%q", id), err)
	}
	wakeWaiters(sp.s, id)
	return nil
}

func (sp *sqlSpool) ListJobs(ctx context.Context, f JobFilter) ([]Job, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultJobLimit
	}
	limit = min(limit, MaxJobLimit)
	var (
		args               []any
		byDaemon, byStatus int
	)
	if f.Daemon != "" {
		byDaemon = 1
		args = append(args, f.Daemon)
	}
	if f.Status != "" {
		byStatus = 1
		args = append(args, f.Status)
	}
	args = append(args, limit)
	rows, err := sp.s.Reader().QueryContext(ctx, sp.q.list[byDaemon][byStatus], args...)
	if err != nil {
		return nil, sp.s.Fail("list", "jobs", err)
	}
	defer rows.Close()
	var js []Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, sp.s.Fail("list", "jobs", err)
		}
		js = append(js, j)
	}
	if err := rows.Err(); err != nil {
		return nil, sp.s.Fail("list", "jobs", err)
	}
	return js, nil
}

func (sp *sqlSpool) PurgeJobs(ctx context.Context, olderThan time.Duration) (int, error) {
	if olderThan <= 0 {
		return 0, fmt.Errorf("purge jobs: age %v must be positive", olderThan)
	}
	n, err := sqlstore.Affected(sp.s.Writer().ExecContext(ctx, sp.q.purge, olderThan.Milliseconds()))
	if err != nil {
		return 0, sp.s.Fail("purge", "jobs", err)
	}
	return n, nil
}
