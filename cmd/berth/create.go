package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func newCreateCommand(a *app) *cobra.Command {
	f := newContainerFlags()
	cmd := &cobra.Command{
		Use:   "create [flags] IMAGE [COMMAND [ARG...]]",
		Short: "Create a container from an image and print its id",
		Long: `Create a container from an image and print its id; start it with
'berth start'. The image is pulled first when it is not present (see --pull).`,
		Args:        f.checkArgs,
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, args []string) error {
			ct, err := f.create(cmd, a, args, f.rm)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), ct.ID)
			return err
		},
	}
	cmd.Flags().SetInterspersed(false)
	f.add(cmd.Flags())
	cmd.Flags().BoolVar(&f.rm, "rm", false, "remove the container when its task exits")
	return cmd
}

// containerFlags are the options of create and run that describe the
// container. Values that can be checked without the daemon are checked
// by their flag types, so a typo is a usage error.
type containerFlags struct {
	name, hostname, workdir, user, entrypoint, runtime, platform string
	env, envFiles, capAdd, capDrop, securityOpt                  []string
	mounts                                                       []client.ContainerMount
	ports                                                        []client.PortMapping
	memory                                                       bytesValue
	cpus                                                         cpusValue
	pidsLimit                                                    int64
	readOnly, privileged, interactive, tty, rm                   bool
	restart                                                      restartValue
	network, pull                                                choiceValue
	labels                                                       labelsFlag
}

func newContainerFlags() *containerFlags {
	return &containerFlags{
		labels:  labelsFlag{},
		network: choiceValue{choices: []string{"bridge", "host", "none"}},
		pull:    choiceValue{value: "missing", choices: []string{"missing", "always", "never"}},
	}
}

func (f *containerFlags) add(fs *pflag.FlagSet) {
	// -h is --hostname, as in docker; help stays --help.
	fs.Bool("help", false, "help for this command")
	fs.StringVar(&f.name, "name", "", "name the container")
	fs.StringVarP(&f.hostname, "hostname", "h", "", "container host name")
	fs.StringArrayVarP(&f.env, "env", "e", nil, "set `KEY=VALUE` in the environment (KEY alone: its value here, if set)")
	fs.StringArrayVar(&f.envFiles, "env-file", nil, "read environment variables from `FILE` (KEY=VALUE lines, # comments)")
	fs.VarP(&mountsValue{mounts: &f.mounts}, "volume", "v", "bind mount a host directory (repeatable)")
	fs.Var(&mountsValue{mounts: &f.mounts, tmpfs: true}, "tmpfs", "mount a tmpfs; options: size=64m, mode=1777, ... (repeatable)")
	fs.StringVarP(&f.workdir, "workdir", "w", "", "working directory of the command")
	fs.StringVarP(&f.user, "user", "u", "", "run as `USER[:GROUP]` (names or ids)")
	fs.StringVar(&f.entrypoint, "entrypoint", "", "replace the image's entrypoint (\"\" clears it)")
	fs.VarP(&f.memory, "memory", "m", "memory limit (512m, 1g, ...)")
	fs.Var(&f.cpus, "cpus", "number of CPUs (1.5)")
	fs.Int64Var(&f.pidsLimit, "pids-limit", 0, "maximum number of processes (-1: unlimited)")
	fs.BoolVar(&f.readOnly, "read-only", false, "mount the root filesystem read-only")
	fs.BoolVar(&f.privileged, "privileged", false, "give every capability and device to the container")
	fs.StringSliceVar(&f.capAdd, "cap-add", nil, "add Linux capabilities (NET_ADMIN, ALL, ...)")
	fs.StringSliceVar(&f.capDrop, "cap-drop", nil, "drop Linux capabilities")
	fs.StringArrayVar(&f.securityOpt, "security-opt", nil, "security options (no-new-privileges, seccomp=unconfined, apparmor=PROFILE)")
	fs.StringVar(&f.runtime, "runtime", "", "OCI runtime: runc or crun (default: the daemon's)")
	fs.Var(&f.network, "network", "network: bridge, host or none (default bridge)")
	fs.Var(&f.network, "net", "alias of --network")
	fs.MarkHidden("net")
	fs.VarP(&portsValue{ports: &f.ports}, "publish", "p", "publish a container port on the host (ranges: 8000-8001:80-81; repeatable)")
	fs.VarP(f.labels, "label", "l", "set a container label (repeatable)")
	fs.Var(&f.restart, "restart", "restart policy: no, always, unless-stopped, on-failure[:MAX]")
	fs.StringVar(&f.platform, "platform", "", "use the image for `OS/ARCH[/VARIANT]`")
	fs.Var(&f.pull, "pull", "pull the image: missing, always or never")
	fs.BoolVarP(&f.interactive, "interactive", "i", false, "keep stdin open")
	fs.BoolVarP(&f.tty, "tty", "t", false, "allocate a terminal")
}

