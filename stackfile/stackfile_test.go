package stackfile

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"
)

// target loads testdata/file for stack shop and returns the app service's target.
func target(t *testing.T, file string, environ ...string) *Target {
	t.Helper()
	st, err := Load(filepath.Join("testdata", file), "shop", environ)
	if err != nil {
		t.Fatalf("Load(%s): %v", file, err)
	}
	tg, err := st.Target("app")
	if err != nil {
		t.Fatalf("Target(app): %v", err)
	}
	return tg
}

func TestLoadConvertsAsStackDeploy(t *testing.T) {
	tg := target(t, "stack.yml")
	s := tg.Spec
	c := s.TaskTemplate.ContainerSpec
	if s.Name != "shop_app" || s.Labels[LabelNamespace] != "shop" || s.Labels[LabelImage] != "registry.example.com/shop:v1" || s.Labels["team"] != "checkout" {
		t.Errorf("name %q, labels %v: want shop_app with the stack's namespace, image and deploy labels", s.Name, s.Labels)
	}
	if c.Image != "registry.example.com/shop:v1" {
		t.Errorf("image %q: want the default of ${SHOP_TAG:-v1}, and .env not read", c.Image)
	}
	if want := []string{"DATABASE_POOL=10", "LOG_LEVEL=info"}; !slices.Equal(c.Env, want) {
		t.Errorf("env %v, want %v", c.Env, want)
	}
	if len(c.Configs) != 1 || c.Configs[0].ConfigName != "shop_app_cfg_1" || c.Configs[0].File.Name != "/etc/app/app.yml" || c.Configs[0].ConfigID != "" {
		t.Errorf("configs %+v: want shop_app_cfg_1 at /etc/app/app.yml, by name only", c.Configs)
	}
	if len(c.Secrets) != 1 || c.Secrets[0].SecretName != "shop_db_password" || c.Secrets[0].File.Name != "db_password" {
		t.Errorf("secrets %+v: want shop_db_password at db_password", c.Secrets)
	}
	if n := s.TaskTemplate.Networks; len(n) != 1 || n[0].Target != "shop_back" || !slices.Contains(n[0].Aliases, "app") {
		t.Errorf("networks %+v: want shop_back with alias app", n)
	}
	if len(tg.Configs) != 1 || string(tg.Configs[0].Data) != "pool: 10\n" || tg.Configs[0].Labels[LabelNamespace] != "shop" {
		t.Errorf("target configs %+v: want shop_app_cfg_1 with the file's content and the stack's label", tg.Configs)
	}
	if len(tg.Secrets) != 1 || string(tg.Secrets[0].Data) != "hunter2\n" {
		t.Errorf("target secrets: want shop_db_password with the file's content")
	}
	if s.Mode.Replicated == nil || *s.Mode.Replicated.Replicas != 3 {
		t.Errorf("mode %+v: want 3 replicas", s.Mode)
	}
}

