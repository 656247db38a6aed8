package supervisor

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// encodeHandover writes h, at HandoverVersion, to a memfd left open across
// an exec, and returns it.
func encodeHandover(h *Handover) (*os.File, error) {
	h.Version = HandoverVersion
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode hand-over: %w", err)
	}
	fd, err := unix.MemfdCreate("nsfd-handover", 0) // no MFD_CLOEXEC: for the new binary
	if err != nil {
		return nil, fmt.Errorf("hand-over memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "nsfd-handover")
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, fmt.Errorf("write hand-over: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("write hand-over: %w", err)
	}
	return f, nil
}
