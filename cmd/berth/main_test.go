package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// runBerth runs the CLI in-process and returns its exit code and output.
func runBerth(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// noDaemon is an address where no daemon listens.
func noDaemon(t *testing.T) string { return filepath.Join(t.TempDir(), "berth.sock") }

func TestUsageErrorsExit2(t *testing.T) {
	sock := noDaemon(t)
	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr
		hint string // the command named in the help hint
	}{
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate" for "berth"`, "berth"},
		{"suggestion", []string{"nmespace"}, `did you mean "namespace"?`, "berth"},
		{"unknown subcommand", []string{"namespace", "frob"}, `unknown command "frob" for "berth namespace"`, "berth namespace"},
		{"unknown subcommand by alias", []string{"ns", "frob"}, `unknown command "frob"`, "berth namespace"},
		{"unknown system subcommand", []string{"system", "df"}, `unknown command "df"`, "berth system"},
		{"bad global flag", []string{"--bogus", "info"}, "unknown flag: --bogus", "berth"},
		{"bad flag", []string{"namespace", "ls", "--bogus"}, "unknown flag: --bogus", "berth namespace ls"},
		{"bad shorthand", []string{"content", "ls", "-Z"}, "unknown shorthand flag: 'Z'", "berth content ls"},
		{"flag without value", []string{"content", "ls", "--filter"}, "flag needs an argument", "berth content ls"},
		{"bad format", []string{"namespace", "ls", "--format", "yaml"}, `invalid argument "yaml" for "--format" flag: want table or json`, "berth namespace ls"},
		{"bad duration", []string{"lease", "create", "--expire", "soon"}, `invalid argument "soon" for "--expire"`, "berth lease create"},
		{"negative expire", []string{"lease", "create", "--expire", "-1h"}, "--expire must not be negative", "berth lease create"},
		{"negative offset", []string{"content", "get", "--offset", "-1", "sha256:x"}, "must not be negative", "berth content get"},
		{"version with args", []string{"version", "x"}, `"berth version" accepts no arguments, got "x"`, "berth version"},
		{"info with args", []string{"info", "x"}, "accepts no arguments", "berth info"},
		{"ns create without name", []string{"ns", "create"}, `"berth namespace create" requires exactly 1 argument, got 0`, "berth namespace create"},
		{"ns create two names", []string{"ns", "create", "a", "b"}, "requires exactly 1 argument, got 2", "berth namespace create"},
		{"ns rm without name", []string{"ns", "rm"}, "requires at least 1 argument, got 0", "berth namespace rm"},
		{"ns ls with args", []string{"ns", "ls", "x"}, "accepts no arguments", "berth namespace ls"},
		{"ns label without labels", []string{"ns", "label", "a"}, "requires at least 2 arguments, got 1", "berth namespace label"},
		{"ns label without =", []string{"ns", "label", "a", "owner"}, `label "owner": want KEY=VALUE`, "berth namespace label"},
		{"ns label empty key", []string{"ns", "label", "a", "=x"}, `label "=x": empty key`, "berth namespace label"},
		{"ns create bad --label", []string{"ns", "create", "a", "--label", "owner"}, `label "owner": want KEY=VALUE`, "berth namespace create"},
		{"ns create empty --label", []string{"ns", "create", "a", "--label", "owner="}, `label "owner=": empty value`, "berth namespace create"},
		{"content get without digest", []string{"content", "get"}, "requires exactly 1 argument", "berth content get"},
		{"content rm without digest", []string{"content", "rm"}, "requires at least 1 argument", "berth content rm"},
		{"content label without =", []string{"content", "label", "sha256:x", "k"}, "want KEY=VALUE", "berth content label"},
		{"content ingest one arg", []string{"content", "ingest", "ref"}, "requires exactly 2 arguments, got 1", "berth content ingest"},
		{"content ingest bad --label", []string{"content", "ingest", "ref", "-", "--label", "x"}, "want KEY=VALUE", "berth content ingest"},
		{"content active with args", []string{"content", "active", "x"}, "accepts no arguments", "berth content active"},
		{"content abort without ref", []string{"content", "abort"}, "requires at least 1 argument", "berth content abort"},
		{"lease rm without id", []string{"lease", "rm"}, "requires at least 1 argument", "berth lease rm"},
		{"lease create with args", []string{"lease", "create", "x"}, "accepts no arguments", "berth lease create"},
		{"events with args", []string{"events", "x"}, "accepts no arguments", "berth events"},
		{"prune with args", []string{"system", "prune", "x"}, "accepts no arguments", "berth system prune"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Usage is checked before connecting: a missing daemon must not matter.
			code, stdout, stderr := runBerth(t, append([]string{"--address", sock}, tc.args...)...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitUsage, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if !strings.HasPrefix(stderr, "berth: ") || !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q, want \"berth: ...%s...\"", stderr, tc.want)
			}
			if hint := "Run '" + tc.hint + " --help' for usage.\n"; !strings.HasSuffix(stderr, hint) {
				t.Errorf("stderr %q, want it to end with %q", stderr, hint)
			}
			if strings.Contains(stderr, "Usage:") {
				t.Errorf("stderr has a usage dump:\n%s", stderr)
			}
		})
	}
}

