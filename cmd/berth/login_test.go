package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/remote/remotetest"
	"golang.org/x/sys/unix"
)

// openPTY returns the two ends of a new pseudo-terminal.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Skipf("pty number: %v", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pty: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	return master, tty
}

func TestLoginPromptsOnTerminal(t *testing.T) {
	cfgPath, hosts := remoteEnv(t)
	reg := remotetest.New(t, remotetest.Options{Auth: remotetest.AuthBasic, Username: "alice", Password: "s3cret"})
	master, tty := openPTY(t)
	// The echo of the username (a few bytes) stays in the pty buffer, unread.
	if _, err := master.WriteString("alice\ns3cret\n"); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"login", reg.Host, "--hosts-dir", hosts}, tty, &out, &errOut)
	if code != exitOK || out.String() != "Login Succeeded\n" {
		t.Fatalf("exit code %d, stdout %q, stderr %q; want Login Succeeded", code, out.String(), errOut.String())
	}
	if !strings.Contains(errOut.String(), "Username: ") || !strings.Contains(errOut.String(), "Password: ") {
		t.Errorf("stderr %q, want the Username and Password prompts", errOut.String())
	}
	if cfg, err := os.ReadFile(cfgPath); err != nil || !strings.Contains(string(cfg), reg.Host) {
		t.Errorf("config %q (%v), want an entry for %s", cfg, err, reg.Host)
	}
	termios, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil || termios.Lflag&unix.ECHO == 0 {
		t.Errorf("echo not restored after the password prompt (%v)", err)
	}
}
