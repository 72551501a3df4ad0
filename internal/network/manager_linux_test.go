package network

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
	"golang.org/x/sys/unix"
)

// testNet is a Manager on a bridge and subnet of the test's own, so tests
// neither collide with each other nor with a running berthd.
type testNet struct {
	m      *Manager
	cfg    Config
	subnet netip.Prefix
}

// newTestNet returns a Manager with bridge berthtest<n> on 10.213.<n>.0/24
// (or the given prefix length) and its state in a temporary directory. At
// cleanup it deletes the bridge and unmounts the netns directory.
func newTestNet(t testing.TB, n int, bits int) *testNet {
	t.Helper()
	testutil.RequirePrivileged(t)
	testutil.RequireBinary(t, "iptables-save")
	testutil.RequireBinary(t, "ip")
	subnet := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, byte(n), 0}), bits)
	cfg := Config{
		StateDir:   filepath.Join(t.TempDir(), "net"),
		BridgeName: fmt.Sprintf("berthtest%d", n),
		Subnet:     subnet.String(),
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(filepath.Join(cfg.StateDir, "netns"), unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			t.Errorf("unmount netns dir: %v", err)
		}
		for _, r := range bridgeRules(m.cfg) {
			deleteRule(r)
		}
		if _, err := os.Stat("/sys/class/net/" + cfg.BridgeName); err == nil {
			if out, err := exec.Command("ip", "link", "del", cfg.BridgeName).CombinedOutput(); err != nil {
				t.Errorf("ip link del %s: %v: %s", cfg.BridgeName, err, out)
			}
		}
	})
	return &testNet{m: m, cfg: m.cfg, subnet: subnet}
}

// deleteRule deletes every copy of r.
func deleteRule(r iptablesRule) {
	for {
		if _, err := iptables(context.Background(), "iptables", slices.Concat([]string{"-t", r.table, "-D", r.chain}, r.args)...); err != nil {
			return
		}
	}
}

// newID returns a fresh container id.
func newID() string { return "t" + strings.ToLower(rand.Text()[:16]) }

// container is a namespace with a completed Setup.
type container struct {
	id, netns string
	res       *Result
}

// newNetNS creates a namespace for a fresh id; cleanup tears it down
// (a no-op when the test did).
func (tn *testNet) newNetNS(t *testing.T) (id, path string) {
	t.Helper()
	id = newID()
	path, err := tn.m.NewNetNS(id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tn.m.Teardown(context.Background(), id, path); err != nil {
			t.Errorf("teardown %s: %v", id, err)
		}
	})
	return id, path
}

// start creates a namespace and sets it up; cleanup tears it down.
func (tn *testNet) start(t *testing.T, mode Mode, ports ...PortMapping) container {
	t.Helper()
	id, path := tn.newNetNS(t)
	res, err := tn.m.Setup(t.Context(), id, path, mode, ports)
	if err != nil {
		t.Fatal(err)
	}
	return container{id: id, netns: path, res: res}
}

