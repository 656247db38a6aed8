//go:build !unix

package worker

// mapBoard: no load board here; workers do not balance.
func mapBoard(string) []byte { return nil }

func processAlive(int) bool { return false }
