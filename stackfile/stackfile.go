// Package stackfile loads a service's spec from a stack file exactly as `docker stack deploy -c FILE
// STACK` would apply it, and says how it differs from the spec a service runs now: the lines a reviewer
// reads before a release, and the changes a canary cannot carry (refusals, each with what to do).
//
// Loading and conversion are docker/cli's own (cli/compose/loader with its schema and interpolation,
// cli/compose/convert), so the spec is the one `docker stack deploy` sends, byte for byte. The package
// does no I/O besides reading the stack file and the files it names (configs, secrets, env_file):
// configs and secrets are referenced by name, and the swarm adapter fills in their IDs once it has
// created them.
package stackfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/cli/cli/compose/convert"
	"github.com/docker/cli/cli/compose/loader"
	"github.com/docker/cli/cli/compose/schema"
	composetypes "github.com/docker/cli/cli/compose/types"
	"github.com/docker/docker/api"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
)

// Labels docker stack deploy puts on what it creates.
const (
	// LabelNamespace names the stack a service, config, secret or network belongs to.
	LabelNamespace = convert.LabelNamespace
	// LabelImage is the image the stack file names for a service (before any digest pinning).
	LabelImage = convert.LabelImage
)

// Stack is a stack file loaded and converted for one stack name, as docker stack deploy would deploy it.
type Stack struct {
	// Name is the stack's name (its namespace): services are called Name_service.
	Name string
	// Services are the services' specs by their name in the stack file. Config and secret references
	// carry names only: their IDs are known once the configs and secrets exist in Swarm.
	Services map[string]swarm.ServiceSpec
	// Configs and Secrets are those the stack file defines (external ones excluded), by Swarm name,
	// with the content docker stack deploy would create them with.
	Configs map[string]swarm.ConfigSpec
	Secrets map[string]swarm.SecretSpec
}

// Target is what releasing one service of a stack puts on Swarm: the service's new spec and the
// configs and secrets it references that the stack file defines.
type Target struct {
	// Stack is the stack's name.
	Stack string
	// Spec is the service's spec as docker stack deploy would send it.
	Spec swarm.ServiceSpec
	// Configs and Secrets are the stack-defined ones Spec references, sorted by name; external ones
	// must exist already.
	Configs []swarm.ConfigSpec
	Secrets []swarm.SecretSpec
}

// Load reads the stack file at path and converts it for the stack called stack, with ${VAR}
// interpolation from environ ("KEY=VALUE" entries, as os.Environ returns them).
//
// Like docker stack deploy, it interpolates from the environment only: a .env file next to the stack
// file is not read (docker compose reads it; docker stack deploy does not), so the spec released is the
// one a later `docker stack deploy` of the same file applies. env_file entries of a service are read,
// relative to the stack file's directory, as docker stack deploy reads them.
func Load(path, stack string, environ []string) (*Stack, error) {
	if strings.TrimSpace(stack) == "" || strings.TrimSpace(stack) != stack {
		return nil, fmt.Errorf("stackfile: stack name %q: give the name the stack was deployed with (docker stack ls), e.g. --stack shop", stack)
	}
	details, err := configDetails(path, environ)
	if err != nil {
		return nil, err
	}
	cfg, err := loader.Load(details)
	if err != nil {
		var fpe *loader.ForbiddenPropertiesError
		if errors.As(err, &fpe) {
			var props []string
			for name, why := range fpe.Properties {
				props = append(props, name+": "+why)
			}
			sort.Strings(props)
			return nil, fmt.Errorf("stackfile: %s has options docker stack deploy does not support (%s): remove them", path, strings.Join(props, "; "))
		}
		return nil, fmt.Errorf("stackfile: %s: %w: fix the stack file (docker stack deploy would refuse it too)", path, err)
	}
	for _, svc := range cfg.Services {
		if svc.Image == "" {
			return nil, fmt.Errorf("stackfile: %s: service %s has no image: give it one (image: REPOSITORY:TAG)", path, svc.Name)
		}
		if _, err := reference.ParseAnyReference(svc.Image); err != nil {
			return nil, fmt.Errorf("stackfile: %s: service %s: image %q: %w", path, svc.Name, svc.Image, err)
		}
	}
	ns := convert.NewNamespace(stack)
	services, err := convert.Services(context.Background(), ns, cfg, names{})
	if err != nil {
		return nil, fmt.Errorf("stackfile: %s: %w", path, err)
	}
	st := &Stack{Name: stack, Services: services, Configs: map[string]swarm.ConfigSpec{}, Secrets: map[string]swarm.SecretSpec{}}
	configs, err := convert.Configs(ns, cfg.Configs)
	if err != nil {
		return nil, fmt.Errorf("stackfile: %s: reading a config's file: %w", path, err)
	}
	for _, c := range configs {
		st.Configs[c.Name] = c
	}
	secrets, err := convert.Secrets(ns, cfg.Secrets)
	if err != nil {
		return nil, fmt.Errorf("stackfile: %s: reading a secret's file: %w", path, err)
	}
	for _, s := range secrets {
		st.Secrets[s.Name] = s
	}
	return st, nil
}