// inNetNS runs fn on an OS thread that has joined the namespace at path.
// Sockets fn creates stay in that namespace.
func inNetNS(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(path)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", path, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it exits with the goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("setns back: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// serve listens on addr inside the namespace and answers every connection
// with greeting. It stops at cleanup.
func serve(t *testing.T, netns, addr, greeting string) net.Addr {
	t.Helper()
	return serveFunc(t, netns, addr, func(net.Conn) string { return greeting })
}

// serveFunc is serve with a greeting made for each connection.
func serveFunc(t *testing.T, netns, addr string, greeting func(net.Conn) string) net.Addr {
	t.Helper()
	var l net.Listener
	if err := inNetNS(netns, func() (err error) {
		l, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, greeting(c)+"\n")
			c.Close()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	return l.Addr()
}

// readGreeting dials addr (from the namespace netns, or the host's when
// netns is "") and returns the first line it reads.
func readGreeting(netns, addr string) (string, error) {
	var c net.Conn
	dial := func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, 5*time.Second)
		return err
	}
	var err error
	if netns == "" {
		err = dial()
	} else {
		err = inNetNS(netns, dial)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSuffix(line, "\n"), err
}

func freePort(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

func iptablesSave(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("iptables-save").Output()
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	return string(out)
}

// rulesOf returns the iptables-save lines of the container: those that
// mention its id or address, and the chains they jump to.
func rulesOf(t *testing.T, c container) []string {
	t.Helper()
	lines := strings.Split(iptablesSave(t), "\n")
	mine := func(line string) bool {
		if strings.Contains(line, c.id) {
			return true
		}
		for _, p := range c.res.IPs {
			for _, sep := range []string{"/", ":", " "} {
				if strings.Contains(line, " "+p.Addr().String()+sep) {
					return true
				}
			}
		}
		return false
	}
	chains := map[string]bool{}
	for _, line := range lines {
		if _, target, ok := strings.Cut(line, " -j "); ok && mine(line) && strings.HasPrefix(target, "CNI-") {
			chains[target] = true
		}
	}
	var out []string
	for _, line := range lines {
		f := strings.Fields(line)
		if mine(line) || len(f) > 1 && f[0] == "-A" && chains[f[1]] || len(f) > 0 && chains[strings.TrimPrefix(f[0], ":")] {
			out = append(out, line)
		}
	}
	return out
}

func isMounted(t *testing.T, path string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

// assertGone checks that nothing of the container is left on the host.
func (tn *testNet) assertGone(t *testing.T, c container) {
	t.Helper()
	assertGone(t, c, tn.cfg.BridgeName, filepath.Join(tn.cfg.StateDir, "ipam", BridgeNetworkName))
}

// assertGone checks that nothing of container c is left on the host: its
// iptables rules, its addresses' allocations in ipamDir, its namespace,
// its cache entries and its veth on bridge.
func assertGone(t *testing.T, c container, bridge, ipamDir string) {
	t.Helper()
	if lines := rulesOf(t, c); len(lines) > 0 {
		t.Errorf("iptables rules of %s left after teardown:\n%s", c.id, strings.Join(lines, "\n"))
	}
	for _, p := range c.res.IPs {
		if _, err := os.Stat(filepath.Join(ipamDir, p.Addr().String())); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("address %s of %s still allocated (stat: %v)", p.Addr(), c.id, err)
		}
	}
	if isMounted(t, c.netns) {
		t.Errorf("netns %s still mounted", c.netns)
	}
	if _, err := os.Stat(c.netns); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("netns file %s still there (stat: %v)", c.netns, err)
	}
	if ents, _ := filepath.Glob(filepath.Join(filepath.Dir(filepath.Dir(c.netns)), "cache", "results", "*"+c.id+"*")); len(ents) > 0 {
		t.Errorf("cni cache entries left: %v", ents)
	}
	// A namespace that lost its last reference is freed, and its veth
	// deleted, asynchronously by the kernel.
	brif := filepath.Join("/sys/class/net", bridge, "brif")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ents, _ := os.ReadDir(brif)
		if len(ents) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("bridge %s still has ports: %v", bridge, ents)
			break
		}
	}
}

