//go:build unix

package prefork

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	proto "github.com/nsfd/nsfd/worker"
)

// loadBoard is a pool's load board (proto.EnvLoadBoard): a file beside its
// notify socket that its workers map to tell each other how many
// connections each holds (worker.Balance). The master creates it, gives it
// to the workers' user, and frees the entry of every worker it reaps, so
// that a worker killed with its entry claimed is not taken for an idle
// peer. The master does not map the file: its workers own it and could
// truncate it under a mapping, and the master's next write to the mapping
// would kill it (SIGBUS); it reads and writes the file instead. A nil
// *loadBoard is no board.
type loadBoard struct {
	path  string
	f     *os.File
	ino   uint64 // of the file: close removes the path only if it is still ours
	nlink uint64 // links and owner of the file when it was opened
	uid   uint32
}

// loadBoardPath is where the pool whose notify socket is at notifyPath
// keeps its load board.
// (run_dir/notify/web.sock: run_dir/notify/web.load).
func loadBoardPath(notifyPath string) string {
	return strings.TrimSuffix(notifyPath, ".sock") + ".load"
}

// openLoadBoard creates the load board at path, empty, for workers running
// as uid:gid (mode 0600), replacing whatever was there: the board of an
// earlier pool of the same daemon, whose workers keep the one they mapped.
// With keep (a master adopting the pool's workers after an upgrade) a
// board already there is used as it is, so that the workers that run on
// and those started from now share it.
func openLoadBoard(path string, uid, gid int, keep bool) (*loadBoard, error) {
	if keep {
		if b, err := openBoardFile(path, os.O_RDWR|unix.O_NOFOLLOW); err == nil {
			// Only a file of one link that the workers' user owns is the
			// board an earlier master made: not a hard link to another file.
			if b.nlink == 1 && (uid < 0 || b.uid == uint32(uid)) && b.own(uid, gid) == nil {
				return b, nil
			}
			b.f.Close()
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load board %s: %w", path, err)
	}
	b, err := openBoardFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW)
	if err != nil {
		return nil, err
	}
	if err := b.own(uid, gid); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

// openBoardFile opens path with flag and makes it LoadBoardSize bytes if
// it was just created.
func openBoardFile(path string, flag int) (*loadBoard, error) {
	f, err := os.OpenFile(path, flag, 0o600)
	if err != nil {
		return nil, fmt.Errorf("load board: %w", err)
	}
	if flag&os.O_CREATE != 0 {
		if err := f.Truncate(proto.LoadBoardSize); err != nil {
			f.Close()
			return nil, fmt.Errorf("load board: %w", err)
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("load board %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != proto.LoadBoardSize {
		f.Close()
		return nil, fmt.Errorf("load board %s: not a regular file of %d bytes", path, proto.LoadBoardSize)
	}
	return &loadBoard{path: path, f: f, ino: uint64(st.Ino), nlink: uint64(st.Nlink), uid: st.Uid}, nil
}

// own gives the board to the workers' user, mode 0600.
func (b *loadBoard) own(uid, gid int) error {
	if b == nil {
		return nil
	}
	if uid >= 0 || gid >= 0 {
		if err := b.f.Chown(uid, gid); err != nil {
			return fmt.Errorf("load board: %w", err)
		}
	}
	if err := b.f.Chmod(0o600); err != nil {
		return fmt.Errorf("load board: %w", err)
	}
	return nil
}

// env is the board's entry of a worker's environment, if there is a board.
func (b *loadBoard) env() []string {
	if b == nil {
		return nil
	}
	return []string{proto.EnvLoadBoard + "=" + b.path}
}

// forget frees the entry that pid claimed, if any: it has been reaped.
// Only the worker that claimed an entry and the master write its pid
// word, so the entry of a reaped worker changes under no one else.
func (b *loadBoard) forget(pid int) {
	if b == nil || pid <= 0 {
		return
	}
	var buf [proto.LoadBoardSize]byte
	n, _ := b.f.ReadAt(buf[:], 0) // short if a worker truncated the file: those entries are gone anyway
	for off := 0; off+4 <= n; off += proto.LoadBoardEntrySize {
		if binary.NativeEndian.Uint32(buf[off:]) == uint32(pid) {
			var zero [4]byte
			_, _ = b.f.WriteAt(zero[:], int64(off))
			return
		}
	}
}

// close closes the board and removes its file, unless a later pool of the
// same daemon has made the path anew.
func (b *loadBoard) close() {
	if b == nil {
		return
	}
	_ = b.f.Close()
	var st unix.Stat_t
	if unix.Lstat(b.path, &st) == nil && uint64(st.Ino) == b.ino {
		_ = os.Remove(b.path)
	}
}

// openBoard gives the pool a load board beside its notify socket (keep:
// the one there, as openLoadBoard says). Balancing is an optimisation:
// without a board the workers run as well, so a failure is only logged.
func (p *Pool) openBoard(keep bool) {
	b, err := openLoadBoard(loadBoardPath(p.cfg.NotifyPath), p.cfg.Exec.UID, p.cfg.Exec.GID, keep)
	if err != nil {
		p.cfg.Logger.Warn("no load board: workers do not balance connections", "error", err)
		return
	}
	p.board = b
}
