// Package haproxytest starts real HAProxy processes for tests: one per test, in master-worker mode with an
// admin socket and a master CLI socket, on the ports the test's configuration names, stopped when the
// test ends.
package haproxytest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Instance is a running HAProxy.
type Instance struct {
	// Dir holds the configuration and the sockets.
	Dir string
	// ConfigPath is the configuration file; the Data Plane API test server edits it.
	ConfigPath string
	// AdminSocket is the admin stats socket, MasterSocket the master CLI.
	AdminSocket, MasterSocket string
	cmd                       *exec.Cmd
	done                      chan struct{}
}

// Start writes cfgText to dir/haproxy.cfg, checks it with haproxy -c, and runs HAProxy in master-worker
// mode until the test ends. The configuration must put its admin stats socket at dir/admin.sock
// (stacks/haproxy/haproxy.cfg does, with ${FM_HAPROXY_DIR} set to dir). Start fails the test, with
// HAProxy's own words, if the configuration is rejected or the socket does not appear.
func Start(t testing.TB, dir, cfgText string) *Instance {
	t.Helper()
	in := &Instance{
		Dir:          dir,
		ConfigPath:   filepath.Join(dir, "haproxy.cfg"),
		AdminSocket:  filepath.Join(dir, "admin.sock"),
		MasterSocket: filepath.Join(dir, "master.sock"),
		done:         make(chan struct{}),
	}
	if err := os.WriteFile(in.ConfigPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("haproxy", "-c", "-q", "-f", in.ConfigPath).CombinedOutput(); err != nil {
		t.Fatalf("haproxy rejects %s: %v\n%s", in.ConfigPath, err, out)
	}
	logPath := filepath.Join(dir, "haproxy.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	in.cmd = exec.Command("haproxy", "-W", "-db", "-f", in.ConfigPath, "-S", in.MasterSocket+",mode,600")
	in.cmd.Stdout, in.cmd.Stderr = logFile, logFile
	// Pdeathsig: a test binary that dies (timeout, SIGQUIT) takes its HAProxy with it.
	in.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := in.cmd.Start(); err != nil {
		t.Fatalf("starting haproxy: %v", err)
	}
	go func() {
		_ = in.cmd.Wait()
		logFile.Close()
		close(in.done)
	}()
	t.Cleanup(in.Stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if dialable(in.AdminSocket) && dialable(in.MasterSocket) {
			return in
		}
		select {
		case <-in.done:
			out, _ := os.ReadFile(logPath)
			t.Fatalf("haproxy exited at start:\n%s", out)
		default:
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logPath)
			t.Fatalf("haproxy's sockets %s and %s did not appear within 10s:\n%s", in.AdminSocket, in.MasterSocket, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dialable(sock string) bool {
	c, err := net.Dial("unix", sock)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Stop terminates HAProxy and waits for it; stopping a stopped instance does nothing.
func (in *Instance) Stop() {
	select {
	case <-in.done:
		return
	default:
	}
	_ = syscall.Kill(-in.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-in.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-in.cmd.Process.Pid, syscall.SIGKILL)
		<-in.done
	}
}

// Log returns what HAProxy has printed so far.
func (in *Instance) Log() string {
	b, _ := os.ReadFile(filepath.Join(in.Dir, "haproxy.log"))
	return strings.TrimSpace(string(b))
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
