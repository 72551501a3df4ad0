package containers

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// etcFiles are the per-container files bind-mounted over the image's
// /etc/hosts, /etc/hostname and /etc/resolv.conf, as Docker does.
type etcFiles struct{ hosts, hostname, resolvConf string }

// writeEtcFiles writes dir/hosts, dir/hostname and dir/resolv.conf. On the
// host network the host's resolv.conf is used as is; otherwise nameservers
// on loopback (unreachable from the container's namespace) are dropped, and
// when none remain public resolvers are not invented: the file keeps only
// the search and options lines.
func writeEtcFiles(dir, hostname, network, hostResolvConf string) (etcFiles, error) {
	f := etcFiles{
		hosts:      filepath.Join(dir, "hosts"),
		hostname:   filepath.Join(dir, "hostname"),
		resolvConf: filepath.Join(dir, "resolv.conf"),
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	if network != NetworkHost {
		hosts += "127.0.1.1\t" + hostname + "\n"
	}
	resolv, err := os.ReadFile(hostResolvConf)
	if err != nil && !os.IsNotExist(err) {
		return f, fmt.Errorf("read %s: %w", hostResolvConf, err)
	}
	if network != NetworkHost {
		resolv = dropLoopbackNameservers(resolv)
	}
	for path, data := range map[string][]byte{f.hosts: []byte(hosts), f.hostname: []byte(hostname + "\n"), f.resolvConf: resolv} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return f, err
		}
	}
	return f, nil
}

func dropLoopbackNameservers(data []byte) []byte {
	var out bytes.Buffer
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 2 && fields[0] == "nameserver" && (strings.HasPrefix(fields[1], "127.") || fields[1] == "::1") {
			continue
		}
		out.WriteString(s.Text() + "\n")
	}
	return out.Bytes()
}
