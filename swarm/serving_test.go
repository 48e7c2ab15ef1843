package swarm

import (
	"strings"
	"testing"
)

func TestNotServing(t *testing.T) {
	slot := func(name, host string, up bool) Server {
		port := 0
		if host != "" {
			port = 8080
		}
		return Server{Endpoint: Endpoint{Server: name, Host: host, Port: port}, Up: up}
	}
	canary := []runningTask{{id: "aaaaaaaaaaaaaaaa", ips: []string{"10.0.1.15", "10.0.2.7"}}}
	local := map[string]bool{"192.168.80.2": true}
	tests := []struct {
		name    string
		servers []Server
		tasks   []runningTask
		vips    []string
		want    []string // parts of each reason, in order; none when ready
	}{
		{"its task up in a slot", []Server{slot("canary1", "10.0.1.15", true), slot("canary2", "", false)}, canary, nil, nil},
		{"its task up on its second network", []Server{slot("canary1", "10.0.2.7", true), slot("canary2", "", false)}, canary, nil, nil},
		{"a gone task's address up, its own not resolved yet",
			[]Server{slot("canary1", "10.0.1.14", true), slot("canary2", "", false)}, canary, nil,
			[]string{"canary1 is up at 10.0.1.14:8080, which is no running task of shop_app-canary", "task aaaaaaaaaaaa of shop_app-canary (at 10.0.1.15, 10.0.2.7) has no server up yet"}},
		{"a gone task's address up beside its own",
			[]Server{slot("canary1", "10.0.1.14", true), slot("canary2", "10.0.1.15", true), slot("canary3", "", false)}, canary, nil,
			[]string{"canary1 is up at 10.0.1.14"}},
		{"a gone task's address down (the health checks caught it)",
			[]Server{slot("canary1", "10.0.1.14", false), slot("canary2", "10.0.1.15", true)}, canary, nil, nil},
		{"its task resolved but not up yet",
			[]Server{slot("canary1", "10.0.1.15", false), slot("canary2", "", false)}, canary, nil,
			[]string{"task aaaaaaaaaaaa of shop_app-canary"}},
		{"more tasks than slots, every slot up with one",
			[]Server{slot("canary1", "10.0.1.15", true)},
			append([]runningTask{{id: "b", ips: []string{"10.0.1.16"}}}, canary...), nil, nil},
		{"no task runs, a slot is up", []Server{slot("canary1", "10.0.1.14", true)}, nil, nil,
			[]string{"canary1 is up at 10.0.1.14:8080, which is no running task"}},
		{"published ports on this host and on a node", []Server{slot("canary1", "127.0.0.1", true), slot("canary2", "192.168.80.2", true)}, canary, nil, nil},
		{"the service's virtual IP", []Server{slot("canary1", "10.0.1.2", true)}, canary, []string{"10.0.1.2"}, nil},
		{"a name not resolved", []Server{slot("canary1", "app.internal", true)}, canary, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := notServing("shop_app-canary", tt.servers, tt.tasks, tt.vips, local)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d reasons %q, want %d %q", len(got), got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("reason %d %q lacks %q", i, got[i], w)
				}
			}
		})
	}
}
