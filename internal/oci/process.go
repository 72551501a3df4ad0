package oci

import (
	"fmt"
	"path"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

// defaultPath is PATH when neither the image nor the user sets it.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// mergeEnv returns base with each entry of over set in it: a key already
// in base keeps its position and takes over's value, a new key is appended.
// Entries are KEY=VALUE with a non-empty KEY and no NUL byte; source names
// where over comes from in errors.
func mergeEnv(base, over []string, source string) ([]string, error) {
	out := slices.Clone(base)
	for _, e := range over {
		key, _, ok := strings.Cut(e, "=")
		if !ok || key == "" || strings.ContainsRune(e, 0) {
			return nil, fmt.Errorf("%s %q: want KEY=VALUE with a non-empty KEY and no NUL byte: %w", source, e, errdefs.ErrInvalidArgument)
		}
		if i := slices.IndexFunc(out, func(b string) bool { return strings.HasPrefix(b, key+"=") }); i >= 0 {
			out[i] = e
		} else {
			out = append(out, e)
		}
	}
	return out, nil
}

// setDefaultEnv appends KEY=value unless env sets KEY.
func setDefaultEnv(env []string, key, value string) []string {
	if slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, key+"=") }) {
		return env
	}
	return append(env, key+"="+value)
}

// cleanWorkingDir validates a working directory and returns it cleaned;
// "" stays "".
func cleanWorkingDir(dir, source string) (string, error) {
	if dir == "" {
		return "", nil
	}
	if strings.ContainsRune(dir, 0) || !path.IsAbs(dir) {
		return "", fmt.Errorf("%s %q: must be an absolute path: %w", source, dir, errdefs.ErrInvalidArgument)
	}
	return path.Clean(dir), nil
}

// validateArgs checks a process's arguments: at least one, the first not
// empty, none with a NUL byte.
func validateArgs(args []string, source string) error {
	if len(args) == 0 || args[0] == "" {
		return fmt.Errorf("%s: no command to run (the image has no entrypoint or command, and none was given): %w", source, errdefs.ErrInvalidArgument)
	}
	for _, a := range args {
		if strings.ContainsRune(a, 0) {
			return fmt.Errorf("%s: argument %q contains a NUL byte: %w", source, a, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// processArgs joins entrypoint and command as Docker does: --entrypoint
// replaces the image's entrypoint and also drops the image's command
// (--entrypoint "" leaves no entrypoint), and arguments given replace the
// command.
func processArgs(imgEntrypoint, imgCmd []string, o Options) []string {
	entrypoint, cmd := imgEntrypoint, imgCmd
	if o.EntrypointSet {
		entrypoint, cmd = o.Entrypoint, nil
		if len(entrypoint) == 1 && entrypoint[0] == "" {
			entrypoint = nil
		}
	}
	if len(o.Args) > 0 {
		cmd = o.Args
	}
	return append(slices.Clone(entrypoint), cmd...)
}

// ExecOptions describe a process to run in a running container (berth
// exec). Empty fields take the container's values.
type ExecOptions struct {
	// Args are the command and its arguments; required.
	Args []string
	// Env entries (KEY=VALUE) are set over the container's environment.
	Env []string
	// User is looked up in the container's root filesystem, as --user is;
	// "" keeps the container's user.
	User string
	// WorkingDir must be absolute; "" keeps the container's.
	WorkingDir string
	// TTY gives the process a terminal.
	TTY bool
}

// ExecProcess returns the process of an exec in the container whose spec
// is spec: it inherits the container's environment, user, working
// directory, capabilities, rlimits, no-new-privileges and OOM score, and e
// overrides the first three. rootfs is the container's mounted root
// filesystem, where User is looked up. When User is given and e.Env does
// not set HOME, HOME is that user's home directory.
func ExecProcess(spec *specs.Spec, rootfs string, e ExecOptions) (*specs.Process, error) {
	if spec == nil || spec.Process == nil {
		return nil, fmt.Errorf("exec: container spec has no process: %w", errdefs.ErrInvalidArgument)
	}
	if err := validateArgs(e.Args, "exec"); err != nil {
		return nil, err
	}
	p := *spec.Process
	p.Terminal, p.ConsoleSize = e.TTY, nil
	p.Args = slices.Clone(e.Args)
	env, err := mergeEnv(spec.Process.Env, e.Env, "exec --env")
	if err != nil {
		return nil, err
	}
	if e.User != "" {
		if err := validateUser(e.User); err != nil {
			return nil, fmt.Errorf("exec --user %q: %w", e.User, err)
		}
		u, home, err := resolveUser(rootfs, e.User)
		if err != nil {
			return nil, fmt.Errorf("exec --user %q: %w", e.User, err)
		}
		p.User = u
		if !slices.ContainsFunc(e.Env, func(v string) bool { return strings.HasPrefix(v, "HOME=") }) {
			if env, err = mergeEnv(env, []string{"HOME=" + home}, "home directory"); err != nil {
				return nil, err
			}
		}
	} else {
		p.User.AdditionalGids = slices.Clone(p.User.AdditionalGids)
	}
	p.Env = env
	if e.WorkingDir != "" {
		if p.Cwd, err = cleanWorkingDir(e.WorkingDir, "exec --workdir"); err != nil {
			return nil, err
		}
	}
	if c := spec.Process.Capabilities; c != nil {
		p.Capabilities = &specs.LinuxCapabilities{
			Bounding: slices.Clone(c.Bounding), Effective: slices.Clone(c.Effective),
			Inheritable: slices.Clone(c.Inheritable), Permitted: slices.Clone(c.Permitted),
			Ambient: slices.Clone(c.Ambient),
		}
	}
	p.Rlimits = slices.Clone(spec.Process.Rlimits)
	if spec.Process.OOMScoreAdj != nil {
		p.OOMScoreAdj = ptr(*spec.Process.OOMScoreAdj)
	}
	return &p, nil
}
