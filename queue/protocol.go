package queue

import (
	"encoding/json"
	"time"
)

// The queue daemon's commands, each with a SpoolArgs as data and a Job (or
// Jobs) as result; see the package documentation. Package client sends
// them.
const (
	CmdPut    = "put"
	CmdGet    = "get"
	CmdMod    = "mod"
	CmdDel    = "del"
	CmdList   = "list"
	CmdVirgin = "virgin"
	CmdWait   = "wait"
)

// MaxWaitRequest is the longest a single `wait` request asks the queue
// daemon to hold; a client repeats it until its context ends.
const MaxWaitRequest = 30 * time.Second

// SpoolArgs is the data of a request to the queue daemon; each command reads
// the fields it needs.
type SpoolArgs struct {
	ID        string          `json:"id,omitempty"`
	Daemon    string          `json:"daemon,omitempty"`
	Status    string          `json:"status,omitempty"`
	Request   json.RawMessage `json:"request,omitempty"`
	Response  json.RawMessage `json:"response,omitempty"`
	Limit     int             `json:"limit,omitempty"`
	TimeoutMS int64           `json:"timeout_ms,omitempty"`
}

// Jobs is the result of the list and virgin commands.
type Jobs struct {
	Jobs []Job `json:"jobs"`
}
