package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// DaemonFiles returns the daemon files of etcDir, sorted: every *.ini and
// *.conf but nsfd.ini, skipping directories, hidden files and the temporary
// files of editors (*.swp, *.swx, *~, .#*, 4913, *.tmp). The paths are
// filepath.Join(etcDir, name).
func DaemonFiles(etcDir string) ([]string, error) {
	ents, err := readDir(etcDir)
	if err != nil {
		return nil, fmt.Errorf("read etc dir: %w", err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() || !IsDaemonFileName(e.Name()) {
			continue
		}
		path := filepath.Join(etcDir, e.Name())
		if fi, err := os.Stat(path); err == nil && fi.IsDir() {
			continue // a symbolic link to a directory
		}
		out = append(out, path)
	}
	slices.Sort(out)
	return out, nil
}

// readDir lists a directory without ever blocking on what the path names:
// it is opened non-blocking and as a directory only, so a FIFO in its place
// is an error, not a hang.
func readDir(dir string) ([]os.DirEntry, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	slices.SortFunc(ents, func(a, b os.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return ents, err
}

// IsDaemonFileName tells whether a file of that name in the etc directory is
// a daemon file (see DaemonFiles); the supervisor's file watcher uses it too.
func IsDaemonFileName(name string) bool {
	if name == MasterFileName || name == "4913" || strings.HasPrefix(name, ".") {
		return false
	}
	for _, s := range []string{".swp", ".swx", "~", ".tmp"} {
		if strings.HasSuffix(name, s) {
			return false
		}
	}
	ext := filepath.Ext(name)
	return (ext == ".ini" || ext == ".conf") && len(name) > len(ext)
}

// Load reads the whole configuration of etcDir: nsfd.ini and every daemon
// file. A broken nsfd.ini is an error (Errors). A broken daemon file is an
// entry of Set.Errors, keyed by its path, and the valid daemons load all the
// same. Checks across files (two files naming the same daemon, requires
// naming an unknown daemon, a requires cycle) put errors on the files
// involved, and those daemons are left out of Set.Daemons too. A daemon that
// requires a daemon whose file is broken still loads: the supervisor keeps
// the broken one on its last good configuration.
func Load(etcDir string) (*Set, error) { return LoadAs(etcDir, CurrentUser()) }

// LoadAs is Load for a master running as as (see CheckAs).
func LoadAs(etcDir string, as RunAs) (*Set, error) {
	s, masterErrs, err := load(etcDir, as, false)
	if len(masterErrs) > 0 {
		return nil, masterErrs
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Check is CheckAs for the current user.
func Check(etcDir string) error { return CheckAs(etcDir, CurrentUser()) }

// CheckAs reads etcDir as Load would in a master running as as, and
// returns every problem it finds, in nsfd.ini too, as one Errors sorted by
// file, then line; nil when all is well. It is `nsfd check`: run by any
// user, it reports what a master running as as would refuse (files and
// directories other users could write when as is root; user, group and
// chroot when it is not; workers that could not reach their notify socket).
func CheckAs(etcDir string, as RunAs) error {
	s, all, err := load(etcDir, as, true)
	if err != nil {
		all = append(all, readError(etcDir, err))
	}
	for path, err := range s.Errors {
		var es Errors
		if errors.As(err, &es) {
			all = append(all, es...)
		} else {
			all = append(all, &Error{File: path, Msg: err.Error()})
		}
	}
	if len(all) == 0 {
		return nil
	}
	sortErrors(all)
	return all
}

// loaded is one daemon file as loadDaemon left it.
type loaded struct {
	path  string
	d     *Daemon
	errs  Errors
	lines map[string]int
}

// fail records a cross-file problem of l at key (file-level if not set).
func (l *loaded) fail(key, msg, hint string) {
	line := l.lines["."+key]
	if line == 0 {
		key = ""
	}
	l.errs = append(l.errs, &Error{File: l.path, Line: line, Key: key, Msg: msg, Hint: hint})
}

// load reads etcDir for a master running as as; the Set is never nil. It
// returns the problems of nsfd.ini and etc/ itself (the Set then has the
// default Master) and the error of reading the directory separately. strict
// adds the checks of `nsfd check` alone (strictCheck).
func load(etcDir string, as RunAs, strict bool) (*Set, Errors, error) {
	m, masterErrs := loadMaster(etcDir, as)
	s := &Set{Master: m, Errors: map[string]error{}}
	if err := checkEtc(etcDir, as); err != nil {
		return s, masterErrs, nil // refused as a whole: its files are not read
	}
	files, err := DaemonFiles(etcDir)
	if err != nil {
		return s, masterErrs, err
	}
	var all []*loaded
	for _, f := range files {
		d, errs, lines := loadDaemon(f, m, as)
		all = append(all, &loaded{path: f, d: d, errs: errs, lines: lines})
	}
	crossCheck(all)
	if strict {
		strictCheck(all, as)
	}
	for _, l := range all {
		if len(l.errs) > 0 {
			sortErrors(l.errs)
			s.Errors[l.path] = l.errs
			continue
		}
		s.Daemons = append(s.Daemons, l.d)
	}
	slices.SortFunc(s.Daemons, func(a, b *Daemon) int { return strings.Compare(a.Name, b.Name) })
	return s, masterErrs, nil
}

// crossCheck finds duplicate names, requires of unknown daemons and requires
// cycles, and adds the errors to the files involved.
func crossCheck(all []*loaded) {
	byName := map[string][]*loaded{}
	var names []string
	for _, l := range all {
		if byName[l.d.Name] == nil {
			names = append(names, l.d.Name)
		}
		byName[l.d.Name] = append(byName[l.d.Name], l)
	}
	for _, name := range names {
		ls := byName[name]
		if len(ls) < 2 {
			continue
		}
		for _, l := range ls {
			var others []string
			for _, o := range ls {
				if o != l {
					others = append(others, filepath.Base(o.path))
				}
			}
			l.fail("daemon_name", fmt.Sprintf("daemon %q is also defined in %s", name, strings.Join(others, ", ")), "")
		}
	}

	for _, l := range all {
		if len(l.errs) > 0 {
			continue
		}
		for _, r := range l.d.Requires {
			if byName[r] != nil {
				continue
			}
			hint := ""
			if n := nearest(r, names); n != "" {
				hint = "did you mean " + strconv.Quote(n) + "?"
			}
			l.fail("requires", fmt.Sprintf("requires unknown daemon %q", r), hint)
		}
	}

	// Cycles among the daemons still valid.
	valid := map[string]*loaded{}
	for _, l := range all {
		if len(l.errs) == 0 {
			valid[l.d.Name] = l
		}
	}
	for _, l := range all {
		if len(l.errs) > 0 {
			continue
		}
		if cycle := findCycle(l.d.Name, valid); cycle != nil {
			key, what := "requires", "requires cycle: "
			if !slices.Contains(l.d.Requires, cycle[1]) {
				key = "after"
			}
			for i := 0; i+1 < len(cycle); i++ {
				if !slices.Contains(valid[cycle[i]].d.Requires, cycle[i+1]) {
					what = "start order cycle (requires and after): "
				}
			}
			l.fail(key, what+strings.Join(cycle, " -> "), "")
		}
	}
}

// findCycle returns the shortest requires path from start back to start
// through the valid daemons, or nil.
func findCycle(start string, valid map[string]*loaded) []string {
	prev := map[string]string{}
	queue := []string{start}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, next := range valid[cur].d.Before() {
			if valid[next] == nil {
				continue
			}
			if next == start {
				path := []string{start}
				for n := cur; n != start; n = prev[n] {
					path = append(path, n)
				}
				path = append(path, start)
				slices.Reverse(path[1 : len(path)-1])
				return path
			}
			if _, seen := prev[next]; !seen {
				prev[next] = cur
				queue = append(queue, next)
			}
		}
	}
	return nil
}

// Before lists the daemons d starts after: those it requires, then those
// it is after.
func (d *Daemon) Before() []string {
	return slices.Concat(d.Requires, d.After)
}

// StartOrder groups the daemons by requires and after: each group only requires
// daemons of earlier groups (or daemons not in the Set), so the daemons of a
// group may start together once the groups before them are up. Within a
// group the daemons are sorted by name. A Set from Load has no cycles; a
// hand-made one with a cycle gets the daemons of the cycle in a last group.
func (s *Set) StartOrder() [][]*Daemon {
	in := map[string]bool{}
	for _, d := range s.Daemons {
		in[d.Name] = true
	}
	done := map[string]bool{}
	remaining := slices.Clone(s.Daemons)
	var out [][]*Daemon
	for len(remaining) > 0 {
		var group, rest []*Daemon
		for _, d := range remaining {
			ready := true
			for _, r := range d.Before() {
				if in[r] && !done[r] && r != d.Name {
					ready = false
				}
			}
			if ready {
				group = append(group, d)
			} else {
				rest = append(rest, d)
			}
		}
		if len(group) == 0 {
			group, rest = rest, nil
		}
		for _, d := range group {
			done[d.Name] = true
		}
		out = append(out, group)
		remaining = rest
	}
	return out
}

// StopOrder is StartOrder reversed: a daemon stops before those it requires.
func (s *Set) StopOrder() [][]*Daemon {
	out := s.StartOrder()
	slices.Reverse(out)
	return out
}