func TestBridgeContainersReachEachOther(t *testing.T) {
	tn := newTestNet(t, 1, 24)
	a := tn.start(t, ModeBridge)
	b := tn.start(t, ModeBridge)
	for _, c := range []container{a, b} {
		if c.res.Interface != "eth0" || len(c.res.IPs) != 1 || !tn.subnet.Contains(c.res.IPs[0].Addr()) || c.res.IPs[0].Bits() != 24 {
			t.Fatalf("result %+v: want eth0 with one /24 address in %s", c.res, tn.subnet)
		}
		if want := tn.subnet.Addr().Next(); c.res.Gateway != want {
			t.Errorf("gateway %s, want %s", c.res.Gateway, want)
		}
		if c.res.Network != BridgeNetworkName || c.res.MAC == "" {
			t.Errorf("result %+v: want network %q and a MAC", c.res, BridgeNetworkName)
		}
	}
	if a.res.IPs[0] == b.res.IPs[0] {
		t.Fatalf("both containers got %s", a.res.IPs[0])
	}
	serve(t, a.netns, "0.0.0.0:8080", "hello from a")
	got, err := readGreeting(b.netns, netip.AddrPortFrom(a.res.IPs[0].Addr(), 8080).String())
	if err != nil || got != "hello from a" {
		t.Fatalf("b dialing a: %q, %v", got, err)
	}
	// The host reaches the container through the bridge.
	got, err = readGreeting("", netip.AddrPortFrom(a.res.IPs[0].Addr(), 8080).String())
	if err != nil || got != "hello from a" {
		t.Fatalf("host dialing a: %q, %v", got, err)
	}
}

// TestBridgeMasqueradesOutgoingTraffic has a container dial a host outside
// its network: a namespace of the test's own behind a veth pair, routed by
// the host. The far end must see the host's address, not the container's.
func TestBridgeMasqueradesOutgoingTraffic(t *testing.T) {
	tn := newTestNet(t, 12, 24)
	testutil.RequireBinary(t, "nsenter")
	c := tn.start(t, ModeBridge)
	_, outside := tn.newNetNS(t)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	in := []string{"nsenter", "--net=" + outside, "ip"}
	run(slices.Concat(in, []string{"link", "add", "bto12", "type", "veth", "peer", "name", "bto12h", "netns", "1"})...)
	run(slices.Concat(in, []string{"addr", "add", "10.213.112.2/30", "dev", "bto12"})...)
	run(slices.Concat(in, []string{"link", "set", "bto12", "up"})...)
	run("ip", "addr", "add", "10.213.112.1/30", "dev", "bto12h")
	run("ip", "link", "set", "bto12h", "up")

	l := serveFunc(t, outside, "10.213.112.2:9000", func(c net.Conn) string {
		return c.RemoteAddr().(*net.TCPAddr).IP.String()
	})
	got, err := readGreeting(c.netns, l.String())
	if err != nil || got != "10.213.112.1" {
		t.Fatalf("container dialing %s: seen from %q (%v), want the host's 10.213.112.1", l, got, err)
	}
}

