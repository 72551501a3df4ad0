package network

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

// masquerades reports whether list has a bridge plugin with ipMasq on.
func masquerades(list *libcni.NetworkConfigList) bool {
	for _, p := range list.Plugins {
		var conf struct {
			IPMasq bool `json:"ipMasq"`
		}
		if p.Network.Type == "bridge" && json.Unmarshal(p.Bytes, &conf) == nil && conf.IPMasq {
			return true
		}
	}
	return false
}

// removeBridgeMasquerade deletes the masquerade rules the bridge plugin
// made for a container when the plugin's DEL could not: it learns the
// container's addresses from the interface in the namespace, so with the
// namespace gone (Debian's plugins 1.1) it leaves them behind. They have
// the shape the plugin gives them: per address, a nat POSTROUTING rule
// `-s ADDR -m comment --comment 'name: "NET" id: "ID"' -j CHAIN` jumping to
// a chain of the container's own. A rule or chain already gone is fine.
func removeBridgeMasquerade(ctx context.Context, network, id string, addrs []netip.Prefix) error {
	comment := fmt.Sprintf("name: %q id: %q", network, id)
	for _, a := range addrs {
		tool, src := "iptables", a.Addr().String()+"/32"
		if !a.Addr().Is4() {
			tool, src = "ip6tables", a.Addr().String()+"/128"
		}
		out, err := iptables(ctx, tool, "-t", "nat", "-S", "POSTROUTING")
		if err != nil {
			return err
		}
		prefix := "-A POSTROUTING -s " + src + " "
		for _, line := range strings.Split(out, "\n") {
			if !strings.HasPrefix(line, prefix) || !strings.Contains(line, strconv.Quote(comment)) {
				continue
			}
			_, chain, ok := strings.Cut(line, " -j ")
			if !ok || !strings.HasPrefix(chain, "CNI-") || strings.Contains(chain, " ") {
				continue
			}
			for _, args := range [][]string{
				{"-t", "nat", "-D", "POSTROUTING", "-s", src, "-m", "comment", "--comment", comment, "-j", chain},
				{"-t", "nat", "-F", chain},
				{"-t", "nat", "-X", chain},
			} {
				if _, err := iptables(ctx, tool, args...); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// ensureRule inserts r at the top of its chain unless it is there already.
func ensureRule(ctx context.Context, r iptablesRule) error {
	if _, err := iptables(ctx, "iptables", slices.Concat([]string{"-t", r.table, "-C", r.chain}, r.args)...); err == nil {
		return nil
	}
	_, err := iptables(ctx, "iptables", slices.Concat([]string{"-t", r.table, "-I", r.chain}, r.args)...)
	return err
}

// iptables runs an iptables command, waiting for the xtables lock.
func iptables(ctx context.Context, tool string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, tool, append([]string{"-w"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return string(out), nil
}
