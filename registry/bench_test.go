package registry_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nsfd/nsfd/registry"
)

// populate registers daemons d0…d29 on nodes n1…n3, two endpoints each.
func populate(b *testing.B, r registry.Registry) {
	b.Helper()
	for n := 1; n <= 3; n++ {
		for i := range 30 {
			d := daemon(fmt.Sprintf("n%d", n), fmt.Sprintf("d%d", i), 100*n,
				fmt.Sprintf("tcp 10.0.0.%d:%d", n, 7000+i), fmt.Sprintf("unix /run/nsfd/d%d.sock", i))
			if err := r.Register(ctx, d); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// timed runs op b.N times and reports the median and 99th percentile of its
// durations beside the mean (ns/op).
func timed(b *testing.B, op func() error) {
	b.Helper()
	var ds []time.Duration
	for b.Loop() {
		start := time.Now()
		if err := op(); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Nanoseconds()), "median-ns/op")
	b.ReportMetric(float64(ds[len(ds)*99/100].Nanoseconds()), "p99-ns/op")
}

// BenchmarkResolve resolves a name that three nodes run, from one of them:
// six endpoints, the local node's first. Target on SQLite: median ≤ 50 µs.
func BenchmarkResolve(b *testing.B) {
	for _, e := range engines {
		b.Run(e.typ, func(b *testing.B) {
			r := open(b, e.typ, e.dsn(b))
			populate(b, r)
			o := registry.ResolveOptions{LocalNode: "n2", MaxAge: time.Hour}
			timed(b, func() error {
				eps, err := r.Resolve(ctx, "d7", o)
				if err == nil && (len(eps) != 6 || eps[0].Node != "n2") {
					err = fmt.Errorf("resolve: %+v", eps)
				}
				return err
			})
		})
	}
}

// BenchmarkRegisterUnregister is a daemon's registration churn: register with
// two endpoints, then unregister (two write transactions per op).
func BenchmarkRegisterUnregister(b *testing.B) {
	for _, e := range engines {
		b.Run(e.typ, func(b *testing.B) {
			r := open(b, e.typ, e.dsn(b))
			populate(b, r)
			d := daemon("n1", "churn", 100, "tcp 127.0.0.1:41234", "unix /run/nsfd/churn.sock")
			timed(b, func() error {
				if err := r.Register(ctx, d); err != nil {
					return err
				}
				return r.Unregister(ctx, d.Node, d.Name)
			})
		})
	}
}
