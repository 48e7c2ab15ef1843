//go:build integration

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// influxCount counts the stack's request points in the bed's InfluxDB (one per request HAProxy logged).
func (s *stack) influxCount() int64 {
	s.t.Helper()
	q := fmt.Sprintf(`SELECT count("status") FROM "haproxy_request" WHERE "backend" = 'be_%s'`, s.app)
	resp, err := http.Get("http://127.0.0.1:" + bedEnv(s.t, "FM_INFLUX_PORT") + "/query?db=" + bedEnv(s.t, "FM_INFLUX_DB") + "&q=" + url.QueryEscape(q))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Results []struct {
			Series []struct{ Values [][]any }
			Error  string
		}
	}
	if err := json.Unmarshal(body, &r); err != nil || len(r.Results) != 1 || r.Results[0].Error != "" {
		s.t.Fatalf("InfluxDB answered %s %s (%v)", resp.Status, body, err)
	}
	if len(r.Results[0].Series) == 0 {
		return 0
	}
	row := r.Results[0].Series[0].Values[0]
	n, ok := row[len(row)-1].(float64)
	if !ok {
		s.t.Fatalf("InfluxDB's count is %v", row)
	}
	return int64(n)
}

// TestEveryRequestIsOnePoint: the analysis counts requests, errors and latencies from the points
// HAProxy's log sends to InfluxDB, and InfluxDB keeps one point per series and timestamp. Requests
// that one server answers within the same millisecond must still be one point each: a burst of
// concurrent requests through the stack's own HAProxy configuration lands in InfluxDB whole.
func TestEveryRequestIsOnePoint(t *testing.T) {
	s := newStack(t)
	const total, workers = 3000, 16
	var ok, next atomic.Int64
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= total {
				resp, err := client.Get(s.frontend)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if ok.Load() < total*99/100 {
		t.Fatalf("only %d of %d requests answered 200", ok.Load(), total)
	}
	// The points arrive over UDP in batches; wait until the count stops growing.
	var got int64
	for deadline, last := time.Now().Add(15*time.Second), int64(-1); time.Now().Before(deadline); {
		time.Sleep(time.Second)
		got = s.influxCount()
		if got == last && got >= ok.Load() {
			break
		}
		last = got
	}
	t.Logf("%d requests in %s (%.0f/s): %d answered 200, %d points in InfluxDB", total, elapsed.Round(time.Millisecond), total/elapsed.Seconds(), ok.Load(), got)
	// Every request sent is logged, 200 or not; a loopback UDP datagram lost under load is rare, a point
	// overwritten by another with the same timestamp is not.
	if lost := int64(total) - got; lost > total/500 {
		t.Errorf("InfluxDB holds %d points for %d requests: %d lost (%.1f%%)", got, total, lost, 100*float64(lost)/total)
	}
}