func TestPublishedPortAnswersOnHostLoopback(t *testing.T) {
	tn := newTestNet(t, 2, 24)
	for _, hostIP := range []string{"127.0.0.1", ""} {
		t.Run("hostip="+hostIP, func(t *testing.T) {
			port := freePort(t)
			c := tn.start(t, ModeBridge, PortMapping{HostIP: hostIP, HostPort: port, ContainerPort: 8080, Protocol: "tcp"})
			serve(t, c.netns, "0.0.0.0:8080", "published "+hostIP)
			got, err := readGreeting("", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil || got != "published "+hostIP {
				t.Fatalf("dial 127.0.0.1:%d: %q, %v", port, got, err)
			}
			// The container reaches its own published port (hairpin).
			if hostIP == "" {
				gw := netip.AddrPortFrom(c.res.Gateway, port).String()
				got, err := readGreeting(c.netns, gw)
				if err != nil || got != "published " {
					t.Fatalf("container dialing its published port at %s: %q, %v", gw, got, err)
				}
			}
		})
	}
}

func TestNoneModeHasOnlyLoopbackUp(t *testing.T) {
	tn := newTestNet(t, 3, 24)
	c := tn.start(t, ModeNone)
	if c.res.Interface != "" || len(c.res.IPs) != 0 || c.res.Gateway.IsValid() {
		t.Errorf("none mode result %+v, want empty", c.res)
	}
	var ifs []net.Interface
	if err := inNetNS(c.netns, func() (err error) {
		ifs, err = net.Interfaces()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(ifs) != 1 || ifs[0].Name != "lo" || ifs[0].Flags&net.FlagUp == 0 {
		t.Fatalf("interfaces %+v, want only lo, up", ifs)
	}
	addr := serve(t, c.netns, "127.0.0.1:0", "loopback")
	if got, err := readGreeting(c.netns, addr.String()); err != nil || got != "loopback" {
		t.Fatalf("dial %s inside: %q, %v", addr, got, err)
	}
	if _, err := os.Stat("/sys/class/net/" + tn.cfg.BridgeName); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("none mode created bridge %s (stat: %v)", tn.cfg.BridgeName, err)
	}
}

func TestTeardownReleasesEverything(t *testing.T) {
	tn := newTestNet(t, 4, 24)
	ctx := t.Context()
	c := tn.start(t, ModeBridge,
		PortMapping{HostPort: freePort(t), ContainerPort: 80, Protocol: "tcp"},
		PortMapping{HostIP: "127.0.0.1", HostPort: freePort(t), ContainerPort: 53, Protocol: "udp"})
	// Before: rules, allocation and mount exist, so the checks below can fail.
	if lines := rulesOf(t, c); len(lines) < 4 {
		t.Fatalf("iptables rules of %s after setup:\n%s\nwant port mapping rules for both ports", c.id, strings.Join(lines, "\n"))
	}
	if _, err := os.Stat(filepath.Join(tn.cfg.StateDir, "ipam", BridgeNetworkName, c.res.IPs[0].Addr().String())); err != nil {
		t.Fatalf("allocation of %s: %v", c.res.IPs[0].Addr(), err)
	}
	if !isMounted(t, c.netns) {
		t.Fatalf("netns %s not mounted after setup", c.netns)
	}
	for range 2 {
		if err := tn.m.Teardown(ctx, c.id, c.netns); err != nil {
			t.Fatalf("teardown: %v", err)
		}
		tn.assertGone(t, c)
	}
}

func TestBridgeRulesAreSetOnce(t *testing.T) {
	tn := newTestNet(t, 5, 24)
	tn.start(t, ModeBridge)
	m2, err := New(tn.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.ensureBridgeRules(t.Context()); err != nil {
		t.Fatal(err)
	}
	save := iptablesSave(t)
	for _, r := range bridgeRules(tn.cfg) {
		comment := r.args[slices.Index(r.args, "--comment")+1]
		if n := strings.Count(save, strconv.Quote(comment)); n != 1 {
			t.Errorf("rule %q appears %d times in iptables-save, want once", comment, n)
		}
	}
}

func TestTeardownOfUnknownIDSucceeds(t *testing.T) {
	tn := newTestNet(t, 13, 24)
	if err := tn.m.Teardown(t.Context(), newID(), tn.m.NetNSPath("missing")); err != nil {
		t.Fatal(err)
	}
	if err := tn.m.Teardown(t.Context(), "bad/id", ""); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("teardown of id bad/id: %v, want ErrInvalidArgument", err)
	}
}

func TestTeardownAfterRestart(t *testing.T) {
	tn := newTestNet(t, 6, 24)
	ctx := t.Context()
	port := PortMapping{HostPort: freePort(t), ContainerPort: 80, Protocol: "tcp"}
	c := tn.start(t, ModeBridge, port)

	m2, err := New(tn.cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The new Manager knows the published port from the cache.
	other, otherPath := tn.newNetNS(t)
	if _, err := m2.Setup(ctx, other, otherPath, ModeBridge, []PortMapping{port}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("second container publishing %s: %v, want ErrConflict", port, err)
	}
	if _, err := m2.Setup(ctx, c.id, c.netns, ModeBridge, nil); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("setup of %s again: %v, want ErrAlreadyExists", c.id, err)
	}
	if err := m2.Teardown(ctx, c.id, c.netns); err != nil {
		t.Fatal(err)
	}
	tn.assertGone(t, c)
	// The port is free again.
	if _, err := m2.Setup(ctx, other, otherPath, ModeBridge, []PortMapping{port}); err != nil {
		t.Fatalf("publishing %s after teardown: %v", port, err)
	}
	if err := m2.Teardown(ctx, other, otherPath); err != nil {
		t.Fatal(err)
	}
}

// TestTeardownAfterCrashDuringSetup leaves StateDir as a daemon killed
// after the plugins' ADD and before libcni cached its result leaves it:
// the pending record and no cache entry.
func TestTeardownAfterCrashDuringSetup(t *testing.T) {
	tn := newTestNet(t, 7, 24)
	ports := []PortMapping{{HostPort: freePort(t), ContainerPort: 80, Protocol: "tcp"}}
	c := tn.start(t, ModeBridge, ports...)
	cached, _ := filepath.Glob(filepath.Join(tn.cfg.StateDir, "cache", "results", "*-"+c.id+"-*"))
	if len(cached) != 1 {
		t.Fatalf("cache entries of %s: %v, want 1", c.id, cached)
	}
	if err := os.Remove(cached[0]); err != nil {
		t.Fatal(err)
	}
	if err := tn.m.writePending(c.id, pendingAdd{Config: tn.m.bridge.list.Bytes, Ports: ports}); err != nil {
		t.Fatal(err)
	}

	m2, err := New(tn.cfg)
	if err != nil {
		t.Fatal(err)
	}
	other, otherPath := tn.newNetNS(t)
	if _, err := m2.Setup(t.Context(), other, otherPath, ModeBridge, ports); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("publishing the port of an interrupted setup: %v, want ErrConflict", err)
	}
	if err := m2.Teardown(t.Context(), c.id, c.netns); err != nil {
		t.Fatal(err)
	}
	tn.assertGone(t, c)
	if _, err := os.Stat(tn.m.pendingPath(c.id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pending record left (stat: %v)", err)
	}
}

func TestTeardownWhenNetNSIsGone(t *testing.T) {
	tn := newTestNet(t, 8, 24)
	// A network with the bridge plugin's own masquerading, whose DEL needs
	// the namespace to find the rules.
	masq := writeConfDir(t, "masqnet", 18, true)
	own := confNet{net: tn.m.bridge, bridge: tn.cfg.BridgeName, subnet: tn.subnet, ipamDir: filepath.Join(tn.cfg.StateDir, "ipam", BridgeNetworkName)}
	if err := tn.m.ensureBridgeRules(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, cn := range []confNet{own, masq} {
		t.Run(cn.net.Name(), func(t *testing.T) {
			ctx := t.Context()
			id, path := tn.newNetNS(t)
			res, err := tn.m.SetupNetwork(ctx, id, path, cn.net, []PortMapping{{HostPort: freePort(t), ContainerPort: 80, Protocol: "tcp"}})
			if err != nil {
				t.Fatal(err)
			}
			c := container{id: id, netns: path, res: res}
			if cn.net == masq.net && !slices.ContainsFunc(rulesOf(t, c), func(l string) bool { return strings.Contains(l, "MASQUERADE") }) {
				t.Fatalf("no masquerade rules of %s to test with", id)
			}
			// The namespace disappears behind the daemon's back.
			if err := removeNetNS(path); err != nil {
				t.Fatal(err)
			}
			if err := tn.m.Teardown(ctx, id, path); err != nil {
				t.Fatal(err)
			}
			assertGone(t, c, cn.bridge, cn.ipamDir)
		})
	}
}

// confNet is a network of a CNI config dir of the test's own.
type confNet struct {
	net     *Network
	bridge  string
	subnet  netip.Prefix
	ipamDir string // host-local's allocations
}

// writeConfDir writes a CNI config dir with one bridge network, berthtest<n>
// on 10.213.<n>.0/24, and loads it with LoadNetwork. Cleanup deletes the
// bridge.
func writeConfDir(t *testing.T, name string, n int, ipMasq bool) confNet {
	t.Helper()
	dir := t.TempDir()
	cn := confNet{
		bridge:  fmt.Sprintf("berthtest%d", n),
		subnet:  netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 213, byte(n), 0}), 24),
		ipamDir: filepath.Join(dir, "ipam", name),
	}
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"plugins":[
		{"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":%t,
		 "ipam":{"type":"host-local","ranges":[[{"subnet":%q}]],"dataDir":%q}},
		{"type":"portmap","capabilities":{"portMappings":true}}]}`, name, cn.bridge, ipMasq, cn.subnet, filepath.Dir(cn.ipamDir))
	if err := os.WriteFile(filepath.Join(dir, "10-"+name+".conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := os.Stat("/sys/class/net/" + cn.bridge); err == nil {
			if out, err := exec.Command("ip", "link", "del", cn.bridge).CombinedOutput(); err != nil {
				t.Errorf("ip link del %s: %v: %s", cn.bridge, err, out)
			}
		}
	})
	var err error
	if cn.net, err = LoadNetwork(dir); err != nil {
		t.Fatal(err)
	}
	return cn
}

func TestConcurrentSetups(t *testing.T) {
	const n = 24
	tn := newTestNet(t, 9, 24)
	ctx := t.Context()
	cs := make([]container, n)
	for i := range cs {
		cs[i].id, cs[i].netns = tn.newNetNS(t)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs[i].res, errs[i] = tn.m.Setup(ctx, cs[i].id, cs[i].netns, ModeBridge, []PortMapping{{HostPort: uint16(41000 + i), ContainerPort: 80, Protocol: "tcp"}})
		}()
	}
	wg.Wait()
	seen := map[netip.Prefix]string{}
	for i, err := range errs {
		if err != nil {
			t.Errorf("setup %d: %v", i, err)
			continue
		}
		ip := cs[i].res.IPs[0]
		if other, dup := seen[ip]; dup {
			t.Errorf("%s and %s both got %s", other, cs[i].id, ip)
		}
		seen[ip] = cs[i].id
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = tn.m.Teardown(ctx, cs[i].id, cs[i].netns)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("teardown %d: %v", i, err)
		} else if cs[i].res != nil {
			tn.assertGone(t, cs[i])
		}
	}
}

func TestSetupFailureLeavesNothing(t *testing.T) {
	// A /30 has one address for containers besides the gateway.
	tn := newTestNet(t, 10, 30)
	first := tn.start(t, ModeBridge)
	ctx := t.Context()
	id, path := tn.newNetNS(t)
	port := PortMapping{HostPort: freePort(t), ContainerPort: 80, Protocol: "tcp"}
	if _, err := tn.m.Setup(ctx, id, path, ModeBridge, []PortMapping{port}); err == nil {
		t.Fatal("setup in a full subnet succeeded")
	}
	if ents, _ := filepath.Glob(filepath.Join(tn.cfg.StateDir, "cache", "results", "*"+id+"*")); len(ents) > 0 {
		t.Errorf("cni cache entries left by failed setup: %v", ents)
	}
	if _, err := os.Stat(tn.m.pendingPath(id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pending record left by failed setup (stat: %v)", err)
	}
	if lines := rulesOf(t, container{id: id, res: &Result{}}); len(lines) > 0 {
		t.Errorf("iptables rules left by failed setup:\n%s", strings.Join(lines, "\n"))
	}
	// The port reservation was released, and the first container's address
	// is still its own.
	if err := tn.m.Teardown(ctx, first.id, first.netns); err != nil {
		t.Fatal(err)
	}
	res, err := tn.m.Setup(ctx, id, path, ModeBridge, []PortMapping{port})
	if err != nil {
		t.Fatalf("setup after the address was freed: %v", err)
	}
	if res.IPs[0] != first.res.IPs[0] {
		t.Errorf("got %s, want the freed %s", res.IPs[0], first.res.IPs[0])
	}
}

func TestSetupNetworkFromConfDir(t *testing.T) {
	tn := newTestNet(t, 11, 24)
	cn := writeConfDir(t, "podnet", 21, false)
	pod := cn.net
	if pod.Name() != "podnet" {
		t.Fatalf("LoadNetwork: name %q, want podnet", pod.Name())
	}
	id, path := tn.newNetNS(t)
	port := freePort(t)
	res, err := tn.m.SetupNetwork(t.Context(), id, path, pod, []PortMapping{{HostIP: "127.0.0.1", HostPort: port, ContainerPort: 8080, Protocol: "tcp"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Network != "podnet" || len(res.IPs) != 1 || !cn.subnet.Contains(res.IPs[0].Addr()) {
		t.Fatalf("result %+v: want one address of podnet", res)
	}
	serve(t, path, "0.0.0.0:8080", "pod")
	if got, err := readGreeting("", fmt.Sprintf("127.0.0.1:%d", port)); err != nil || got != "pod" {
		t.Fatalf("dial published pod port: %q, %v", got, err)
	}
	if err := tn.m.Teardown(t.Context(), id, path); err != nil {
		t.Fatal(err)
	}
	assertGone(t, container{id: id, netns: path, res: res}, cn.bridge, cn.ipamDir)
}

func TestNewNetNS(t *testing.T) {
	tn := newTestNet(t, 14, 24)
	path, err := tn.m.NewNetNS("a")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeNetNS(path) })
	if path != filepath.Join(tn.cfg.StateDir, "netns", "a") || !isNetNS(path) {
		t.Fatalf("NewNetNS: %q is not a network namespace in the state dir", path)
	}
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	var st, hostSt unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat("/proc/self/ns/net", &hostSt); err != nil {
		t.Fatal(err)
	}
	if st.Ino == hostSt.Ino {
		t.Errorf("%s is the host's namespace %s", path, self)
	}
	if _, err := tn.m.NewNetNS("a"); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("NewNetNS of a taken name: %v, want ErrAlreadyExists", err)
	}
	for _, bad := range []string{"", "..", "a/b"} {
		if _, err := tn.m.NewNetNS(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("NewNetNS(%q): %v, want ErrInvalidArgument", bad, err)
		}
	}
	if _, err := tn.m.Setup(t.Context(), "x", filepath.Join(tn.cfg.StateDir, "netns"), ModeNone, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("setup on a directory: %v, want ErrInvalidArgument", err)
	}
}

// TestCloseUnmountsTheEmptyNetNSDir: a daemon stopped with no container
// leaves no mount; one with a namespace left keeps the directory mounted.
func TestCloseUnmountsTheEmptyNetNSDir(t *testing.T) {
	tn := newTestNet(t, 15, 24)
	dir := filepath.Join(tn.cfg.StateDir, "netns")
	path, err := tn.m.NewNetNS("a")
	if err != nil {
		t.Fatal(err)
	}
	if err := tn.m.Close(); err != nil {
		t.Fatal(err)
	}
	if !mountRoot(t, dir) || !isNetNS(path) {
		t.Fatal("Close with a namespace left unmounted the directory")
	}
	if err := removeNetNS(path); err != nil {
		t.Fatal(err)
	}
	if err := tn.m.Close(); err != nil {
		t.Fatal(err)
	}
	if mountRoot(t, dir) {
		t.Error("the empty netns directory is still a mount point after Close")
	}
	if _, err := tn.m.NewNetNS("b"); err != nil { // usable again
		t.Fatal(err)
	}
	if err := removeNetNS(filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
}

// mountRoot reports whether path is the root of a mount.
func mountRoot(t *testing.T, path string) bool {
	t.Helper()
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, 0, &stx); err != nil {
		t.Fatal(err)
	}
	return stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
}

func TestMissingPluginIsClearError(t *testing.T) {
	empty := t.TempDir()
	_, err := New(Config{PluginDirs: []string{empty}, StateDir: t.TempDir()})
	want := fmt.Sprintf(`cni plugin "bridge" not found in %s: install containernetworking-plugins`, empty)
	if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("New with an empty plugin dir: %v, want %q (ErrFailedPrecondition)", err, want)
	}
}
