//go:build integration

package haproxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-openapi/loads"
	"github.com/go-openapi/spec"
	"github.com/go-openapi/strfmt"
	"github.com/go-openapi/validate"
	"gopkg.in/yaml.v3"

	"github.com/fridaymorning/fridaymorning/haproxy"
	"github.com/fridaymorning/fridaymorning/haproxy/dataplanetest"
)

// The contract tests hold every exchange the test server serves to fridaymorning's client (and to
// the raw calls of the faithfulness checks) against the OpenAPI specification of the matching major,
// read from the Go module cache: client-native v5's for v2 (dataplaneapi 2.x) and v6's for v3 (3.x).
// Each exchange's path and method must be in the specification, its query parameters declared, its
// request body valid for the body parameter's schema, its status declared (or covered by the default
// response), its body valid for that response's schema, and the headers the response declares
// (Configuration-Version, Reload-ID) present.
//
// v6.3.0's runtime_server has no weight (dataplaneapi 3.3.1, on client-native v6.3.2, added weight,
// iweight and uweight): the schema does not forbid extra fields, so the 3.3.1 answers validate, and the
// weights are checked by TestDataPlaneAPIv3Faithfulness.

// moduleDir is where the Go module cache holds module@version (downloading it if needed).
func moduleDir(t testing.TB, module string) string {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", module).Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v", module, err)
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		t.Fatalf("go mod download %s: %s %v", module, m.Error, err)
	}
	return m.Dir
}

// loadSpec reads a specification whose $refs may point into other files (v5's is split over paths/ and
// models/, with "#/..." in those files meaning the root file), inlines the other files, and expands the
// rest.
func loadSpec(t testing.TB, file string) *spec.Swagger {
	t.Helper()
	cache := map[string]any{}
	read := func(path string) any {
		if v, ok := cache[path]; ok {
			return v
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := yaml.Unmarshal(raw, &v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		cache[path] = v
		return v
	}
	var inline func(v any, dir string) any
	inline = func(v any, dir string) any {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok && !strings.HasPrefix(ref, "#") {
				file, ptr, _ := strings.Cut(ref, "#")
				path := filepath.Join(dir, file)
				target := read(path)
				for _, p := range strings.Split(strings.Trim(ptr, "/"), "/") {
					if p != "" {
						target = target.(map[string]any)[p]
					}
				}
				return inline(target, filepath.Dir(path))
			}
			out := make(map[string]any, len(x))
			for k, e := range x {
				out[k] = inline(e, dir)
			}
			return out
		case map[any]any:
			out := make(map[string]any, len(x))
			for k, e := range x {
				out[fmt.Sprint(k)] = inline(e, dir)
			}
			return out
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				out[i] = inline(e, dir)
			}
			return out
		}
		return v
	}
	raw, err := json.Marshal(inline(read(file), filepath.Dir(file)))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := loads.Analyzed(raw, "2.0")
	if err != nil {
		t.Fatal(err)
	}
	exp, err := doc.Expanded()
	if err != nil {
		t.Fatalf("expanding %s: %v", file, err)
	}
	return exp.Spec()
}

var specs = struct {
	sync.Mutex
	byMajor map[int]*spec.Swagger
}{byMajor: map[int]*spec.Swagger{}}

// specFor returns the specification of the API major from the module cache.
func specFor(t testing.TB, major int) *spec.Swagger {
	t.Helper()
	specs.Lock()
	defer specs.Unlock()
	if s := specs.byMajor[major]; s != nil {
		return s
	}
	var s *spec.Swagger
	switch major {
	case 2:
		s = loadSpec(t, filepath.Join(moduleDir(t, "github.com/haproxytech/client-native/v5@v5.1.15"), "specification", "haproxy-spec.yaml"))
	case 3:
		s = loadSpec(t, filepath.Join(moduleDir(t, "github.com/haproxytech/client-native/v6@v6.3.0"), "specification", "build", "haproxy_spec.yaml"))
	}
	if want := fmt.Sprintf("/v%d", major); s.BasePath != want {
		t.Fatalf("the v%d specification's basePath is %q", major, s.BasePath)
	}
	specs.byMajor[major] = s
	return s
}

// exchange is one request served and its answer.
type exchange struct {
	method, path string
	query        map[string][]string
	reqBody      []byte
	status       int
	header       http.Header
	respBody     []byte
}

// recorder serves h and keeps every exchange.
type recorder struct {
	h  http.Handler
	mu sync.Mutex
	ex []exchange
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	rw := httptest.NewRecorder()
	rc.h.ServeHTTP(rw, r)
	rc.mu.Lock()
	rc.ex = append(rc.ex, exchange{r.Method, r.URL.Path, r.URL.Query(), body, rw.Code, rw.Header().Clone(), rw.Body.Bytes()})
	rc.mu.Unlock()
	for k, v := range rw.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rw.Code)
	_, _ = w.Write(rw.Body.Bytes())
}

