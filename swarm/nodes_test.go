package swarm

import (
	"testing"

	"github.com/docker/docker/api/types/swarm"
)

func TestPlaceable(t *testing.T) {
	worker := swarm.Node{ID: "n2",
		Spec: swarm.NodeSpec{Role: swarm.NodeRoleWorker, Annotations: swarm.Annotations{Labels: map[string]string{"Zone": "b"}}},
		Description: swarm.NodeDescription{Hostname: "fm-worker1", Platform: swarm.Platform{OS: "linux", Architecture: "x86_64"},
			Engine: swarm.EngineDescription{Labels: map[string]string{"disk": "ssd"}}},
	}
	tests := []struct {
		name        string
		constraints []string
		platforms   []swarm.Platform
		want        bool
	}{
		{"no constraints", nil, nil, true},
		{"role", []string{"node.role==worker"}, nil, true},
		{"role, other case and spaces", []string{"Node.Role == WORKER"}, nil, true},
		{"not a manager", []string{"node.role!=manager"}, nil, true},
		{"a manager only", []string{"node.role==manager"}, nil, false},
		{"hostname", []string{"node.hostname==fm-worker1"}, nil, true},
		{"id excluded", []string{"node.id!=n2"}, nil, false},
		{"node label (its name keeps its case)", []string{"node.labels.Zone==B"}, nil, true},
		{"node label of another name", []string{"node.labels.zone==b"}, nil, false},
		{"missing label with !=", []string{"node.labels.gpu!=true"}, nil, true},
		{"engine label", []string{"engine.labels.disk==ssd"}, nil, true},
		{"every constraint must hold", []string{"node.role==worker", "node.labels.Zone==a"}, nil, false},
		{"platform os", []string{"node.platform.os==linux"}, nil, true},
		{"unknown key", []string{"node.colour==red"}, nil, false},
		{"no operator", []string{"node.role"}, nil, false},
		{"platforms: one matches", nil, []swarm.Platform{{OS: "windows"}, {OS: "linux", Architecture: "x86_64"}}, true},
		{"platforms: none matches", nil, []swarm.Platform{{Architecture: "arm64"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := placeable(worker, swarm.Placement{Constraints: tt.constraints, Platforms: tt.platforms}); got != tt.want {
				t.Errorf("placeable(%v, %v) = %v, want %v", tt.constraints, tt.platforms, got, tt.want)
			}
		})
	}
}
