package supervisor

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// handleUpgrade is POST /v1/upgrade[?binary=PATH]. Only root and the
// master's own user may ask (not control_group, not the web page): the
// master execs the binary with its privileges. A refused upgrade is a 409
// and a failed exec a 500, each with the error; a successful one never
// answers: the process becomes the new binary and the connection closes,
// and the caller reads the new master's status.
func (s *Supervisor) handleUpgrade(w http.ResponseWriter, r *http.Request) {
	cred, _ := r.Context().Value(credsKey{}).(*peerCred)
	if cred == nil || (cred.Uid != 0 && int(cred.Uid) != os.Geteuid()) {
		who := "this caller"
		if cred != nil {
			who = "uid " + strconv.Itoa(int(cred.Uid))
		}
		writeError(w, http.StatusForbidden, fmt.Errorf("%s may not upgrade this master: only root and the master's user may", who))
		return
	}
	res, err := s.Upgrade(r.Context(), r.URL.Query().Get("binary"))
	code := http.StatusInternalServerError
	if errors.Is(err, ErrUpgradeRefused) {
		code = http.StatusConflict
	}
	if err != nil {
		writeError(w, code, err)
		return
	}
	writeJSON(w, http.StatusOK, res) // only with an Options.Exec that returns nil
}

// trustedBinary checks that path, which the master is to exec with its
// privileges, is a regular file only the master's user or root can change.
func trustedBinary(path string) error {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fmt.Errorf("no such file: %w", err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return errors.New("not a regular file")
	case st.Uid != 0 && int(st.Uid) != os.Geteuid():
		return fmt.Errorf("owned by uid %d: only a binary of root or of the master's user is run", st.Uid)
	case st.Mode&0o022 != 0:
		return fmt.Errorf("writable by group or others (mode %#o)", st.Mode&0o777)
	}
	return nil
}
