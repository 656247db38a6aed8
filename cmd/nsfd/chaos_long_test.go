//go:build chaos && linux

package main

// Under -tags chaos the fault-injection tests run in their long form, with
// the figures: go test -tags chaos -count=1 -run Chaos -v ./cmd/nsfd

func init() { chaosTag = true }
