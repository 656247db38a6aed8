package supervisor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/hashicorp/go-hclog"

	"github.com/nsfd/nsfd/config"
)

// ReloadResult says what a reload did.
type ReloadResult struct {
	Added   []string          `json:"added"`
	Removed []string          `json:"removed"`
	Resized []string          `json:"resized"` // pool sizes applied in place
	Rolled  []string          `json:"rolled"`  // workers rolled onto a new config
	Errors  map[string]string `json:"errors"`  // file -> error; its daemon keeps its last good config

	Master *MasterChange `json:"master,omitempty"` // nsfd.ini settings changed (masterconf.go)
}

// Reload re-reads etc/ and applies the difference (SIGHUP, `nsfd reload`).
func (s *Supervisor) Reload(ctx context.Context) (ReloadResult, error) {
	var r ReloadResult
	err := s.do(ctx, func(runCtx context.Context) { r = s.reload(runCtx, "requested") })
	return r, err
}

// reload diffs the desired configuration against the running one, per
// daemon: added → started; removed → drained; pool sizes changed →
// applied in place; anything else → rolled onto the still-open listeners.
// A file that fails to load keeps its daemon on the last good config; a
// broken nsfd.ini keeps everything as it is.
func (s *Supervisor) reload(ctx context.Context, why string) ReloadResult {
	r := ReloadResult{Errors: map[string]string{}}
	first := s.reloads == 0
	s.reloads++
	if !first {
		s.sdReloading()
		defer s.sdReady()
	}
	s.metrics.reloads.Inc()
	nm, err := config.LoadMaster(s.master.Dir)
	if err != nil {
		s.masterErr = err
		r.Errors[s.master.File] = err.Error()
		s.log.Error("nsfd.ini does not load; keeping the running configuration", "error", err)
		return r
	}
	s.masterErr = nil
	set, err := config.Load(s.master.Dir)
	if err != nil {
		s.masterErr = err
		r.Errors[s.master.File] = err.Error()
		s.log.Error("configuration does not load; keeping the running configuration", "error", err)
		return r
	}
	if !first {
		s.log.Info("reloading", "why", why)
	}

	// Files that fail: their daemons (matched by file) keep the last good config.
	kept := map[string]bool{}
	errs := map[string]error{}
	for file, err := range set.Errors {
		r.Errors[file] = err.Error()
		// A file still open for writing is not broken, only not complete:
		// it is applied once its writer closes it (the watcher sees that).
		lvl, what := hclog.Error, "daemon file does not load"
		if errors.Is(err, config.ErrBeingWritten) {
			lvl, what = hclog.Info, "daemon file is being written"
		}
		if d := s.daemonByFile(file); d != nil {
			if d.configErr == nil || d.configErr.Error() != err.Error() {
				s.log.Named(d.cfg.Name).Log(lvl, what+"; keeping the last good config", "error", err)
			}
			d.configErr = err
			kept[d.cfg.Name] = true
			continue
		}
		if old, ok := s.errs[file]; !ok || old.Error() != err.Error() {
			s.log.Log(lvl, what, "file", file, "error", err)
		}
		errs[file] = err
	}
	s.errs = errs

	desired := map[string]*config.Daemon{}
	for _, d := range set.Daemons {
		desired[d.Name] = d
	}
	// Removed: drained in the background, dependents first.
	var gone []*daemon
	for name, d := range s.daemons {
		if desired[name] == nil && !kept[name] && !d.draining {
			gone = append(gone, d)
			r.Removed = append(r.Removed, name)
		}
	}
	if len(gone) > 0 {
		for _, d := range gone {
			s.log.Named(d.cfg.Name).Info("daemon file removed; draining")
		}
		s.drainWithDependents(gone, func(d *daemon) {
			if s.daemons[d.cfg.Name] == d {
				delete(s.daemons, d.cfg.Name)
				s.reg.remove(d.cfg.Name)
				s.hooks.set(d.cfg.Name, nil)
				s.health.remove(d.cfg.Name)
			}
		})
	}

	for _, d := range slices.Concat(set.StartOrder()...) {
		for _, w := range d.Warnings {
			if first {
				s.log.Named(d.Name).Warn(w.Error())
			}
		}
		cur := s.daemons[d.Name]
		switch {
		case cur == nil:
			dm := &daemon{cfg: d}
			if len(d.Requires) > 0 {
				// Started by the gate below once what it requires runs.
				dm.held, dm.waiting = true, "its requirements to start"
				s.daemons[d.Name] = dm
				r.Added = append(r.Added, d.Name)
				continue
			}
			if err := s.startOrWait(ctx, dm); err != nil { // a busy port waits (portwait.go)
				r.Errors[d.File] = err.Error()
				s.errs[d.File] = err
				s.log.Named(d.Name).Error("cannot start daemon", "error", err)
				continue
			}
			s.daemons[d.Name] = dm
			r.Added = append(r.Added, d.Name)
		case cur.draining:
			// Still draining from a removal: it starts on the next reload.
			err := fmt.Errorf("%s: daemon %s is still draining; it starts on the next reload", d.File, d.Name)
			r.Errors[d.File] = err.Error()
			s.errs[d.File] = err
		default:
			cur.configErr = nil
			if cur.cfg.Hash == d.Hash {
				continue
			}
			if cur.pool == nil { // stopped, held, scaled to 0 or waiting for its port
				s.reloadIdle(ctx, cur, d)
				continue
			}
			if err := s.applyChange(ctx, cur, d); err != nil {
				r.Errors[d.File] = err.Error()
				cur.configErr = err
				s.log.Named(d.Name).Error("cannot apply the new config; keeping the old one", "error", err)
				continue
			}
			if d.PoolOnlyChange(cur.cfg) {
				r.Resized = append(r.Resized, d.Name)
			} else {
				r.Rolled = append(r.Rolled, d.Name)
			}
			cur.cfg = d
			s.hooks.set(d.Name, hookCommands(d))
			s.health.set(d.Name, healthTargetOf(d, cur.listeners))
			s.reg.define(record(d, cur.listeners))
		}
	}
	s.gate(ctx)
	r.Master = s.masterReloaded(ctx, nm)
	sort.Strings(r.Added)
	sort.Strings(r.Removed)
	if !first {
		s.log.Info("reloaded", "added", r.Added, "removed", r.Removed, "resized", r.Resized, "rolled", r.Rolled, "errors", len(r.Errors))
	}
	return r
}