// config builds the container's configuration from the flags and the
// positional IMAGE [COMMAND...]. lookupEnv resolves -e KEY without a value.
func (f *containerFlags) config(fs *pflag.FlagSet, args []string, lookupEnv func(string) (string, bool)) (client.ContainerConfig, error) {
	cfg := client.ContainerConfig{
		Image: args[0], Args: args[1:], WorkingDir: f.workdir, User: f.user, Hostname: f.hostname,
		Mounts: f.mounts, Ports: f.ports, ReadOnly: f.readOnly, Privileged: f.privileged,
		CapAdd: f.capAdd, CapDrop: f.capDrop, SecurityOpt: f.securityOpt, TTY: f.tty, Stdin: f.interactive,
		Runtime: f.runtime, Network: f.network.value, Restart: f.restart.value, Platform: f.platform,
		Resources: client.Resources{MemoryBytes: int64(f.memory), CPUs: float64(f.cpus), PidsLimit: f.pidsLimit},
	}
	if len(f.labels) > 0 {
		cfg.Labels = f.labels
	}
	if fs.Changed("entrypoint") {
		cfg.EntrypointSet = true
		if f.entrypoint != "" {
			cfg.Entrypoint = []string{f.entrypoint}
		}
	}
	for _, name := range f.envFiles {
		file, err := os.Open(name)
		if err != nil {
			return client.ContainerConfig{}, fmt.Errorf("env file: %w", err)
		}
		env, err := parseEnvFile(file, lookupEnv)
		file.Close()
		if err != nil {
			return client.ContainerConfig{}, fmt.Errorf("env file %s: %w", name, err)
		}
		cfg.Env = append(cfg.Env, env...)
	}
	env, err := resolveEnv(f.env, lookupEnv)
	if err != nil {
		return client.ContainerConfig{}, err
	}
	cfg.Env = append(cfg.Env, env...)
	return cfg, nil
}

// checkArgs validates the flag combinations; it runs before connecting.
func (f *containerFlags) checkArgs(cmd *cobra.Command, args []string) error {
	if err := minArgs(1)(cmd, args); err != nil {
		return err
	}
	if f.rm && f.restart.value != "" && f.restart.value != "no" {
		return usagef("--rm and --restart %s conflict: a removed container cannot restart", f.restart.value)
	}
	return nil
}

// create pulls the image if the --pull policy asks for it and creates the
// container; autoRemove sets --rm's config for the daemon.
func (f *containerFlags) create(cmd *cobra.Command, a *app, args []string, autoRemove bool) (client.Container, error) {
	cfg, err := f.config(cmd.Flags(), args, os.LookupEnv)
	if err != nil {
		return client.Container{}, err
	}
	cfg.AutoRemove = autoRemove
	ctx, opts := cmd.Context(), client.CreateContainerOpts{Name: f.name}
	if f.pull.value == "always" {
		if err := pullImage(ctx, a, cfg.Image, f.platform); err != nil {
			return client.Container{}, err
		}
		return a.client.CreateContainer(ctx, cfg, opts)
	}
	// The image is usually there: no round trip to check first.
	ct, err := a.client.CreateContainer(ctx, cfg, opts)
	if f.pull.value == "never" || !errors.Is(err, client.ErrNotFound) {
		return ct, err
	}
	if _, gerr := a.client.GetImage(ctx, cfg.Image); !errors.Is(gerr, client.ErrNotFound) {
		return ct, err // not found was about something else
	}
	fmt.Fprintf(a.stderr, "Unable to find image '%s' locally\n", cfg.Image)
	if err := pullImage(ctx, a, cfg.Image, f.platform); err != nil {
		return client.Container{}, err
	}
	return a.client.CreateContainer(ctx, cfg, opts)
}