func TestLoadInterpolatesFromTheEnvironmentOnly(t *testing.T) {
	tg := target(t, "stack.yml", "SHOP_TAG=v2", "CFG_VERSION=7", "IGNORED")
	if got := tg.Spec.TaskTemplate.ContainerSpec.Image; got != "registry.example.com/shop:v2" {
		t.Errorf("image %q: want SHOP_TAG from the environment", got)
	}
	if got := tg.Spec.TaskTemplate.ContainerSpec.Configs[0].ConfigName; got != "shop_app_cfg_7" {
		t.Errorf("config %q: want CFG_VERSION from the environment", got)
	}
	if _, err := os.Stat(filepath.Join("testdata", ".env")); err != nil {
		t.Fatalf("testdata/.env must exist for this test to mean anything: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file, stack, service, want string
	}{
		{"no file", "missing.yml", "shop", "app", "reading the stack file"},
		{"schema", "bad.yml", "shop", "app", "replicas"},
		{"no stack name", "stack.yml", "", "app", "give the name the stack was deployed with"},
		{"unknown service", "stack.yml", "shop", "web", `no service "web" (it has app, worker)`},
		{"other stack's service", "stack.yml", "shop", "blog_app", `no service "blog_app"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Load(filepath.Join("testdata", tc.file), tc.stack, nil)
			if err == nil {
				_, err = st.Target(tc.service)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestTargetTakesTheSwarmName(t *testing.T) {
	st, err := Load("testdata/stack.yml", "shop", nil)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := st.Target("shop_app")
	if err != nil || tg.Spec.Name != "shop_app" {
		t.Fatalf("Target(shop_app) = %v, %v", tg, err)
	}
}

func TestDiff(t *testing.T) {
	stable := target(t, "stack.yml").Spec
	for _, tc := range []struct {
		name, file string
		environ    []string
		want       []string
	}{
		{"same file", "stack.yml", nil, nil},
		{"env", "env.yml", nil, []string{"env DATABASE_POOL: 10 → 20"}},
		{"image", "stack.yml", []string{"SHOP_TAG=v2"}, []string{
			"image: registry.example.com/shop:v1 → registry.example.com/shop:v2",
			"label com.docker.stack.image: registry.example.com/shop:v1 → registry.example.com/shop:v2",
		}},
		{"config", "config.yml", []string{"CFG_VERSION=2"}, []string{
			"config /etc/app/app.yml: shop_app_cfg_1 (uid 0, gid 0, mode 0444) → shop_app_cfg_2 (uid 0, gid 0, mode 0444)",
		}},
		{"resources, healthcheck, command, labels", "resources.yml", nil, []string{
			`command: ["/app","--listen",":8080"] → ["/app","--listen",":8080","--verbose"]`,
			"healthcheck interval: 5s → 2s",
			"label team: checkout → payments",
			"limits memory: 256M → 512M",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := target(t, tc.file, tc.environ...).Spec
			var got []string
			for _, c := range Diff(stable, next) {
				got = append(got, line(c))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if same := Fingerprint(stable) == Fingerprint(next); same != (len(tc.want) == 0) {
				t.Errorf("same fingerprint %v with %d changes", same, len(tc.want))
			}
		})
	}
}

func TestDiffAddsAndRemoves(t *testing.T) {
	stable := target(t, "stack.yml").Spec
	next := target(t, "stack.yml").Spec
	c := next.TaskTemplate.ContainerSpec
	c.Env = []string{"DATABASE_POOL=10", "DEBUG=1"}
	c.Secrets = nil
	got := Diff(stable, next)
	want := []Change{
		{Field: "env DEBUG", To: "1"},
		{Field: "env LOG_LEVEL", From: "info"},
		{Field: "secret db_password", From: "shop_db_password (uid 0, gid 0, mode 0444)"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Diff = %+v, want %+v", got, want)
	}
}

// What Swarm adds to a spec it stores, and fridaymorning's own labels, are no change.
func TestDiffIgnoresWhatSwarmFillsIn(t *testing.T) {
	stable := target(t, "stack.yml").Spec
	next := target(t, "stack.yml").Spec
	stable.Labels["fridaymorning.state"] = `{"id":"r1"}`
	stable.TaskTemplate.ForceUpdate = 3
	stable.TaskTemplate.Runtime = swarm.RuntimeContainer
	stable.TaskTemplate.ContainerSpec.Image += "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	stable.TaskTemplate.ContainerSpec.Isolation = "default"
	stable.TaskTemplate.ContainerSpec.Configs[0].ConfigID = "cfgid"
	stable.TaskTemplate.ContainerSpec.Secrets[0].SecretID = "secid"
	stable.TaskTemplate.Placement.Platforms = []swarm.Platform{{Architecture: "amd64", OS: "linux"}}
	stable.EndpointSpec.Mode = swarm.ResolutionModeVIP
	next.TaskTemplate.ContainerSpec.Env = []string{"LOG_LEVEL=info", "DATABASE_POOL=10"} // order
	if d := Diff(stable, next); len(d) != 0 {
		t.Fatalf("Diff = %v, want none", d)
	}
	// The diff works on copies.
	if stable.TaskTemplate.ContainerSpec.Configs[0].ConfigID != "cfgid" {
		t.Fatal("Diff changed its input")
	}
}

func TestRefuse(t *testing.T) {
	stable := target(t, "stack.yml").Spec
	for _, tc := range []struct {
		name, file string
		change     func(*swarm.ServiceSpec)
		want       []string // each refusal's start, in order; none: allowed
	}{
		{"env", "env.yml", nil, nil},
		{"resources", "resources.yml", nil, nil},
		{"published port", "ports.yml", nil, []string{"the published ports change (8080/tcp (host) → 9090/tcp (host))"}},
		{"networks", "networks.yml", nil, []string{"the networks change (shop_back → shop_back, shop_front)"}},
		{"mode", "mode.yml", nil, []string{"the mode changes (replicated → global)"}},
		{"endpoint mode", "dnsrr.yml", nil, []string{"the endpoint mode changes (vip → dnsrr)"}},
		{"other stack", "stack.yml", func(s *swarm.ServiceSpec) { s.Labels[LabelNamespace] = "blog" }, []string{"shop_app belongs to stack blog, not shop: pass --stack blog"}},
		{"not a stack", "stack.yml", func(s *swarm.ServiceSpec) { delete(s.Labels, LabelNamespace) }, []string{"shop_app was not deployed with docker stack deploy"}},
		{"other service", "stack.yml", func(s *swarm.ServiceSpec) { s.Name = "shop_web" }, []string{"the stack file's service is shop_app, the stable service shop_web"}},
		{"several at once", "ports.yml", func(s *swarm.ServiceSpec) { s.Mode = swarm.ServiceMode{Global: &swarm.GlobalService{}} }, []string{
			"the published ports change", "the mode changes (global → replicated)",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := normalize(stable) // a copy
			st.Name = stable.Name
			if tc.change != nil {
				tc.change(&st)
			}
			err := Refuse(st, target(t, tc.file).Spec)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Refuse: %v, want nil", err)
				}
				return
			}
			var re *RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("Refuse = %v, want a *RefusedError", err)
			}
			if len(re.Refusals) != len(tc.want) {
				t.Fatalf("refusals %v, want %d", re.Refusals, len(tc.want))
			}
			for i, w := range tc.want {
				if r := re.Refusals[i].String(); !strings.HasPrefix(r, w) || re.Refusals[i].Do == "" {
					t.Errorf("refusal %d = %q, want it to start with %q and say what to do", i, r, w)
				}
			}
		})
	}
}

// testdata/readback.json is what Swarm (engine 20.10) stored for `docker stack deploy --resolve-image
// never -c testdata/stack.yml sfshop` (docker CLI 28.2): with Swarm's defaults filled in and IDs of
// configs, secrets and networks. Once network IDs are names again, it is no change from the file.
func TestDiffOfWhatSwarmStored(t *testing.T) {
	raw, err := os.ReadFile("testdata/readback.json")
	if err != nil {
		t.Fatal(err)
	}
	var stored swarm.ServiceSpec
	if err := json.Unmarshal(raw, &stored); err != nil {
		t.Fatal(err)
	}
	stored.TaskTemplate.Networks[0].Target = "sfshop_back"
	st, err := Load("testdata/stack.yml", "sfshop", nil)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := st.Target("app")
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(stored, tg.Spec); len(d) != 0 {
		t.Errorf("Diff(stored, file) = %v, want none", d)
	}
	if Fingerprint(stored) != Fingerprint(tg.Spec) {
		t.Error("fingerprints differ")
	}
	if err := Refuse(stored, tg.Spec); err != nil {
		t.Errorf("Refuse: %v", err)
	}
	tg.Spec.TaskTemplate.ContainerSpec.Env[0] = "DATABASE_POOL=20"
	if d := Diff(stored, tg.Spec); len(d) != 1 || line(d[0]) != "env DATABASE_POOL: 10 → 20" {
		t.Errorf("Diff after an env change = %v", d)
	}
}

// line is a change as the tests write it.
func line(c Change) string { return c.Field + ": " + c.From + " → " + c.To }
