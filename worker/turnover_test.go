package worker

import (
	"testing"
	"time"
)

func TestTurnoverLongLived(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var tr turnover
	if !tr.longLived(2, t0) {
		t.Error("no arrivals yet: connections held count as long-lived")
	}
	// A burst of 4 keep-alive connections, all held.
	for range 4 {
		tr.begin(t0)
	}
	if !tr.longLived(4, t0.Add(time.Millisecond)) {
		t.Error("a burst of 4 held connections is not long-lived")
	}
	// Connect-per-request: 200 connections in a window, 3 held at a time
	// (about 1.5 ms each).
	for i := range 200 {
		tr.begin(t0.Add(turnoverWindow + time.Duration(i)*turnoverWindow/200))
	}
	now := t0.Add(2*turnoverWindow - time.Millisecond)
	if tr.longLived(3, now) {
		t.Error("connections that turn over 200 times a window count as long-lived")
	}
	// The previous window still counts for one more window...
	if tr.longLived(3, now.Add(turnoverWindow)) {
		t.Error("the previous window's arrivals were forgotten after one window")
	}
	// ...and then the arrivals are forgotten.
	if !tr.longLived(3, now.Add(3*turnoverWindow)) {
		t.Error("arrivals of three windows ago still count")
	}
	// Half of the arrivals held is long-lived by Little's law: 100 ms × 2/4.
	var tr2 turnover
	for range 4 {
		tr2.begin(t0)
	}
	if !tr2.longLived(2, t0) || tr2.longLived(1, t0) {
		t.Error("the line is held × window ≥ arrivals × longLived")
	}
}
