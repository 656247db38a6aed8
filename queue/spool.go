package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
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
// errors.Is(err, ErrNotFound) holds.
var errNoJob error = &notFound{"no such job"}

type notFound struct{ msg string }

func (e *notFound) Error() string        { return e.msg }
func (e *notFound) Is(target error) bool { return target == ErrNotFound }

// Job is a row of the spool: one asynchronous call. Request and Response
// are JSON texts that the spool stores as they are (the queue daemon keeps
// a wire request and its response in them).
type Job struct {
	ID        string    // "<hash>@<node>", made by whoever puts the job
	Daemon    string    // the daemon whose call it is
	Status    string    // JobVirgin, JobWorking, JobDone or JobFailed
	Request   []byte    // what was asked, JSON; may be empty
	Response  []byte    // the result, JSON; nil until there is one
	CreatedAt time.Time // set by the registry; millisecond precision
	UpdatedAt time.Time // set by the registry at every change
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
// database: the queue daemon keeps its jobs in it. Every registry Open
// returns is a Spool too (SpoolOf). All methods are safe for concurrent
// use, and several processes may use the same spool.
type Spool interface {
	// PutJob stores a new job. j.ID and j.Daemon are required; an empty
	// j.Status means JobVirgin; j.CreatedAt and j.UpdatedAt are ignored
	// and set. It returns the job as stored, and an error wrapping
	// ErrExists if j.ID is already in the spool.
	PutJob(ctx context.Context, j Job) (Job, error)
	// GetJob returns the job id, or an error wrapping ErrNotFound.
	GetJob(ctx context.Context, id string) (Job, error)
	// ModJob changes the job id's status and response (what u sets) and
	// stamps its UpdatedAt, and returns the job as changed; an error
	// wrapping ErrNotFound if there is no such job. It wakes the WaitJob
	// calls waiting for it.
	ModJob(ctx context.Context, id string, u JobUpdate) (Job, error)
	// DelJob deletes the job id; an error wrapping ErrNotFound if there
	// is no such job. A WaitJob waiting for it returns ErrNotFound.
	DelJob(ctx context.Context, id string) error
	// ListJobs returns the jobs f selects, oldest first.
	ListJobs(ctx context.Context, f JobFilter) ([]Job, error)
	// PurgeJobs deletes the finished jobs (JobDone, JobFailed) last
	// changed more than olderThan ago, and returns how many.
	PurgeJobs(ctx context.Context, olderThan time.Duration) (int, error)
	// WaitJob returns the job id once it is finished (JobFinished), or an
	// error wrapping ctx.Err() when ctx ends first, or ErrNotFound if the
	// job is not, or no longer, in the spool. It does not poll: see
	// spool_wait.go for how each engine wakes it.
	WaitJob(ctx context.Context, id string) (Job, error)
}

var _ Spool = (*store)(nil)

// SpoolOf returns the spool in reg's database. Every Registry that Open
// returns has one; an error means reg comes from elsewhere (a test fake).
func SpoolOf(reg Registry) (Spool, error) {
	if sp, ok := reg.(Spool); ok {
		return sp, nil
	}
	return nil, fmt.Errorf("registry: %T has no spool", reg)
}

// spoolQueries is the SQL of the spool, rendered for one dialect.
type spoolQueries struct {
	put, get, mod, del, purge, notify string
	encodings                         string // spool_lookup.go
	// list, by filter: [daemon set][status set].
	list [2][2]string
}

const jobColumns = `id, daemon, status, request, response, created_at, updated_at`

func newSpoolQueries(d *dialect) *spoolQueries {
	q := &spoolQueries{
		put: d.render(`INSERT INTO spool (` + jobColumns + `)
			VALUES (?, ?, ?, ?, ?, {{now}}, {{now}})
			ON CONFLICT (id) DO NOTHING
			RETURNING created_at, updated_at`),
		get: d.render(`SELECT ` + jobColumns + ` FROM spool WHERE id = ?`),
		mod: d.render(`UPDATE spool SET status = COALESCE(?, status), response = COALESCE(?, response),
				updated_at = {{now}}
			WHERE id = ?
			RETURNING ` + jobColumns),
		del: d.render(`DELETE FROM spool WHERE id = ?`),
		purge: d.render(`DELETE FROM spool WHERE status IN ('` + JobDone + `', '` + JobFailed + `')
			AND updated_at < {{now}} - ?`),
		notify: d.render(`SELECT pg_notify('` + pgSpoolChannel + `', ?)`),
		encodings: d.render(`SELECT node, encoding FROM daemons
			WHERE name = ? AND state = '` + StateRunning + `'`),
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
			q.list[byDaemon][byStatus] = d.render(`SELECT ` + jobColumns + ` FROM spool ` + where +
				`ORDER BY created_at, id LIMIT ?`)
		}
	}
	return q
}

