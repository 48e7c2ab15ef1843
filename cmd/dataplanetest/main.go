// Command dataplanetest serves fridaymorning's Data Plane API test server (package haproxy/dataplanetest),
// v2 or v3 (--api), over HTTP with basic auth, driving a real HAProxy. The test bed runs it where the real
// dataplaneapi cannot be installed.
//
// The password comes from FM_DATAPLANE_PASSWORD or the file named by FM_DATAPLANE_PASSWORD_FILE; it is
// never a flag and never logged.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fridaymorning/fridaymorning/haproxy/dataplanetest"
)

func password() (string, error) {
	if p := os.Getenv("FM_DATAPLANE_PASSWORD"); p != "" {
		return p, nil
	}
	file := os.Getenv("FM_DATAPLANE_PASSWORD_FILE")
	if file == "" {
		return "", errors.New("set FM_DATAPLANE_PASSWORD or FM_DATAPLANE_PASSWORD_FILE")
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("reading FM_DATAPLANE_PASSWORD_FILE: %w", err)
	}
	p := strings.TrimSpace(string(raw))
	if p == "" {
		return "", fmt.Errorf("FM_DATAPLANE_PASSWORD_FILE %s is empty", file)
	}
	return p, nil
}

// statusWriter remembers the status for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:5555", "address to serve on")
	user := flag.String("user", "admin", "basic-auth user")
	configFile := flag.String("config-file", "", "HAProxy configuration file (required)")
	haproxyBin := flag.String("haproxy-bin", "haproxy", "haproxy binary")
	runtimeSocket := flag.String("runtime-socket", "", "HAProxy admin stats socket (required)")
	masterSocket := flag.String("master-socket", "", "HAProxy master CLI socket, for reloads")
	workDir := flag.String("work-dir", "", "directory for transactions (default: beside the config)")
	api := flag.String("api", "v2", "API version to serve: v2 (as dataplaneapi 2.9) or v3 (as dataplaneapi 3.3)")
	noRuntimeWeights := flag.Bool("no-runtime-weights", false, "v3: the runtime server endpoint ignores weights, as dataplaneapi before 3.3.1")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	pw, err := password()
	if err != nil {
		log.Error("no password", "err", err)
		os.Exit(2)
	}
	major := map[string]int{"v2": 2, "v3": 3}[*api]
	if major == 0 {
		log.Error("unknown --api: want v2 or v3", "api", *api)
		os.Exit(2)
	}
	cfg := dataplanetest.Config{
		ConfigFile: *configFile, HAProxyBin: *haproxyBin, RuntimeSocket: *runtimeSocket, MasterSocket: *masterSocket,
		User: *user, Password: pw, Major: major, NoRuntimeWeights: *noRuntimeWeights,
	}
	if *workDir != "" {
		cfg.TransactionsDir = *workDir + "/transactions"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := dataplanetest.New(ctx, cfg)
	if err != nil {
		log.Error("starting", "err", err)
		os.Exit(1)
	}
	hs := &http.Server{
		Addr:              *listen,
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
			start := time.Now()
			srv.ServeHTTP(sw, r)
			log.Info("request", "method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery, "status", sw.status, "took", time.Since(start).Round(time.Microsecond))
		}),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.ListenAndServe() }()
	log.Info("serving the Data Plane API test server", "api", *api, "listen", *listen, "config", *configFile)
	select {
	case err := <-errc:
		log.Error("serving", "err", err)
		os.Exit(1)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(shutdown)
}
