package prefork

import "time"

// rssInterval is how often a pool with max_rss reads its workers' memory;
// a worker is replaced once it is above max_rss on rssStrikes reads in a row
// (a brief peak is not enough).
const (
	rssInterval = time.Second
	rssStrikes  = 2
)

// checkRSS marks the workers whose memory stays above max_rss for
// replacement: as at max_requests, a replacement starts and the worker gets
// SIGTERM only once it is ready, so capacity never dips.
func (p *Pool) checkRSS(now time.Time) {
	if p.cfg.MaxRSS <= 0 || p.sys.rss == nil {
		return
	}
	if now.Before(p.nextRSS) {
		p.wakeAt(p.nextRSS)
		return
	}
	p.nextRSS = now.Add(rssInterval)
	p.wakeAt(p.nextRSS)
	for _, w := range p.workers {
		if !w.ready || w.cause != CauseNone || w.replaced {
			continue
		}
		rss, err := p.sys.rss(w.pid)
		if err != nil || rss <= p.cfg.MaxRSS {
			w.rssStrikes = 0
			continue
		}
		if w.rssStrikes++; w.rssStrikes >= rssStrikes {
			p.cfg.Logger.Info("worker's memory stays above max_rss; replacing it",
				"pid", w.pid, "rss", formatBytes(rss), "max_rss", formatBytes(p.cfg.MaxRSS))
			w.replaced = true
			p.rssRecycles++
		}
	}
}

// usageOf returns how to read what worker w uses, from any goroutine: its
// control group, else /proc (the worker alone); nil if neither can say.
func (p *Pool) usageOf(w *worker) func() *GroupStats {
	if w == nil {
		return func() *GroupStats { return nil }
	}
	if cg := w.cg; cg != nil {
		return func() *GroupStats {
			s := cg.stats()
			return &s
		}
	}
	procUsage, pid := p.sys.procUsage, w.pid
	return func() *GroupStats {
		if procUsage == nil {
			return nil
		}
		s, err := procUsage(pid)
		if err != nil {
			return nil
		}
		return &s
	}
}

// daemonUsage returns what the daemon uses: its control group's accounting
// (exited workers' CPU time included), else the sum of its workers'.
func daemonUsage(cg *DaemonCgroup, ws []WorkerStatus) *GroupStats {
	if cg != nil {
		s := cg.Stats()
		return &s
	}
	var sum GroupStats
	any := false
	for _, w := range ws {
		if w.Resources != nil {
			any = true
			sum.CPUSeconds += w.Resources.CPUSeconds
			sum.MemoryBytes += w.Resources.MemoryBytes
			sum.MemoryPeak += w.Resources.MemoryPeak
			sum.Procs += w.Resources.Procs
		}
	}
	if !any {
		return nil
	}
	return &sum
}
