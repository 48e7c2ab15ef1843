package haproxy

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeCLI answers the admin socket's commands in interactive mode, as HAProxy does (each answer its
// lines, an empty line and the prompt), and closes each connection after closeAfter writes of the
// client (0: never), as HAProxy does with an idle one.
type fakeCLI struct {
	path       string
	closeAfter int
	mu         sync.Mutex
	conns      int
}

func startFakeCLI(t *testing.T, closeAfter int) *fakeCLI {
	t.Helper()
	f := &fakeCLI{path: filepath.Join(t.TempDir(), "cli.sock"), closeAfter: closeAfter}
	ln, err := net.Listen("unix", f.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns++
			f.mu.Unlock()
			go f.serve(c)
		}
	}()
	return f
}

func (f *fakeCLI) serve(c net.Conn) {
	defer c.Close()
	rd := bufio.NewReader(c)
	interactive, writes := false, 0
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return
		}
		var out strings.Builder
		for _, cmd := range strings.Split(strings.TrimSpace(line), ";") {
			switch cmd = strings.TrimSpace(cmd); {
			case cmd == "prompt":
				interactive = true
			case strings.HasPrefix(cmd, "show stat be "):
				out.WriteString("# pxname,svname,status,weight,check_status,scur,hrsp_5xx,check_desc\n")
				out.WriteString("be,s1,UP,10,L7OK,0,0,a > b\nbe,c1,UP,0,L7OK,0,0,>\n")
			case strings.HasPrefix(cmd, "get weight be/"):
				out.WriteString("7 (initial 10)\n")
			case strings.HasPrefix(cmd, "set server be/"):
			default:
				out.WriteString("Unknown command.\n")
			}
			out.WriteString("\n")
			if interactive {
				out.WriteString("> ")
			}
		}
		if _, err := c.Write([]byte(out.String())); err != nil {
			return
		}
		if !interactive {
			return
		}
		// The client's write is done once nothing more is buffered: one round trip.
		if rd.Buffered() == 0 {
			writes++
			if f.closeAfter > 0 && writes >= f.closeAfter {
				return
			}
		}
	}
}

func (f *fakeCLI) connections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns
}

// TestRuntimeSession: a session's calls share one interactive connection, read answers with '>' in
// them whole, and replace a kept connection HAProxy closed (sending the commands again, on the new one).
func TestRuntimeSession(t *testing.T) {
	for _, closeAfter := range []int{0, 1} {
		t.Run(fmt.Sprintf("closed after %d", closeAfter), func(t *testing.T) {
			f := startFakeCLI(t, closeAfter)
			rt, err := newRuntimeSocket(Config{RuntimeSocket: f.path, Backend: "be", Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			be, end := rt.session()
			defer end()
			ctx := context.Background()
			for range 2 {
				states, err := be.servers(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(states) != 2 || states["s1"].Weight != 10 || states["c1"].Status != "UP" {
					t.Fatalf("states %+v", states)
				}
				done, live, err := be.setWeights(ctx, []weightChange{{"c1", 7, 0}}, []string{"c1", "s1"})
				if err != nil || len(done) != 1 || live["c1"].Weight != 7 || live["s1"].Weight != 7 {
					t.Fatalf("setWeights: %v %v %v", done, live, err)
				}
			}
			want := 1
			if closeAfter == 1 {
				want = 4 // every exchange after the first finds its connection closed
			}
			if got := f.connections(); got != want {
				t.Errorf("%d connections, want %d", got, want)
			}
		})
	}
}
