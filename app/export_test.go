package app

import (
	"context"
	"io"
)

// RunCommand runs a processor binary's command line in process, as Main
// does, and returns its exit status; stdin is a terminal when terminal is
// set.
func RunCommand(ctx context.Context, args []string, in io.Reader, terminal bool, stdout, stderr io.Writer, fns ...TopologyFunc) int {
	return run(ctx, "orders", args, stdin{in, terminal}, stdout, stderr, fns)
}