// match finds the specification's path template for a served path.
func match(sw *spec.Swagger, path string) (string, *spec.PathItem) {
	rel := strings.Split(strings.TrimPrefix(path, sw.BasePath), "/")
	for tmpl, item := range sw.Paths.Paths {
		segs := strings.Split(tmpl, "/")
		if len(segs) != len(rel) {
			continue
		}
		ok := true
		for i, s := range segs {
			ok = ok && (s == rel[i] || (strings.HasPrefix(s, "{") && rel[i] != ""))
		}
		if ok {
			return tmpl, &item
		}
	}
	return "", nil
}

func operation(item *spec.PathItem, method string) *spec.Operation {
	switch method {
	case http.MethodGet:
		return item.Get
	case http.MethodPut:
		return item.Put
	case http.MethodPost:
		return item.Post
	case http.MethodDelete:
		return item.Delete
	}
	return nil
}

// allOfClosed reads "additionalProperties: false" beside allOf as go-swagger (which dataplaneapi's
// models are generated with) does: no properties beyond those of the allOf members. Plain JSON
// Schema would forbid every property, as none stands beside allOf; the specifications mean go-swagger's.
func allOfClosed(s *spec.Schema) {
	if s == nil {
		return
	}
	for i := range s.AllOf {
		allOfClosed(&s.AllOf[i])
	}
	for k, p := range s.Properties {
		allOfClosed(&p)
		s.Properties[k] = p
	}
	if s.Items != nil {
		allOfClosed(s.Items.Schema)
		for i := range s.Items.Schemas {
			allOfClosed(&s.Items.Schemas[i])
		}
	}
	if len(s.AllOf) > 0 && s.AdditionalProperties != nil && !s.AdditionalProperties.Allows {
		if s.Properties == nil {
			s.Properties = spec.SchemaProperties{}
		}
		var collect func(m *spec.Schema)
		collect = func(m *spec.Schema) {
			for k, p := range m.Properties {
				s.Properties[k] = p
			}
			for i := range m.AllOf {
				collect(&m.AllOf[i])
			}
		}
		for i := range s.AllOf {
			collect(&s.AllOf[i])
		}
	}
}

func validJSON(t *testing.T, what string, schema *spec.Schema, raw []byte) {
	t.Helper()
	allOfClosed(schema)
	var data any
	if err := json.Unmarshal(raw, &data); err != nil {
		t.Errorf("%s: not JSON: %v: %s", what, err, truncateBody(raw))
		return
	}
	if err := validate.AgainstSchema(schema, data, strfmt.Default); err != nil {
		t.Errorf("%s: does not match the specification: %v\n%s", what, err, truncateBody(raw))
	}
}

func truncateBody(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "…"
	}
	return string(b)
}

