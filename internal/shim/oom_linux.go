package shim

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// oomKillsFile returns the file that counts the OOM kills of the memory
// cgroup process pid belongs to: memory.oom_control of the cgroup v1 memory
// controller, or memory.events on a pure cgroup v2 host. It returns "" when
// there is none.
func oomKillsFile(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return ""
	}
	var unified string
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			unified = parts[2]
			continue
		}
		for c := range strings.SplitSeq(parts[1], ",") {
			if c == "memory" {
				return filepath.Join("/sys/fs/cgroup/memory", parts[2], "memory.oom_control")
			}
		}
	}
	if unified == "" {
		return ""
	}
	f := filepath.Join("/sys/fs/cgroup", unified, "memory.events")
	if _, err := os.Stat(f); err != nil {
		return ""
	}
	return f
}

// readOOMKills returns the "oom_kill N" count in a memory.oom_control or
// memory.events file.
func readOOMKills(file string) (uint64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "oom_kill "); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, errors.New("no oom_kill count in " + file)
}
