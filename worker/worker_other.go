//go:build !unix

package worker

import (
	"errors"
	"os"
)

var errWorkerUnsupported = errors.New("inherited listeners are not supported on this platform")

func inheritCloexec(fd int) error { return errWorkerUnsupported }

func inheritedKind(f *os.File) (fdKind, error) { return fdOther, errWorkerUnsupported }