// holdToSpec checks every exchange against the specification and returns the operations seen, as
// "METHOD template status".
func holdToSpec(t *testing.T, sw *spec.Swagger, exs []exchange) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, ex := range exs {
		what := fmt.Sprintf("%s %s → %d", ex.method, ex.path, ex.status)
		tmpl, item := match(sw, ex.path)
		if item == nil {
			if ex.status != http.StatusNotFound {
				t.Errorf("%s: the path is not in the v%s specification", what, sw.BasePath[2:])
			}
			continue
		}
		op := operation(item, ex.method)
		if op == nil {
			t.Errorf("%s: %s has no %s in the specification", what, tmpl, ex.method)
			continue
		}
		seen[fmt.Sprintf("%s %s %d", ex.method, tmpl, ex.status)] = true
		params := append(append([]spec.Parameter{}, item.Parameters...), op.Parameters...)
		for k := range ex.query {
			declared := false
			for _, p := range params {
				declared = declared || (p.In == "query" && p.Name == k)
			}
			if !declared {
				t.Errorf("%s: query parameter %q is not declared for %s %s", what, k, ex.method, tmpl)
			}
		}
		for _, p := range params {
			if p.In == "body" && p.Schema != nil && len(ex.reqBody) > 0 && ex.status/100 == 2 {
				validJSON(t, what+" request body", p.Schema, ex.reqBody)
			}
		}
		var resp *spec.Response
		if r, ok := op.Responses.StatusCodeResponses[ex.status]; ok {
			resp = &r
		} else if op.Responses.Default != nil && ex.status/100 != 2 {
			resp = op.Responses.Default
		}
		if resp == nil {
			t.Errorf("%s: status %d is not declared for %s %s", what, ex.status, ex.method, tmpl)
			continue
		}
		if resp.Schema != nil && len(bytes.TrimSpace(ex.respBody)) > 0 {
			// HAProxy marks a health check in progress with "* " before its status ("* L7OK"), and
			// client-native passes that through, in the real API as here; the specifications' enum of
			// check_status does not have it. The one deviation allowed (the client trims the mark).
			body := bytes.ReplaceAll(ex.respBody, []byte(`"check_status":"* `), []byte(`"check_status":"`))
			validJSON(t, what+" answer", resp.Schema, body)
		}
		for h := range resp.Headers {
			if ex.header.Get(h) == "" {
				t.Errorf("%s: the specification declares header %s, the answer has none", what, h)
			}
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestDataPlaneAPIContract drives both majors of the test server with the client (check, shifts,
// maintenance, configuration weights, template slots) and with the raw error cases, and holds every
// exchange to the specification of its major.
func TestDataPlaneAPIContract(t *testing.T) {
	for _, major := range []int{2, 3} {
		t.Run(fmt.Sprintf("v%d", major), func(t *testing.T) {
			sw := specFor(t, major)
			tp := newTopology(t, 2, 1, false)
			rec := &recorder{}
			dp, _ := tp.serve(t, dataplanetest.Config{Major: major})
			rec.h = dp
			api := httptest.NewServer(rec)
			defer api.Close()
			root := fmt.Sprintf("%s/v%d", api.URL, major)
			ctx := context.Background()
			c := tp.clientAt(t, haproxy.ModeDataplane, root, func(c *haproxy.Config) { c.Cohorts = true })
			for _, pct := range []float64{10, 100, 0} {
				if _, _, err := c.Shift(ctx, pct); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := c.ConfigWeights(ctx); err != nil {
				t.Fatal(err)
			}
			raw := func(method, path string, body any) (int, []byte) {
				code, _, b := apiCall(t, root, method, path, "admin", password, body)
				return code, b
			}
			srvPath, q := "/services/haproxy/configuration/backends/be_app/servers/stable1", ""
			if major == 2 {
				srvPath, q = "/services/haproxy/configuration/servers/stable1", "?backend=be_app"
			}
			_, s1 := raw("GET", srvPath+q, nil)
			var obj map[string]any
			_ = json.Unmarshal(s1, &obj)
			if d, ok := obj["data"].(map[string]any); ok {
				obj = d
			}
			sep := "?"
			if q != "" {
				sep = "&"
			}
			for _, call := range []struct {
				method, path string
				body         any
				want         int
			}{
				{"GET", "/info", nil, 200},
				{"GET", "/services/haproxy/configuration/version", nil, 200},
				{"GET", "/services/haproxy/configuration/backends", nil, 200},
				{"PUT", srvPath + q + sep + "version=1", obj, 409},
				{"PUT", srvPath + q, obj, 400},
				{"PUT", srvPath + q + sep + "version=1", map[string]any{"name": "stable1"}, 422},
				{"GET", strings.Replace(srvPath, "stable1", "nope", 1) + q, nil, 404},
				{"GET", "/services/haproxy/stats/native?type=server&parent=be_app&name=stable1", nil, 200},
			} {
				if code, body := raw(call.method, call.path, call.body); code != call.want {
					t.Errorf("%s %s: %d %s, want %d", call.method, call.path, code, body, call.want)
				}
			}
			if major == 3 {
				for _, p := range []string{"/services/haproxy/runtime/backends/be_app/servers", "/services/haproxy/runtime/backends/be_app/servers/stable1"} {
					if code, body := raw("GET", p, nil); code != 200 {
						t.Errorf("GET %s: %d %s", p, code, body)
					}
				}
				// A change the runtime cannot apply: 202 with a Reload-ID.
				obj["tlsv10"] = "disabled"
				_, hdr, _ := apiCall(t, root, "GET", srvPath, "admin", password, nil)
				if code, body := raw("PUT", srvPath+"?version="+hdr.Get("Configuration-Version"), obj); code != 202 {
					t.Errorf("PUT with a reload: %d %s", code, body)
				}
				waitReloads(t, dp, tp.hap, 1)
			}
			ops := holdToSpec(t, sw, rec.ex)
			t.Logf("%d exchanges, operations held to the v%d specification:\n  %s", len(rec.ex), major, strings.Join(ops, "\n  "))
		})
	}
	t.Run("v3 template slots", func(t *testing.T) {
		sw := specFor(t, 3)
		for _, noRW := range []bool{false, true} {
			tp := newTopology(t, 1, 1, true)
			rec := &recorder{}
			dp, _ := tp.serve(t, dataplanetest.Config{Major: 3, NoRuntimeWeights: noRW})
			rec.h = dp
			api := httptest.NewServer(rec)
			c := tp.clientAt(t, haproxy.ModeDataplane, api.URL+"/v3")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			if _, _, err := c.Shift(ctx, 50); err != nil {
				t.Fatal(err)
			}
			cancel()
			api.Close()
			ops := holdToSpec(t, sw, rec.ex)
			t.Logf("runtime weights %v: %s", !noRW, strings.Join(ops, "; "))
		}
	})
}
