// Package tlsca builds the TLS configuration that trusts a private CA, for the adapters that reach a server
// over https with a certificate of the operator's own CA (HAProxy's Data Plane API, Prometheus).
package tlsca

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// Config returns a TLS configuration (TLS 1.2 at least) that trusts the PEM certificates in file only.
// The error names the file and what is wrong with it.
func Config(file string) (*tls.Config, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
