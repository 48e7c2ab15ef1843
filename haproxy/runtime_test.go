package haproxy

import (
	"strings"
	"testing"
)

func TestRuntimeAddress(t *testing.T) {
	tests := []struct {
		in, network, address, err string
	}{
		{in: "/var/run/haproxy/admin.sock", network: "unix", address: "/var/run/haproxy/admin.sock"},
		{in: "unix:///var/run/haproxy/admin.sock", network: "unix", address: "/var/run/haproxy/admin.sock"},
		{in: "tcp://10.0.0.5:9999", network: "tcp", address: "10.0.0.5:9999"},
		{in: "tcp://[fd00::5]:9999", network: "tcp", address: "[fd00::5]:9999"},
		{in: "tcp://haproxy.internal:9999", network: "tcp", address: "haproxy.internal:9999"},
		{in: "tcp://10.0.0.5", err: "tcp://HOST:PORT"},
		{in: "http://10.0.0.5:9999", err: "tcp://HOST:PORT"},
		{in: "", err: "haproxy.runtime_socket"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			network, address, err := runtimeAddress(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("runtimeAddress(%q) = %q %q %v, want an error naming %q", tt.in, network, address, err, tt.err)
				}
				return
			}
			if err != nil || network != tt.network || address != tt.address {
				t.Fatalf("runtimeAddress(%q) = %q %q %v, want %q %q", tt.in, network, address, err, tt.network, tt.address)
			}
		})
	}
}
