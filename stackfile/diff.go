package stackfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/docker/docker/api/types/swarm"
)

// OwnLabelPrefix starts the labels fridaymorning keeps on services (its release record, requests,
// heartbeat, roles): they are not part of what a stack file says, so a difference never shows them.
const OwnLabelPrefix = "fridaymorning."

// Change is one difference between two service specs, as a reviewer reads it: Field names what
// changes ("image", "env DATABASE_POOL", "config /etc/app.yml", "limits memory"), From and To are the
// values before and after ("" when the field is added or removed). The release engine shows them as
// release.Change.
type Change struct {
	Field, From, To string
}

// Diff returns what changes when a service running stable is given next, sorted by field. Values that
// Swarm fills in or that mean the same (an empty list and none, replicated mode without a count and
// one replica, a pinned digest of the same image, IDs of configs next to their names) are no change.
// fridaymorning's own labels are left out. Network references must be by name in both specs.
func Diff(stable, next swarm.ServiceSpec) []Change {
	a, b := View(stable), View(next)
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []Change
	for _, k := range keys {
		if a[k] != b[k] {
			out = append(out, Change{Field: k, From: a[k], To: b[k]})
		}
	}
	return out
}

// Fingerprint names what a spec runs, as Diff sees it: two specs have the same fingerprint exactly when
// Diff finds no change between them.
func Fingerprint(spec swarm.ServiceSpec) string {
	v := View(spec)
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s\x00%s\x00", k, v[k])
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// View flattens spec into the fields Diff compares, by the name a reviewer reads, each with its value
// as text. Empty values are left out, so that "none" and "empty" are the same.
func View(spec swarm.ServiceSpec) map[string]string {
	v := map[string]string{}
	spec = normalize(spec)
	for k, val := range spec.Labels {
		if !strings.HasPrefix(k, OwnLabelPrefix) {
			v["label "+k] = val
		}
	}
	spec.Labels = nil
	if c := spec.TaskTemplate.ContainerSpec; c != nil {
		v["image"] = stripDigest(c.Image)
		for _, e := range c.Env {
			k, val, ok := strings.Cut(e, "=")
			if !ok {
				val = "(from the node's environment: unset)"
			}
			v["env "+k] = val
		}
		for k, val := range c.Labels {
			v["container label "+k] = val
		}
		if len(c.Command) > 0 {
			v["entrypoint"] = quoteList(c.Command)
		}
		if len(c.Args) > 0 {
			v["command"] = quoteList(c.Args)
		}
		for _, r := range c.Configs {
			switch {
			case r.File != nil:
				v["config "+r.File.Name] = fmt.Sprintf("%s (uid %s, gid %s, mode %#o)", r.ConfigName, r.File.UID, r.File.GID, r.File.Mode)
			case r.Runtime != nil:
				v["config (runtime) "+r.ConfigName] = r.ConfigName
			}
		}
		for _, r := range c.Secrets {
			if r.File != nil {
				v["secret "+r.File.Name] = fmt.Sprintf("%s (uid %s, gid %s, mode %#o)", r.SecretName, r.File.UID, r.File.GID, r.File.Mode)
			}
		}
		for _, m := range c.Mounts {
			val := string(m.Type) + " " + m.Source
			if m.ReadOnly {
				val += " (read-only)"
			}
			v["mount "+m.Target] = val
			prefix := "mount " + m.Target + " "
			m.Source, m.Type, m.ReadOnly, m.Target = "", "", false, ""
			flatten(v, prefix, m)
		}
		if h := c.Healthcheck; h != nil {
			if len(h.Test) > 0 {
				v["healthcheck test"] = quoteList(h.Test)
			}
			h.Test = nil
			flatten(v, "healthcheck ", h)
		}
		c.Image, c.Env, c.Labels, c.Command, c.Args, c.Configs, c.Secrets, c.Mounts, c.Healthcheck = "", nil, nil, nil, nil, nil, nil, nil, nil
		flatten(v, "", c)
	}
	spec.TaskTemplate.ContainerSpec = nil
	if r := spec.TaskTemplate.Resources; r != nil {
		if l := r.Limits; l != nil {
			resource(v, "limits", l.NanoCPUs, l.MemoryBytes)
			if l.Pids > 0 {
				v["limits pids"] = strconv.FormatInt(l.Pids, 10)
			}
		}
		if res := r.Reservations; res != nil {
			resource(v, "reservations", res.NanoCPUs, res.MemoryBytes)
			res.NanoCPUs, res.MemoryBytes = 0, 0
			flatten(v, "reservations ", res)
		}
	}
	spec.TaskTemplate.Resources = nil
	for _, n := range spec.TaskTemplate.Networks {
		v["network "+n.Target] = strings.Join(n.Aliases, ", ")
	}
	spec.TaskTemplate.Networks = nil
	if p := spec.TaskTemplate.Placement; p != nil {
		if len(p.Constraints) > 0 {
			v["placement constraints"] = strings.Join(p.Constraints, ", ")
		}
		p.Constraints = nil
		flatten(v, "placement ", p)
	}
	spec.TaskTemplate.Placement = nil
	if e := spec.EndpointSpec; e != nil {
		v["endpoint mode"] = string(e.Mode)
		for _, p := range e.Ports {
			v[fmt.Sprintf("port %d/%s", p.PublishedPort, p.Protocol)] = fmt.Sprintf("target %d, %s mode", p.TargetPort, p.PublishMode)
		}
	}
	spec.EndpointSpec = nil
	switch m := spec.Mode; {
	case m.Replicated != nil:
		v["mode"] = "replicated"
		v["replicas"] = strconv.FormatUint(*m.Replicated.Replicas, 10)
	case m.Global != nil:
		v["mode"] = "global"
	case m.ReplicatedJob != nil:
		v["mode"] = "replicated-job"
		flatten(v, "job ", m.ReplicatedJob)
	case m.GlobalJob != nil:
		v["mode"] = "global-job"
	}
	spec.Mode = swarm.ServiceMode{}
	flatten(v, "", spec.TaskTemplate)
	spec.TaskTemplate = swarm.TaskSpec{}
	flatten(v, "", spec)
	for k, val := range v {
		if val == "" {
			delete(v, k)
		}
	}
	return v
}

// normalize fills in what Swarm fills in when it stores a spec, and drops what it adds or what a
// release never sets, so that a spec read back from Swarm and the one sent compare equal. It works on
// a deep copy.
func normalize(spec swarm.ServiceSpec) swarm.ServiceSpec {
	var cp swarm.ServiceSpec
	raw, err := json.Marshal(spec)
	if err == nil && json.Unmarshal(raw, &cp) == nil {
		spec = cp
	}
	spec.Name = ""
	spec.TaskTemplate.ForceUpdate = 0 // docker stack deploy keeps the service's own
	if spec.TaskTemplate.Runtime == swarm.RuntimeContainer {
		spec.TaskTemplate.Runtime = ""
	}
	if p := spec.TaskTemplate.Placement; p != nil {
		p.Platforms = nil // filled in from the image when the registry is asked
	}
	if c := spec.TaskTemplate.ContainerSpec; c != nil {
		if c.Isolation == "default" {
			c.Isolation = ""
		}
		for _, r := range c.Configs {
			r.ConfigID = ""
		}
		for _, r := range c.Secrets {
			r.SecretID = ""
		}
	}
	// Swarm's defaults for what the spec leaves out (swarmkit's api/defaults), as it stores them.
	if c := spec.TaskTemplate.ContainerSpec; c != nil && c.StopGracePeriod == nil {
		d := 10 * time.Second
		c.StopGracePeriod = &d
	}
	if spec.TaskTemplate.RestartPolicy == nil {
		spec.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{}
	}
	if r := spec.TaskTemplate.RestartPolicy; r.Condition == "" {
		r.Condition = swarm.RestartPolicyConditionAny
	}
	if r := spec.TaskTemplate.RestartPolicy; r.Delay == nil {
		d := 5 * time.Second
		r.Delay = &d
	}
	spec.UpdateConfig = updateDefaults(spec.UpdateConfig)
	spec.RollbackConfig = updateDefaults(spec.RollbackConfig)
	if spec.Mode.Replicated != nil && spec.Mode.Replicated.Replicas == nil {
		one := uint64(1)
		spec.Mode.Replicated.Replicas = &one
	}
	if spec.Mode == (swarm.ServiceMode{}) {
		one := uint64(1)
		spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &one}
	}
	if spec.EndpointSpec == nil {
		spec.EndpointSpec = &swarm.EndpointSpec{}
	}
	if spec.EndpointSpec.Mode == "" {
		spec.EndpointSpec.Mode = swarm.ResolutionModeVIP
	}
	for i, p := range spec.EndpointSpec.Ports {
		if p.Protocol == "" {
			spec.EndpointSpec.Ports[i].Protocol = swarm.PortConfigProtocolTCP
		}
		if p.PublishMode == "" {
			spec.EndpointSpec.Ports[i].PublishMode = swarm.PortConfigPublishModeIngress
		}
	}
	return spec
}

