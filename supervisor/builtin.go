package supervisor

import (
	"context"
	"fmt"

	"github.com/nsfd/nsfd/queue"
)

// RunBuiltin runs one of nsfd's built-in workers in this process; args are
// the builtin's name and arguments. "queue" is the spool of async calls
// (package queue); it finds the registry in its environment
// (NSFD_REGISTRY_TYPE, NSFD_REGISTRY_DSN), which the master sets.
func RunBuiltin(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("builtin: no name")
	}
	switch args[0] {
	case "queue":
		return queue.Run(ctx, args[1:])
	}
	return fmt.Errorf("builtin %q: unknown", args[0])
}