// pullImage pulls ref, showing progress on stderr, as stdout is the
// container's.
func pullImage(ctx context.Context, a *app, ref, platform string) error {
	auth, err := registryAuth(ctx, ref)
	if err != nil {
		return err
	}
	view := newProgressView(a.stderr, isTerminal(a.stderr))
	_, err = a.client.Pull(ctx, ref, client.PullOptions{Platform: platform, Auth: auth, Progress: view.update})
	view.finish()
	return err
}

// resolveEnv turns -e values into KEY=VALUE: KEY alone takes its value from
// lookup and is dropped when unset there, as in docker.
func resolveEnv(vars []string, lookup func(string) (string, bool)) ([]string, error) {
	var out []string
	for _, v := range vars {
		key, _, hasValue := strings.Cut(v, "=")
		if err := checkEnvKey(key); err != nil {
			return nil, err
		}
		if hasValue {
			out = append(out, v)
		} else if val, ok := lookup(key); ok {
			out = append(out, key+"="+val)
		}
	}
	return out, nil
}

func checkEnvKey(key string) error {
	if key == "" {
		return fmt.Errorf("environment variable without a name: %w", client.ErrInvalidArgument)
	}
	if strings.ContainsFunc(key, unicode.IsSpace) {
		return fmt.Errorf("environment variable %q contains white space: %w", key, client.ErrInvalidArgument)
	}
	return nil
}

// parseEnvFile reads an --env-file: one KEY=VALUE per line, the value kept
// verbatim (no quotes are removed); blank lines and lines starting with #
// are skipped, and KEY alone is resolved with lookup.
func parseEnvFile(r io.Reader, lookup func(string) (string, bool)) ([]string, error) {
	var vars []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeftFunc(sc.Text(), unicode.IsSpace)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if _, _, ok := strings.Cut(line, "="); !ok {
			line = strings.TrimRightFunc(line, unicode.IsSpace)
		}
		env, err := resolveEnv([]string{line}, lookup)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		vars = append(vars, env...)
	}
	return vars, sc.Err()
}

// bytesValue is a size flag: 512m, 1.5g, 100kb, 1GiB, 4096 (bytes); units
// are binary, as in docker.
type bytesValue int64

func (b *bytesValue) String() string {
	if *b == 0 {
		return ""
	}
	return strconv.FormatInt(int64(*b), 10)
}
func (b *bytesValue) Type() string { return "bytes" }
func (b *bytesValue) Set(s string) error {
	n, err := parseBytes(s)
	if err != nil {
		return err
	}
	if n <= 0 {
		return fmt.Errorf("size %q must be positive", s)
	}
	*b = bytesValue(n)
	return nil
}

// parseBytes parses a size: a number, optionally fractional, then an
// optional unit k, m, g, t or p, optionally followed by "i" and/or "b"
// ("512m", "1.5g", "64MiB", "100kb"); units are powers of 1024.
func parseBytes(s string) (int64, error) {
	num := strings.TrimRightFunc(s, unicode.IsLetter)
	unit := strings.ToLower(strings.TrimSpace(s[len(num):]))
	num = strings.TrimSpace(num)
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || strings.ContainsAny(num, "eEx+-") {
		return 0, fmt.Errorf("size %q: want a number with an optional unit (512m, 1.5g)", s)
	}
	unit = strings.TrimSuffix(unit, "b")
	unit = strings.TrimSuffix(unit, "i")
	exp := strings.Index("kmgtp", unit) + 1
	if len(unit) > 1 || (unit != "" && exp == 0) {
		return 0, fmt.Errorf("size %q: unknown unit (want b, k, m, g, t or p)", s)
	}
	if unit == "" {
		exp = 0
	}
	n := v
	for range exp {
		n *= 1024
	}
	if n >= 1<<63 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(n), nil
}

