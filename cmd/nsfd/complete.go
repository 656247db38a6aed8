package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nsfd/nsfd/supervisor"
)

// daemonNames are the daemons of the running master (its status, file
// errors included), else those of etc/'s files.
func (m *Main) daemonNames(ctx context.Context) []string {
	etc := m.Etc
	if etc == "" {
		etc = defaultEtc()
	}
	var names []string
	if c, err := newCtlClient(etc); err == nil {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		var st supervisor.Status
		if c.call(ctx, "GET", "/v1/status", nil, &st) == nil {
			for _, d := range st.Daemons {
				names = append(names, d.Name)
			}
			for _, fe := range st.Errors {
				names = append(names, daemonOfFile(fe.File))
			}
		}
	}
	if names == nil {
		ents, _ := os.ReadDir(etc)
		for _, e := range ents {
			n := e.Name()
			ext := filepath.Ext(n)
			if e.IsDir() || strings.HasPrefix(n, ".") || (ext != ".ini" && ext != ".conf") || n == "nsfd.ini" {
				continue
			}
			names = append(names, strings.TrimSuffix(n, ext))
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// completeDaemons completes daemon names for the first n arguments (n < 0:
// every argument).
func (m *Main) completeDaemons(n int) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if n >= 0 && len(args) >= n {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for _, name := range m.daemonNames(cmd.Context()) {
			if strings.HasPrefix(name, toComplete) && !slices.Contains(args, name) {
				out = append(out, name)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