// updateDefaults fills in Swarm's defaults for an update or rollback policy.
func updateDefaults(u *swarm.UpdateConfig) *swarm.UpdateConfig {
	if u == nil {
		u = &swarm.UpdateConfig{Parallelism: 1}
	}
	if u.FailureAction == "" {
		u.FailureAction = swarm.UpdateFailureActionPause
	}
	if u.Monitor == 0 {
		u.Monitor = 5 * time.Second
	}
	if u.Order == "" {
		u.Order = swarm.UpdateOrderStopFirst
	}
	return u
}

// resource adds a side's CPUs and memory in the units a stack file uses.
func resource(v map[string]string, side string, nanoCPUs, memory int64) {
	if nanoCPUs > 0 {
		v[side+" cpus"] = strconv.FormatFloat(float64(nanoCPUs)/1e9, 'f', -1, 64)
	}
	if memory > 0 {
		v[side+" memory"] = bytesText(memory)
	}
}

// bytesText writes a byte count in the largest unit that divides it, as a stack file would say it
// (512M, 2G).
func bytesText(n int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

func stripDigest(image string) string {
	if name, _, ok := strings.Cut(image, "@"); ok && name != "" {
		return name
	}
	return image
}

func quoteList(l []string) string {
	raw, _ := json.Marshal(l)
	return string(raw)
}

// durationFields are the fields, by their JSON name, that hold nanoseconds.
var durationFields = map[string]bool{
	"Interval": true, "Timeout": true, "StartPeriod": true, "StartInterval": true, "Delay": true,
	"Monitor": true, "StopGracePeriod": true, "Window": true,
}

// flatten adds every non-empty field of x (through its JSON form) under prefix, named in the stack
// file's snake case: "stop_grace_period", "restart_policy condition", "update_config order".
func flatten(v map[string]string, prefix string, x any) {
	raw, err := json.Marshal(x)
	if err != nil {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if dec.Decode(&tree) != nil {
		return
	}
	walk(v, strings.TrimSuffix(prefix, " "), "", tree)
}

func walk(v map[string]string, path, key string, x any) {
	join := func(name string) string {
		if path == "" {
			return name
		}
		return path + " " + name
	}
	switch t := x.(type) {
	case map[string]any:
		for k, val := range t {
			walk(v, join(snake(k)), k, val)
		}
	case []any:
		if scalars(t) {
			var parts []string
			for _, e := range t {
				parts = append(parts, scalar("", e))
			}
			if len(parts) > 0 {
				v[path] = strings.Join(parts, ", ")
			}
			return
		}
		for i, e := range t {
			walk(v, fmt.Sprintf("%s[%d]", path, i), key, e)
		}
	default:
		if s := scalar(key, t); s != "" && s != "0" && s != "false" {
			v[path] = s
		}
	}
}

func scalars(l []any) bool {
	for _, e := range l {
		switch e.(type) {
		case map[string]any, []any:
			return false
		}
	}
	return true
}

func scalar(key string, x any) string {
	switch t := x.(type) {
	case nil:
		return ""
	case string:
		return t
	case bool:
		return strconv.FormatBool(t)
	case json.Number:
		if durationFields[key] {
			if n, err := t.Int64(); err == nil && n != 0 {
				return time.Duration(n).String()
			}
		}
		return t.String()
	}
	return fmt.Sprint(x)
}

// snake turns a Go field name into the stack file's spelling: StopGracePeriod → stop_grace_period,
// NanoCPUs → nano_cpus.
func snake(s string) string {
	var b strings.Builder
	r := []rune(s)
	for i, c := range r {
		if unicode.IsUpper(c) {
			if i > 0 && (unicode.IsLower(r[i-1]) || (i+1 < len(r) && unicode.IsLower(r[i+1]) && unicode.IsUpper(r[i-1]))) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(c))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}