// cpusValue is --cpus: a positive fractional number of CPUs.
type cpusValue float64

func (c *cpusValue) String() string {
	if *c == 0 {
		return ""
	}
	return strconv.FormatFloat(float64(*c), 'f', -1, 64)
}
func (c *cpusValue) Type() string { return "number" }
func (c *cpusValue) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 || v > 1<<20 {
		return fmt.Errorf("want a positive number of CPUs like 0.5 or 2")
	}
	*c = cpusValue(v)
	return nil
}

// restartValue is --restart.
type restartValue struct{ value string }

func (r *restartValue) String() string { return r.value }
func (r *restartValue) Type() string   { return "policy" }
func (r *restartValue) Set(s string) error {
	if err := checkRestart(s); err != nil {
		return err
	}
	r.value = s
	return nil
}

// checkRestart validates a restart policy: no, always, unless-stopped,
// on-failure or on-failure:N with N >= 0.
func checkRestart(s string) error {
	switch s {
	case "no", "always", "unless-stopped", "on-failure":
		return nil
	}
	if n, ok := strings.CutPrefix(s, "on-failure:"); ok {
		if v, err := strconv.Atoi(n); err == nil && v >= 0 {
			return nil
		}
		return fmt.Errorf("on-failure:%s: the maximum restart count must be a number >= 0", n)
	}
	return fmt.Errorf("want no, always, unless-stopped or on-failure[:MAX]")
}

// choiceValue is a flag taking one of a few words.
type choiceValue struct {
	value   string
	choices []string
}

func (c *choiceValue) String() string { return c.value }
func (c *choiceValue) Type() string   { return strings.Join(c.choices, "|") }
func (c *choiceValue) Set(s string) error {
	if !slices.Contains(c.choices, s) {
		return fmt.Errorf("want one of %s", strings.Join(c.choices, ", "))
	}
	c.value = s
	return nil
}

// mountsValue is -v (bind mounts) or, with tmpfs, --tmpfs; both append to
// the same list, keeping the order of the command line.
type mountsValue struct {
	mounts *[]client.ContainerMount
	tmpfs  bool
}

func (m *mountsValue) String() string { return "" }
func (m *mountsValue) Type() string {
	if m.tmpfs {
		return "PATH[:OPTIONS]"
	}
	return "HOST_PATH:CONTAINER_PATH[:ro|rw]"
}
func (m *mountsValue) Set(s string) error {
	parse := parseVolume
	if m.tmpfs {
		parse = parseTmpfs
	}
	mnt, err := parse(s)
	if err != nil {
		return err
	}
	*m.mounts = append(*m.mounts, mnt)
	return nil
}

// bindOptions are the -v options berth knows.
var bindOptions = []string{"ro", "rw"}

// parseVolume parses -v HOST_PATH:CONTAINER_PATH[:ro|rw]. Only bind
// mounts of absolute host paths exist: berth has no named volumes.
func parseVolume(s string) (client.ContainerMount, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return client.ContainerMount{}, fmt.Errorf("want HOST_PATH:CONTAINER_PATH[:ro|rw] (berth has no anonymous volumes)")
	}
	src, dst := parts[0], parts[1]
	if !path.IsAbs(src) {
		return client.ContainerMount{}, fmt.Errorf("host path %q is not absolute (berth has no named volumes)", src)
	}
	if !path.IsAbs(dst) {
		return client.ContainerMount{}, fmt.Errorf("container path %q is not absolute", dst)
	}
	m := client.ContainerMount{Type: "bind", Source: path.Clean(src), Destination: path.Clean(dst)}
	if len(parts) == 3 {
		for opt := range strings.SplitSeq(parts[2], ",") {
			if !slices.Contains(bindOptions, opt) {
				return client.ContainerMount{}, fmt.Errorf("unknown volume option %q (want %s)", opt, strings.Join(bindOptions, ", "))
			}
			m.Options = append(m.Options, opt)
		}
	}
	return m, nil
}