// applyChange moves a running daemon to a new config: pool sizes in
// place, anything else by rolling its workers. Listeners that stay are
// kept open; new ones are bound before old ones are closed.
func (s *Supervisor) applyChange(ctx context.Context, cur *daemon, d *config.Daemon) error {
	policy := s.policy(cur, d) // its scale, unless d changes what it was scaled from
	if d.PoolOnlyChange(cur.cfg) {
		return cur.pool.SetPolicy(ctx, policy, d.MaxRequests, d.MaxRequestsJitter)
	}
	exec := execOptions(d)
	ls, err := s.bindListeners(ctx, d, exec, cur.listeners)
	if err != nil {
		return err
	}
	pc := s.poolConfig(d, ls, exec)
	pc.Policy = policy
	if err := cur.pool.Update(ctx, pc); err != nil {
		for _, l := range ls {
			if findListener(cur.listeners, l.Spec) == nil {
				s.closeListener(l)
			}
		}
		return err
	}
	// Old listeners that are gone: the old workers hold their own copies
	// until they drain, so the master's can close now.
	for _, l := range cur.listeners {
		if findListener(ls, l.Spec) == nil {
			s.closeListener(l)
		}
	}
	cur.listeners = ls
	return nil
}

// daemonByFile returns the daemon loaded from file, if any.
func (s *Supervisor) daemonByFile(file string) *daemon {
	for _, d := range s.daemons {
		if d.cfg.File == file {
			return d
		}
	}
	return nil
}

// reloadIdle gives a daemon with no pool its new config d. One stopped by
// hand or held takes it when started; one scaled to 0 keeps its listeners
// on d's addresses, or starts if d changes the sizes it was scaled from
// (the file wins); one waiting for a busy port tries d at once.
func (s *Supervisor) reloadIdle(ctx context.Context, cur *daemon, d *config.Daemon) {
	wasZero := cur.zero()
	s.keepScale(cur, d)
	cur.cfg = d
	switch {
	case cur.portWait != nil:
		cur.cancelPortWait()
		s.startIdle(ctx, cur)
	case wasZero && cur.scale == nil:
		s.startIdle(ctx, cur)
	case cur.zero():
		ls, err := s.bindListeners(ctx, d, execOptions(d), cur.listeners)
		if err != nil {
			cur.configErr = err
			s.log.Named(d.Name).Error("cannot bind the new listeners; keeping the old ones", "error", err)
			return
		}
		s.closeAll(notIn(cur.listeners, ls))
		cur.listeners = ls
		s.reg.define(record(d, ls))
	}
}

// startIdle starts cur from reloadIdle; an error is its config error.
func (s *Supervisor) startIdle(ctx context.Context, cur *daemon) {
	if err := s.startOrWait(ctx, cur); err != nil {
		cur.configErr = err
		s.log.Named(cur.cfg.Name).Error("cannot start daemon", "error", err)
	}
}