// The spool's SQL for the two placeholder styles: the dialects differ in
// nothing else the spool uses.
var (
	spoolSQLite   = newSpoolQueries(sqliteDialect)
	spoolPostgres = newSpoolQueries(pgDialect(nil))
)

func (s *store) isPostgres() bool { return s.d.numbered }

func (s *store) spoolQ() *spoolQueries {
	if s.isPostgres() {
		return spoolPostgres
	}
	return spoolSQLite
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

func (s *store) PutJob(ctx context.Context, j Job) (Job, error) {
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
	err := s.w.QueryRowContext(ctx, s.spoolQ().put, j.ID, j.Daemon, j.Status, string(j.Request),
		nullText(j.Response)).Scan(&created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrExists
	}
	if err != nil {
		return Job{}, s.fail("put job", what, err)
	}
	j.CreatedAt, j.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	return j, nil
}

func (s *store) GetJob(ctx context.Context, id string) (Job, error) {
	j, err := scanJob(s.r.QueryRowContext(ctx, s.spoolQ().get, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = errNoJob
	}
	if err != nil {
		return Job{}, s.fail("get job", fmt.Sprintf("%q", id), err)
	}
	return j, nil
}

func (s *store) ModJob(ctx context.Context, id string, u JobUpdate) (Job, error) {
	what := fmt.Sprintf("%q", id)
	if u.Status != "" && !validJobStatus(u.Status) {
		return Job{}, fmt.Errorf("mod job %s: unknown status %q", what, u.Status)
	}
	status := sql.NullString{String: u.Status, Valid: u.Status != ""}
	var (
		j   Job
		err error
	)
	if s.isPostgres() {
		// NOTIFY is delivered at commit, with the change visible.
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			var err error
			j, err = scanJob(tx.QueryRowContext(ctx, s.spoolQ().mod, status, nullText(u.Response), id))
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, s.spoolQ().notify, id)
			return err
		})
	} else {
		j, err = scanJob(s.w.QueryRowContext(ctx, s.spoolQ().mod, status, nullText(u.Response), id))
	}
	if errors.Is(err, sql.ErrNoRows) {
		err = errNoJob
	}
	if err != nil {
		return Job{}, s.fail("mod job", what, err)
	}
	wakeWaiters(s, id)
	return j, nil
}

func (s *store) DelJob(ctx context.Context, id string) error {
	var err error
	if s.isPostgres() {
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			if err := mustAffect(tx.ExecContext(ctx, s.spoolQ().del, id)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, s.spoolQ().notify, id)
			return err
		})
	} else {
		err = mustAffect(s.w.ExecContext(ctx, s.spoolQ().del, id))
	}
	if errors.Is(err, ErrNotFound) {
		err = errNoJob
	}
	if err != nil {
		return s.fail("del job", fmt.Sprintf("%q", id), err)
	}
	wakeWaiters(s, id)
	return nil
}

func (s *store) ListJobs(ctx context.Context, f JobFilter) ([]Job, error) {
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
	rows, err := s.r.QueryContext(ctx, s.spoolQ().list[byDaemon][byStatus], args...)
	if err != nil {
		return nil, s.fail("list", "jobs", err)
	}
	defer rows.Close()
	var js []Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, s.fail("list", "jobs", err)
		}
		js = append(js, j)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("list", "jobs", err)
	}
	return js, nil
}

func (s *store) PurgeJobs(ctx context.Context, olderThan time.Duration) (int, error) {
	if olderThan <= 0 {
		return 0, fmt.Errorf("purge jobs: age %v must be positive", olderThan)
	}
	n, err := affected(s.w.ExecContext(ctx, s.spoolQ().purge, olderThan.Milliseconds()))
	if err != nil {
		return 0, s.fail("purge", "jobs", err)
	}
	return n, nil
}
