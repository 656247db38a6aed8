package supervisor

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/nsfd/nsfd/config"
)

// debounce is how long etc/ must be quiet before a reload: editors that
// save by rename (vim: write 4913, rename the file to file~, write the new
// one) produce a burst of events that must make exactly one reload.
const debounce = 40 * time.Millisecond

// watcher turns file events in etc/ into one signal per burst of changes.
type watcher struct {
	changes chan struct{}
}

// watch watches etc/ (and its parent, so a replaced etc/ is watched again)
// until ctx ends.
func (s *Supervisor) watch(ctx context.Context) (*watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch etc: %w", err)
	}
	etc := s.opts.EtcDir
	if err := fw.Add(etc); err != nil {
		fw.Close()
		return nil, fmt.Errorf("watch %s: %w", etc, err)
	}
	parent := filepath.Dir(etc)
	if err := fw.Add(parent); err != nil {
		s.log.Debug("not watching the parent of etc/", "error", err)
	}
	w := &watcher{changes: make(chan struct{}, 1)}
	go func() {
		defer fw.Close()
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-fw.Events:
				if !ok {
					return
				}
				dir, base := filepath.Dir(ev.Name), filepath.Base(ev.Name)
				switch {
				case dir == parent && ev.Name == etc:
					// etc/ itself was replaced or (re)created: watch the new one.
					if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Rename) {
						_ = fw.Add(etc)
					}
				case dir == etc && (base == config.MasterFileName || config.IsDaemonFileName(base)):
				default:
					continue // editor temp files, other directories
				}
				timer.Reset(debounce)
			case err, ok := <-fw.Errors:
				if !ok {
					return
				}
				s.log.Warn("watching etc/", "error", err)
			case <-timer.C:
				select {
				case w.changes <- struct{}{}:
				default: // a reload is already pending
				}
			}
		}
	}()
	return w, nil
}
