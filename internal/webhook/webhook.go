// Package webhook posts JSON to URLs that hold secrets (chat webhooks, gate endpoints): errors name only the
// URL's scheme and host, never its path or query, where the secret usually is.
package webhook

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Post sends body as JSON to rawURL with headers and returns the status and the first non-empty line of
// the answer (at most 200 characters). The error says what failed, and where, without the URL's secret.
func Post(ctx context.Context, client *http.Client, rawURL string, headers map[string]string, body []byte) (status int, firstLine string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return 0, "", fmt.Errorf("a request to %s could not be built", Host(rawURL))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "fridaymorning")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		// net/http's error quotes the URL, secret and all.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, "", fmt.Errorf("POST to %s: %s", Host(rawURL), strings.ReplaceAll(err.Error(), rawURL, Host(rawURL)))
	}
	defer resp.Body.Close()
	line := ""
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 64<<10))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			line = Truncate(l)
			break
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, line, nil
}

// Host is the scheme and host of a URL, the part that is safe to print: "https://hooks.slack.com/…".
func Host(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unparsable URL)"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// Truncate shortens an answer to at most 200 bytes for a message.
func Truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
