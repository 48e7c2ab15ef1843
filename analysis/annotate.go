package analysis

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	influxwrite "github.com/influxdata/influxdb-client-go/v2/api/write"
)

// EventMeasurement is the measurement release events are written to, next to the request metrics, so
// that a dashboard shows them as annotations (stacks/production/grafana).
const EventMeasurement = "fridaymorning_event"

// Annotation is a release event for dashboards.
type Annotation struct {
	At                            time.Time
	Release, Service, Kind, Phase string
	// Text says what happened; CanaryPercent is the canary's share at that moment.
	Text          string
	CanaryPercent float64
}

// lineProtocol renders a as one line-protocol point with millisecond precision.
func (a Annotation) lineProtocol() string {
	tag := strings.NewReplacer(",", `\,`, "=", `\=`, " ", `\ `, "\n", " ")
	field := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", " ")
	return fmt.Sprintf("%s,release=%s,service=%s,kind=%s,phase=%s text=\"%s\",canary_percent=%s %d",
		EventMeasurement, tag.Replace(orNone(a.Release)), tag.Replace(orNone(a.Service)), tag.Replace(orNone(a.Kind)), tag.Replace(orNone(a.Phase)),
		field.Replace(a.Text), strconv.FormatFloat(a.CanaryPercent, 'f', -1, 64), a.At.UnixMilli())
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// Annotate writes a through InfluxDB's v1 write API (1.x, 2.x's v1 endpoint, 3).
func (q *InfluxQL) Annotate(ctx context.Context, a Annotation) error {
	qctx, cancel := context.WithTimeout(ctx, q.cfg.Timeout)
	defer cancel()
	params := url.Values{"db": {q.db}, "precision": {"ms"}}
	if q.rp != "" {
		params.Set("rp", q.rp)
	}
	req, err := http.NewRequestWithContext(qctx, http.MethodPost, q.cfg.URL+"/write?"+params.Encode(), strings.NewReader(a.lineProtocol()))
	if err != nil {
		return queryFailure(q.cfg, ctx, err)
	}
	q.authorize(req)
	resp, err := q.client.Do(req)
	if err != nil {
		return queryFailure(q.cfg, ctx, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return queryFailure(q.cfg, ctx, fmt.Errorf("writing an event: HTTP %d: %s", resp.StatusCode, oneLine(string(body))))
	}
	return nil
}

// Annotate writes a through InfluxDB's v2 write API (2.x, or 1.8 with bucket database/retention-policy).
func (f *Flux) Annotate(ctx context.Context, a Annotation) error {
	qctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	p := influxwrite.NewPoint(EventMeasurement,
		map[string]string{"release": orNone(a.Release), "service": orNone(a.Service), "kind": orNone(a.Kind), "phase": orNone(a.Phase)},
		map[string]any{"text": a.Text, "canary_percent": a.CanaryPercent}, a.At)
	if err := f.client.WriteAPIBlocking(f.cfg.Org, f.cfg.Bucket).WritePoint(qctx, p); err != nil {
		return f.queryError(ctx, err)
	}
	return nil
}