// configDetails reads the stack file as docker stack deploy's loader does (cli/command/stack/loader,
// which cannot be imported without the whole docker CLI): the file's directory is the working
// directory for relative paths, the version comes from the file, the environment from environ.
func configDetails(path string, environ []string) (composetypes.ConfigDetails, error) {
	var d composetypes.ConfigDetails
	abs, err := filepath.Abs(path)
	if err != nil {
		return d, fmt.Errorf("stackfile: %s: %w", path, err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return d, fmt.Errorf("stackfile: reading the stack file: %w: check --stack-file (or stack_file in fridaymorning.yaml)", err)
	}
	dict, err := loader.ParseYAML(raw)
	if err != nil {
		return d, fmt.Errorf("stackfile: %s is not a valid stack file: %w", path, err)
	}
	d.WorkingDir = filepath.Dir(abs)
	d.ConfigFiles = []composetypes.ConfigFile{{Filename: path, Config: dict}}
	d.Version = schema.Version(dict)
	d.Environment = make(map[string]string, len(environ))
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue // docker's loader refuses these; the process environment never has them
		}
		d.Environment[k] = v
	}
	return d, nil
}

// Target returns what releasing service puts on Swarm. service is the name in the stack file ("app")
// or the Swarm service's name ("shop_app").
func (s *Stack) Target(service string) (*Target, error) {
	name := strings.TrimPrefix(service, s.Name+"_")
	spec, ok := s.Services[name]
	if !ok {
		var known []string
		for n := range s.Services {
			known = append(known, n)
		}
		sort.Strings(known)
		return nil, fmt.Errorf("stackfile: the stack file has no service %q (it has %s): check --service, or --stack if the service is %s_%s",
			name, strings.Join(known, ", "), s.Name, name)
	}
	t := &Target{Stack: s.Name, Spec: spec}
	for _, ref := range spec.TaskTemplate.ContainerSpec.Configs {
		if c, ok := s.Configs[ref.ConfigName]; ok && !containsConfig(t.Configs, ref.ConfigName) {
			t.Configs = append(t.Configs, c)
		}
	}
	for _, ref := range spec.TaskTemplate.ContainerSpec.Secrets {
		if c, ok := s.Secrets[ref.SecretName]; ok {
			t.Secrets = append(t.Secrets, c)
		}
	}
	sort.Slice(t.Configs, func(i, j int) bool { return t.Configs[i].Name < t.Configs[j].Name })
	sort.Slice(t.Secrets, func(i, j int) bool { return t.Secrets[i].Name < t.Secrets[j].Name })
	return t, nil
}

func containsConfig(cs []swarm.ConfigSpec, name string) bool {
	for _, c := range cs {
		if c.Name == name {
			return true
		}
	}
	return false
}

// names stands in for the Docker API client that docker/cli's conversion asks for the IDs of the
// configs and secrets a service references: it finds every name, with no ID. Nothing else of the
// client is used by the conversion (a call to anything else would panic on the nil interface, and the
// tests load every kind of reference).
type names struct{ client.APIClient }

// ClientVersion is the API version the conversion targets: the current one (networks go in
// TaskTemplate.Networks, as every engine since API 1.29 wants them).
func (names) ClientVersion() string { return api.DefaultVersion }

// SecretList answers every secret asked for by name, with no ID.
func (names) SecretList(_ context.Context, opts swarm.SecretListOptions) ([]swarm.Secret, error) {
	var out []swarm.Secret
	for _, n := range opts.Filters.Get("name") {
		out = append(out, swarm.Secret{Spec: swarm.SecretSpec{Annotations: swarm.Annotations{Name: n}}})
	}
	return out, nil
}

// ConfigList answers every config asked for by name, with no ID.
func (names) ConfigList(_ context.Context, opts swarm.ConfigListOptions) ([]swarm.Config, error) {
	var out []swarm.Config
	for _, n := range opts.Filters.Get("name") {
		out = append(out, swarm.Config{Spec: swarm.ConfigSpec{Annotations: swarm.Annotations{Name: n}}})
	}
	return out, nil
}
