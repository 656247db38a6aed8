package main

import (
	"context"
	"fmt"

	"github.com/nsfd/nsfd/queue"
)

// builtins are nsfd's built-in workers, by the name a daemon file gives in
// `builtin = NAME`; the master runs them as `nsfd __nsfd_builtin NAME
// args...` (supervisor.BuiltinArg).
var builtins = map[string]func(ctx context.Context, args []string) error{
	// The spool of async calls (package queue); it finds the registry in
	// its environment, which the master sets.
	"queue": queue.Run,
}

// runBuiltin runs one of nsfd's built-in workers in this process; args are
// the builtin's name and arguments.
func runBuiltin(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("builtin: no name")
	}
	run, ok := builtins[args[0]]
	if !ok {
		return fmt.Errorf("builtin %q: unknown", args[0])
	}
	return run(ctx, args[1:])
}
