package supervisor

import (
	"errors"
	"net/http"
)

// handleUpgrade is POST /v1/upgrade[?binary=PATH]. A refused upgrade is a
// 409 and a failed exec a 500, each with the error; a successful one never
// answers: the process becomes the new binary and the connection closes,
// and the caller reads the new master's status.
func (s *Supervisor) handleUpgrade(w http.ResponseWriter, r *http.Request) {
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
