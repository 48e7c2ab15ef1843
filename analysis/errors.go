package analysis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"
)

// queryError is a failed query: its message names the URL and says what to do, never the token; it
// wraps ErrUnreachable and the client's error.
type queryError struct {
	msg  string
	errs []error
}

func (e *queryError) Error() string   { return e.msg }
func (e *queryError) Unwrap() []error { return e.errs }

// queryError explains err, the failure of a query made under ctx.
func queryFailure(cfg Config, ctx context.Context, err error) error {
	if ctx.Err() != nil {
		// The caller gave up (a release aborted, the program stopping): not InfluxDB's fault.
		return fmt.Errorf("analysis: query to InfluxDB at %s stopped: %w", cfg.URL, ctx.Err())
	}
	what, hint := describe(cfg, err)
	msg := fmt.Sprintf("analysis: InfluxDB at %s: %s: %s", cfg.URL, what, hint)
	return &queryError{msg: redact(cfg.Token, msg), errs: []error{ErrUnreachable, err}}
}

// describe says what went wrong with a query and what to do about it.
func describe(cfg Config, err error) (what, hint string) {
	var (
		he *influxhttp.Error
		ne net.Error
		de *net.DNSError
		oe *net.OpError
	)
	msg := oneLine(err.Error())
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("no answer within %s", cfg.Timeout), "check that InfluxDB runs and is not overloaded, or raise influxdb.timeout in fridaymorning.yaml"
	case errors.As(err, &de):
		return fmt.Sprintf("cannot resolve %s", de.Name), "check influxdb.url in fridaymorning.yaml"
	case errors.As(err, &oe) && oe.Op == "dial":
		return oneLine(oe.Err.Error()), "check influxdb.url in fridaymorning.yaml and that InfluxDB runs"
	case errors.As(err, &he) && he.StatusCode == 401:
		return "credentials refused (" + httpStatus(he) + ")", "check FRIDAYMORNING_INFLUXDB_TOKEN or influxdb.token_file (for InfluxDB 1.x: user:password)"
	case errors.As(err, &he) && he.StatusCode == 403:
		if cfg.Language == LanguageFlux {
			return "forbidden (" + httpStatus(he) + ")", "on InfluxDB 1.8 set flux-enabled = true in the [http] section; else give the credentials read access to the bucket"
		}
		return "forbidden (" + httpStatus(he) + ")", "give the credentials read access to the database"
	case errors.As(err, &he) && he.StatusCode == 404:
		api := "Flux query API at /api/v2/query"
		if cfg.Language != LanguageFlux {
			api = "InfluxQL query API at /query"
		}
		return "no " + api + " (" + httpStatus(he) + ")", "influxdb.url in fridaymorning.yaml must be InfluxDB's base URL, such as http://127.0.0.1:8086"
	case strings.Contains(msg, "no database") || strings.Contains(msg, "database not found") || strings.Contains(msg, "retention policy") || strings.Contains(msg, "bucket") && strings.Contains(msg, "not found"):
		return fmt.Sprintf("bucket %q not found (%s)", cfg.Bucket, msg), "check influxdb.bucket in fridaymorning.yaml (for InfluxDB 1.8: database/retention-policy, e.g. fridaymorning/autogen)"
	}
	return "query failed: " + msg, "check the influxdb settings in fridaymorning.yaml; the query is in the verdict's evidence"
}

// httpStatus renders an HTTP error answer: its status and what the server said, if anything (the
// client does not read InfluxDB 1.8's {"error": …} bodies).
func httpStatus(he *influxhttp.Error) string {
	s := fmt.Sprintf("HTTP %d", he.StatusCode)
	if m := oneLine(he.Message); m != "" {
		s += ": " + m
	}
	return s
}

// redact removes the token, and the password of a user:password token, from msg.
func redact(token, msg string) string {
	secrets := []string{token}
	if _, pw, ok := strings.Cut(token, ":"); ok {
		secrets = append(secrets, pw)
	}
	for _, s := range secrets {
		// Shorter strings would redact innocent words; such a secret is no secret anyway.
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}

// oneLine folds a server's multi-line error into one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// queryAttempts is how many times a query is sent when its connection breaks (retryTransient).
const queryAttempts = 3

// retryTransient runs attempt until it succeeds, fails otherwise than by a broken connection, has run
// queryAttempts times, or ctx ends; it returns attempt's last error. Only breaks that a second try can
// mend are retried (the answer cut short, the connection reset or refused): no answer within the
// timeout is not, nor anything InfluxDB answered, so a store that is down or slow still fails the
// query, and soon.
func retryTransient(ctx context.Context, attempt func() error) error {
	var err error
	for i := range queryAttempts {
		if err = attempt(); err == nil || !transient(err) || ctx.Err() != nil {
			return err
		}
		if i+1 < queryAttempts {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(time.Duration(100*(i+1)) * time.Millisecond):
			}
		}
	}
	return err
}

// transient reports whether err is a broken connection rather than an answer or a timeout.
func transient(err error) bool {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}
