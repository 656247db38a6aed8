package supervisor

import (
	"context"
	"fmt"
)

// RunBuiltin runs one of nsfd's built-in workers in this process; args are
// the builtin's name and arguments.
func RunBuiltin(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("builtin: no name")
	}
	return fmt.Errorf("builtin %q: unknown", args[0])
}
