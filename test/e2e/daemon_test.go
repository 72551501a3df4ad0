package e2e

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

func TestDaemonSetsDirectoryAndSocketModes(t *testing.T) {
	d := newDaemon(t)
	d.start()
	if m := mode(t, d.root).Perm(); m != 0700 {
		t.Errorf("root mode %04o, want 0700", m)
	}
	if m := mode(t, d.state).Perm(); m != 0711 {
		t.Errorf("state mode %04o, want 0711", m)
	}
	m := mode(t, d.sock)
	if m&os.ModeSocket == 0 || m.Perm() != 0660 {
		t.Errorf("socket mode %v, want a socket with 0660", m)
	}
	d.stop()
	if _, err := os.Stat(d.sock); !os.IsNotExist(err) {
		t.Errorf("socket left after clean shutdown: %v", err)
	}
}

func TestSecondDaemonOnSameRootRefuses(t *testing.T) {
	d := newDaemon(t)
	d.start()
	other := exec.Command(filepath.Join(binDir, "berthd"), "--root", d.root, "--state", t.TempDir(), "--address", filepath.Join(t.TempDir(), "other.sock"))
	out, err := other.CombinedOutput()
	if err == nil {
		t.Fatalf("second berthd on the same root started:\n%s", out)
	}
	if !strings.Contains(string(out), "in use by another berthd") {
		t.Errorf("second berthd error does not explain: %s", out)
	}
	// The first one is unharmed.
	d.berth(nil, "info").ok(t)
}

func TestDaemonRefusesWorldWritableRoot(t *testing.T) {
	d := newDaemon(t)
	if err := os.MkdirAll(d.root, 0777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d.root, 0777); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(binDir, "berthd"), d.args()...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "must not be writable by group or others") {
		t.Fatalf("berthd on a 0777 root: err %v, output:\n%s", err, out)
	}
}

func TestDaemonRejectsBadConfig(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{"version = 1\n[grpc]\nadress = \"/x.sock\"\n", "unknown key grpc.adress"},
		{"version = 1\n[gc]\ndelay = \"often\"\n", "not a duration"},
		{"version = 7\n", "version: 7 is not supported"},
	} {
		d := newDaemon(t)
		d.config = filepath.Join(t.TempDir(), "config.toml")
		if err := os.WriteFile(d.config, []byte(tt.body), 0644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(filepath.Join(binDir, "berthd"), d.args()...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tt.want) || !strings.Contains(string(out), d.config) {
			t.Errorf("config %q: err %v, want an error naming %s and %q; output:\n%s", tt.body, err, d.config, tt.want, out)
		}
	}
}

func TestDaemonConfigDefaultLoads(t *testing.T) {
	out, err := exec.Command(filepath.Join(binDir, "berthd"), "config", "default").Output()
	if err != nil {
		t.Fatal(err)
	}
	d := newDaemon(t)
	d.config = filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(d.config, out, 0644); err != nil {
		t.Fatal(err)
	}
	d.start() // flags override the file's paths
	d.stop()
}

func TestCLIReportsDaemonNotRunning(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "absent.sock")
	r := runBerth(t, nil, "--address", sock, "info")
	r.fails(t, 1, "cannot connect to berthd at "+sock+": is it running?")
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestMetricsEndpoint(t *testing.T) {
	d := newDaemon(t)
	addr := freePort(t)
	d.config = filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(d.config, []byte("version = 1\n[metrics]\naddress = \""+addr+"\"\n"), 0644); err != nil {
		t.Fatal(err)
	}
	d.start()
	d.berth([]byte("metrics payload"), "content", "ingest", "m1", "-").ok(t)
	d.berth(nil, "system", "prune").ok(t)
	var body string
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{
		`berth_grpc_requests_total{code="OK",method="/berth.services.content.v1.Content/Write"} 1`,
		`berth_grpc_request_duration_seconds_bucket{method="/berth.services.introspection.v1.Introspection/Server"`,
		"berth_content_blobs 1",
		"berth_content_bytes 15",
		"berth_gc_runs_total 1",
		"berth_gc_bytes_freed_total 0",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", body)
	}
}
