package main

import (
	"errors"
	"strings"
	"testing"
)

func TestContainerCommandsUsageErrorsExit2(t *testing.T) {
	sock := noDaemon(t)
	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"run without image", []string{"run"}, `"berth run" requires at least 1 argument, got 0`},
		{"run bad memory", []string{"run", "--memory", "lots", "busybox"}, `invalid argument "lots" for "-m, --memory"`},
		{"run zero memory", []string{"run", "-m", "0", "busybox"}, "must be positive"},
		{"run bad cpus", []string{"run", "--cpus", "-1", "busybox"}, "want a positive number of CPUs"},
		{"run bad restart", []string{"run", "--restart", "sometimes", "busybox"}, "want no, always, unless-stopped or on-failure[:MAX]"},
		{"run bad on-failure", []string{"run", "--restart", "on-failure:x", "busybox"}, "maximum restart count"},
		{"run rm with restart", []string{"run", "--rm", "--restart", "always", "busybox"}, "--rm and --restart always conflict"},
		{"run bad pull", []string{"run", "--pull", "sometimes", "busybox"}, "want one of missing, always, never"},
		{"run bad network", []string{"run", "--network", "overlay", "busybox"}, "want one of bridge, host, none"},
		{"run bad net alias", []string{"run", "--net", "x", "busybox"}, "want one of bridge, host, none"},
		{"run bad publish", []string{"run", "-p", "80:http", "busybox"}, `"http" is not a port number`},
		{"run relative volume", []string{"run", "-v", "data:/data", "busybox"}, "berth has no named volumes"},
		{"run anonymous volume", []string{"run", "-v", "/data", "busybox"}, "no anonymous volumes"},
		{"run bad tmpfs", []string{"run", "--tmpfs", "tmp", "busybox"}, "is not absolute"},
		{"run bad label", []string{"run", "-l", "team", "busybox"}, `label "team": want KEY=VALUE`},
		{"run unknown flag", []string{"run", "--bogus", "busybox"}, "unknown flag: --bogus"},
		{"run bad pids limit", []string{"run", "--pids-limit", "many", "busybox"}, `invalid argument "many"`},
		{"create without image", []string{"create"}, "requires at least 1 argument"},
		{"create bad memory", []string{"create", "-m", "1x", "busybox"}, "unknown unit"},
		{"start without container", []string{"start"}, "requires at least 1 argument"},
		{"start -a two containers", []string{"start", "-a", "a", "b"}, "-a and -i attach to one container, got 2"},
		{"ps with args", []string{"ps", "x"}, "accepts no arguments"},
		{"ps bad format", []string{"ps", "--format", "yaml"}, "want table or json"},
		{"exec without command", []string{"exec", "c1"}, "requires at least 2 arguments, got 1"},
		{"logs without container", []string{"logs"}, "requires exactly 1 argument, got 0"},
		{"logs bad tail", []string{"logs", "--tail", "some", "c1"}, "want a number of lines or all"},
		{"logs bad since", []string{"logs", "--since", "yesterday", "c1"}, `"yesterday" is not a time`},
		{"logs negative since", []string{"logs", "--since", "-5m", "c1"}, "must not be negative"},
		{"stop without container", []string{"stop"}, "requires at least 1 argument"},
		{"stop bad time", []string{"stop", "-t", "soon", "c1"}, `invalid argument "soon"`},
		{"kill bad signal", []string{"kill", "-s", "SIGNOPE", "c1"}, `unknown signal "SIGNOPE"`},
		{"kill signal out of range", []string{"kill", "-s", "99", "c1"}, "out of range"},
		{"rm without container", []string{"rm"}, "requires at least 1 argument"},
		{"pause without container", []string{"pause"}, "requires at least 1 argument"},
		{"unpause without container", []string{"unpause"}, "requires at least 1 argument"},
		{"inspect without container", []string{"inspect"}, "requires at least 1 argument"},
		{"wait without container", []string{"wait"}, "requires at least 1 argument"},
		{"port without container", []string{"port"}, "requires a container and an optional port, got 0"},
		{"port bad port", []string{"port", "c1", "80/sctp"}, `protocol "sctp"`},
		{"update without flags", []string{"update", "c1"}, "needs at least one of --memory"},
		{"update bad restart", []string{"update", "--restart", "x", "c1"}, "want no, always"},
		{"top without container", []string{"top"}, "requires exactly 1 argument"},
		{"stats bad flag", []string{"stats", "--stream"}, "unknown flag: --stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
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
		})
	}
}

func TestRunFlagsAfterImageBelongToTheCommand(t *testing.T) {
	// --bogus after the image is an argument of the container's command, so
	// the command line is valid and fails only for want of a daemon.
	sock := noDaemon(t)
	for _, args := range [][]string{
		{"run", "busybox", "ls", "--bogus", "-la"},
		{"create", "busybox", "sh", "-c", "exit 3"},
		{"exec", "c1", "ls", "--bogus"},
	} {
		code, _, stderr := runBerth(t, append([]string{"--address", sock}, args...)...)
		if code != exitError || !strings.Contains(stderr, "is it running?") {
			t.Errorf("%v: exit code %d, stderr %q: want 1 and the connection error", args, code, stderr)
		}
	}
}

func TestRunHelpAndHostnameShorthand(t *testing.T) {
	sock := noDaemon(t)
	code, stdout, _ := runBerth(t, "--address", sock, "run", "--help")
	if code != exitOK || !strings.Contains(stdout, "--hostname") || !strings.Contains(stdout, "-h, --hostname") {
		t.Errorf("run --help: exit %d, stdout:\n%s", code, stdout)
	}
	code, _, stderr := runBerth(t, "--address", sock, "run", "-h", "box", "busybox")
	if code != exitError || !strings.Contains(stderr, "is it running?") {
		t.Errorf("run -h box: exit %d, stderr %q: want -h taken as --hostname", code, stderr)
	}
}

func TestExitWith(t *testing.T) {
	if err := exitWith(0); err != nil {
		t.Errorf("exitWith(0) = %v", err)
	}
	var code exitCode
	if err := exitWith(137); !errors.As(err, &code) || code != 137 {
		t.Errorf("exitWith(137) = %v", err)
	}
}