func TestDaemonNotRunningExits1(t *testing.T) {
	sock := noDaemon(t)
	for _, args := range [][]string{
		{"info"},
		{"namespace", "ls"},
		{"ns", "create", "x", "--label", "a=b"},
		{"ns", "rm", "x"},
		{"ns", "label", "x", "a="},
		{"content", "ls", "-q"},
		{"content", "get", "sha256:x"},
		{"content", "ingest", "ref", "-"},
		{"content", "active"},
		{"lease", "ls", "--format", "json"},
		{"lease", "create", "--expire", "1h"},
		{"events", "-A"},
		{"system", "prune"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, stdout, stderr := runBerth(t, append([]string{"--address", sock}, args...)...)
			if code != exitError {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitError, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			want := "berth: cannot connect to berthd at " + sock + ": is it running?"
			if !strings.HasPrefix(stderr, want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr %q, want one line starting with %q", stderr, want)
			}
		})
	}
}

func TestVersionPrintsClientWithoutDaemon(t *testing.T) {
	sock := noDaemon(t)
	code, stdout, stderr := runBerth(t, "--address", sock, "version")
	if code != exitError {
		t.Errorf("exit code %d, want %d", code, exitError)
	}
	if !strings.HasPrefix(stdout, "Client: ") || strings.Count(stdout, "\n") != 1 {
		t.Errorf("stdout %q, want only the Client line", stdout)
	}
	if !strings.Contains(stderr, "is it running?") {
		t.Errorf("stderr %q, want the connection error", stderr)
	}

	code, stdout, _ = runBerth(t, "--address", sock, "version", "--format", "json")
	if code != exitError {
		t.Errorf("json: exit code %d, want %d", code, exitError)
	}
	if !strings.Contains(stdout, `"client"`) || strings.Contains(stdout, `"server"`) {
		t.Errorf("json: stdout %q, want only the client", stdout)
	}
}

func TestAddressFromEnvironment(t *testing.T) {
	sock := noDaemon(t)
	t.Setenv("BERTH_ADDRESS", sock)
	code, _, stderr := runBerth(t, "info")
	if code != exitError || !strings.Contains(stderr, "cannot connect to berthd at "+sock+":") {
		t.Errorf("exit code %d, stderr %q: want the connection error for %s", code, stderr, sock)
	}
}

func TestBadNamespaceExits1(t *testing.T) {
	code, _, stderr := runBerth(t, "--address", noDaemon(t), "-n", "Not/Valid", "info")
	if code != exitError || !strings.HasPrefix(stderr, "berth: ") {
		t.Errorf("exit code %d, stderr %q: want 1 and an error", code, stderr)
	}
}

func TestHelpNeedsNoDaemon(t *testing.T) {
	sock := noDaemon(t)
	for _, args := range [][]string{
		{},
		{"--help"},
		{"help", "content"},
		{"namespace"},
		{"content", "--help"},
		{"lease", "ls", "-h"},
	} {
		code, stdout, stderr := runBerth(t, append([]string{"--address", sock}, args...)...)
		if code != exitOK || !strings.Contains(stdout, "Usage:") || stderr != "" {
			t.Errorf("berth %v: exit code %d, stdout %q, stderr %q: want help and 0", args, code, stdout, stderr)
		}
	}
}

func TestNoCompletionCommand(t *testing.T) {
	code, _, _ := runBerth(t, "completion", "bash")
	if code != exitUsage {
		t.Errorf("completion: exit code %d, want %d", code, exitUsage)
	}
}