// parseTmpfs parses --tmpfs PATH[:OPTIONS], OPTIONS being mount options
// separated by commas.
func parseTmpfs(s string) (client.ContainerMount, error) {
	dst, opts, _ := strings.Cut(s, ":")
	if !path.IsAbs(dst) {
		return client.ContainerMount{}, fmt.Errorf("tmpfs path %q is not absolute", dst)
	}
	m := client.ContainerMount{Type: "tmpfs", Destination: path.Clean(dst)}
	if opts != "" {
		m.Options = strings.Split(opts, ",")
	}
	return m, nil
}

// portsValue is -p; each value may publish a range of ports.
type portsValue struct{ ports *[]client.PortMapping }

func (p *portsValue) String() string { return "" }
func (p *portsValue) Type() string   { return "[[IP:]HOST_PORT:]CONTAINER_PORT[/PROTO]" }
func (p *portsValue) Set(s string) error {
	ports, err := parsePublish(s)
	if err != nil {
		return err
	}
	*p.ports = append(*p.ports, ports...)
	return nil
}

// parsePublish parses -p [[HOST_IP:]HOST_PORT:]CONTAINER_PORT[/PROTO], with
// an IPv6 HOST_IP in brackets, an empty HOST_PORT (or none) for a port the
// daemon chooses, and ranges (8000-8001:80-81) of equal length.
func parsePublish(s string) ([]client.PortMapping, error) {
	spec, proto, hasProto := strings.Cut(s, "/")
	if !hasProto {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return nil, fmt.Errorf("port %q: protocol %q: want tcp or udp", s, proto)
	}
	var ip string
	if rest, ok := strings.CutPrefix(spec, "["); ok {
		addr, after, ok := strings.Cut(rest, "]:")
		if !ok {
			return nil, fmt.Errorf("port %q: want [IPV6]:HOST_PORT:CONTAINER_PORT", s)
		}
		ip, spec = addr, after
		if !strings.Contains(spec, ":") {
			return nil, fmt.Errorf("port %q: want [IPV6]:HOST_PORT:CONTAINER_PORT", s)
		}
	}
	parts := strings.Split(spec, ":")
	var hostPorts, containerPorts string
	switch len(parts) {
	case 1:
		containerPorts = parts[0]
	case 2:
		hostPorts, containerPorts = parts[0], parts[1]
	case 3:
		if ip != "" {
			return nil, fmt.Errorf("port %q: too many colons", s)
		}
		ip, hostPorts, containerPorts = parts[0], parts[1], parts[2]
	default:
		return nil, fmt.Errorf("port %q: want [[HOST_IP:]HOST_PORT:]CONTAINER_PORT[/PROTO] (IPv6 addresses in brackets)", s)
	}
	if ip != "" {
		addr, err := netip.ParseAddr(ip)
		if err != nil || addr.Zone() != "" {
			return nil, fmt.Errorf("port %q: %q is not an IP address", s, ip)
		}
		ip = addr.String()
	}
	cFirst, cLast, err := parsePortRange(containerPorts)
	if err != nil {
		return nil, fmt.Errorf("port %q: container port: %w", s, err)
	}
	var hFirst, hLast uint16
	if hostPorts != "" {
		if hFirst, hLast, err = parsePortRange(hostPorts); err != nil {
			return nil, fmt.Errorf("port %q: host port: %w", s, err)
		}
		if hLast-hFirst != cLast-cFirst {
			return nil, fmt.Errorf("port %q: the host and container ranges differ in length", s)
		}
	}
	var out []client.PortMapping
	for i := 0; i <= int(cLast-cFirst); i++ {
		pm := client.PortMapping{HostIP: ip, ContainerPort: cFirst + uint16(i), Protocol: proto}
		if hostPorts != "" {
			pm.HostPort = hFirst + uint16(i)
		}
		out = append(out, pm)
	}
	return out, nil
}

// parsePortRange parses "80" or "8000-8010".
func parsePortRange(s string) (first, last uint16, err error) {
	lo, hi, isRange := strings.Cut(s, "-")
	if first, err = parsePort(lo); err != nil {
		return 0, 0, err
	}
	last = first
	if isRange {
		if last, err = parsePort(hi); err != nil {
			return 0, 0, err
		}
		if last < first {
			return 0, 0, fmt.Errorf("range %q ends before it starts", s)
		}
	}
	return first, last, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	return uint16(n), nil
}
