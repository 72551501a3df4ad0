package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/spf13/cobra"
)

func newPsCommand(a *app) *cobra.Command {
	var (
		out     output
		all     bool
		noTrunc bool
		filters []string
	)
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List running containers (all with -a)",
		Long: `List running and paused containers, or all with -a, oldest first.

--filter takes the daemon's filter syntax (fields id, name, image, runtime,
labels.KEY; e.g. name==web, labels.team==ops, image~=busybox).`,
		Args:        noArgs,
		Annotations: needsDaemon(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cts, err := a.client.ListContainers(cmd.Context(), filters...)
			if err != nil {
				return err
			}
			if !all {
				running := cts[:0]
				for _, ct := range cts {
					if isUp(ct.Status) {
						running = append(running, ct)
					}
				}
				cts = running
			}
			now := time.Now()
			id := func(ct client.Container) string {
				if noTrunc {
					return ct.ID
				}
				return shortID(ct.ID)
			}
			return printList(cmd.OutOrStdout(), out, cts, id,
				[]string{"container id", "image", "command", "created", "status", "ports", "names"},
				func(ct client.Container) []string {
					command := strconv.Quote(commandLine(ct))
					if !noTrunc {
						command = truncate(command, 20)
					}
					return []string{id(ct), ct.Image, command, relativeTime(now, ct.CreatedAt),
						containerStatus(ct, now, processStart), portsColumn(ct.Config.Ports), ct.Name}
				})
		},
	}
	out.addListFlags(cmd.Flags(), "container id")
	cmd.Flags().BoolVarP(&all, "all", "a", false, "list every container, not only running ones")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "show whole ids and commands")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "list only containers matching `FILTER` (repeatable, any may match)")
	return cmd
}

// isUp reports whether a task with status s is running or paused.
func isUp(s client.Status) bool { return s == client.StatusRunning || s == client.StatusPaused }

// shortID is the first 12 characters of a container id, as docker shows it.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// truncate shortens s to n runes, the last one an ellipsis.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// commandLine is the command the container runs: the process arguments of
// its spec, or else what its config asked for.
func commandLine(ct client.Container) string {
	var spec struct {
		Process struct {
			Args []string `json:"args"`
		} `json:"process"`
	}
	if json.Unmarshal(ct.Spec, &spec) == nil && len(spec.Process.Args) > 0 {
		return strings.Join(spec.Process.Args, " ")
	}
	return strings.Join(append(append([]string{}, ct.Config.Entrypoint...), ct.Config.Args...), " ")
}

// containerStatus renders a container's state as docker does: "Created",
// "Up 3 seconds", "Up 1 minute (Paused)", "Exited (0) 5 seconds ago".
// started returns when a running process started, if it can tell.
func containerStatus(ct client.Container, now time.Time, started func(pid uint32) (time.Time, bool)) string {
	switch ct.Status {
	case client.StatusRunning, client.StatusPaused:
		s := "Up"
		if t, ok := started(ct.PID); ok {
			s += " " + upDuration(now.Sub(t))
		}
		if ct.Status == client.StatusPaused {
			s += " (Paused)"
		}
		return s
	case client.StatusStopped:
		return exited(ct, now)
	case client.StatusCreated:
		return "Created"
	}
	if known(ct.ExitedAt) {
		return exited(ct, now)
	}
	return "Created"
}

func exited(ct client.Container, now time.Time) string {
	s := fmt.Sprintf("Exited (%d) %s", ct.ExitStatus, relativeTime(now, ct.ExitedAt))
	if ct.ExitReason != "" {
		s += " (" + ct.ExitReason + ")"
	}
	return s
}

func upDuration(d time.Duration) string {
	if d < time.Second {
		return "Less than a second"
	}
	return humanDuration(d)
}

// processStart returns when process pid started, from /proc: berth runs
// on the daemon's host and sees the host's process ids.
func processStart(pid uint32) (time.Time, bool) {
	if pid == 0 {
		return time.Time{}, false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return time.Time{}, false
	}
	boot, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, false
	}
	return startTime(string(stat), string(boot))
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux architecture berth runs on.
const clockTicks = 100

// startTime computes a process's start time from its /proc/PID/stat (field
// 22, ticks since boot) and /proc/stat (btime, the boot time).
func startTime(pidStat, procStat string) (time.Time, bool) {
	// The command (field 2) may hold spaces and parentheses: count fields
	// after its last ')'.
	i := strings.LastIndexByte(pidStat, ')')
	if i < 0 {
		return time.Time{}, false
	}
	fields := strings.Fields(pidStat[i+1:])
	if len(fields) < 20 {
		return time.Time{}, false
	}
	ticks, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	for line := range strings.SplitSeq(procStat, "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			btime, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			return time.Unix(btime, 0).Add(time.Duration(ticks) * time.Second / clockTicks), true
		}
	}
	return time.Time{}, false
}

// portsColumn renders published ports as docker's ps does:
// "127.0.0.1:8080->80/tcp, 0.0.0.0:53->53/udp".
func portsColumn(ports []client.PortMapping) string {
	out := make([]string, 0, len(ports))
	for _, p := range ports {
		out = append(out, hostAddress(p)+"->"+strconv.Itoa(int(p.ContainerPort))+"/"+protocol(p))
	}
	return strings.Join(out, ", ")
}

// hostAddress is where a port is published: "127.0.0.1:8080", "[::1]:8080",
// "0.0.0.0:8080" for every address; port 0 is one the daemon chose.
func hostAddress(p client.PortMapping) string {
	ip := p.HostIP
	if ip == "" {
		ip = "0.0.0.0"
	}
	if strings.Contains(ip, ":") {
		ip = "[" + ip + "]"
	}
	return ip + ":" + strconv.Itoa(int(p.HostPort))
}

func protocol(p client.PortMapping) string {
	if p.Protocol == "" {
		return "tcp"
	}
	return p.Protocol
}
