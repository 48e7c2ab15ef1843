package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// This file turns what the YAML library says about a bad fridaymorning.yaml into what a user can act on:
// key paths (haproxy.pasword) instead of Go type dumps, the line where a syntax error starts, and what
// to do about each.

// maxConfigSize is the largest fridaymorning.yaml read: a real one is a few kilobytes.
const maxConfigSize = 1 << 20

// secretKeys are keys people write where a secret would go, and where the secret goes instead.
var secretKeys = map[string][2]string{
	"haproxy.password":        {envDataplanePassword, "haproxy.password_file"},
	"influxdb.token":          {envInfluxToken, "influxdb.token_file"},
	"influxdb.password":       {envInfluxToken, "influxdb.token_file"},
	"prometheus.password":     {envPromPassword, "prometheus.password_file"},
	"prometheus.bearer_token": {envPromToken, "prometheus.bearer_token_file"},
	"prometheus.token":        {envPromToken, "prometheus.bearer_token_file"},
}

// decodeConfig decodes raw, the text of fridaymorning.yaml, into out strictly: one document, no key out
// wants, every value of the type its key takes. Its errors name the line and the key path, and say what
// to do.
func decodeConfig(raw []byte, out any) (err error) {
	if len(raw) > maxConfigSize {
		return fmt.Errorf("is too large to be fridaymorning.yaml (more than %d bytes): is it the right file?", maxConfigSize)
	}
	defer func() {
		// The YAML library is third-party code fed with anything: a panic in it is a bad file too.
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot be read as YAML (%v): check that it is fridaymorning.yaml", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return syntaxError(raw, err)
	}
	var second yaml.Node
	switch err := dec.Decode(&second); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return syntaxError(raw, err)
	case len(second.Content) > 0 && !emptyDocument(&second):
		return fmt.Errorf("line %d: a second YAML document starts after a --- line: fridaymorning.yaml is one document: remove the --- and merge the two", second.Content[0].Line)
	}
	w := &yamlWalk{lines: map[int]string{}}
	w.walk(&doc, reflect.TypeOf(out), "")
	if len(w.issues) > 0 {
		return w.err()
	}
	if err := doc.Decode(out); err != nil {
		return w.typeError(err)
	}
	return nil
}

// emptyDocument reports whether doc holds nothing (a --- at the end of a file).
func emptyDocument(doc *yaml.Node) bool {
	c := doc.Content
	return len(c) == 1 && c[0].Kind == yaml.ScalarNode && c[0].Tag == "!!null" && c[0].Value == ""
}

// yamlMessage splits the YAML library's "yaml: line N: message".
var yamlMessage = regexp.MustCompile(`^(?:yaml: )?(?:line (\d+): )?(.*)$`)

// syntaxError says where a syntax error is and what to do about it. The library reports some at the
// line before (an unclosed list) or where the damage shows (a quote never closed, lines further down),
// so the line is found again: the first after which the text fails the same way, or, if the text
// fails after every line before that up to some line, that line, where the broken part starts.
func syntaxError(raw []byte, err error) error {
	m := yamlMessage.FindStringSubmatch(strings.TrimSpace(err.Error()))
	line, _ := strconv.Atoi(m[1])
	msg := m[2]
	lines := strings.SplitAfter(string(raw), "\n")
	if len(raw) <= 64<<10 {
		fails := func(n int) (bool, string) {
			var node yaml.Node
			perr := yaml.Unmarshal([]byte(strings.Join(lines[:n], "")), &node)
			if perr == nil {
				return false, ""
			}
			return true, yamlMessage.FindStringSubmatch(strings.TrimSpace(perr.Error()))[2]
		}
		for n := 1; n <= len(lines); n++ {
			if bad, pmsg := fails(n); bad && pmsg == msg {
				for n > 1 {
					if bad, _ := fails(n - 1); !bad {
						break
					}
					n--
				}
				line = n
				break
			}
		}
	}
	text := ""
	if line >= 1 && line <= len(lines) {
		text = lines[line-1]
	}
	hint := syntaxHint(msg, text)
	where := ""
	if line > 0 {
		where = fmt.Sprintf("line %d: ", line)
	}
	return fmt.Errorf("is malformed: %s%s: %s (stacks/demo/fridaymorning.yaml is a complete example)", where, msg, hint)
}

// syntaxHint says what to do about a syntax error the library describes as msg, on a line that reads text.
func syntaxHint(msg, text string) string {
	switch {
	case strings.Contains(text, "\t") && (strings.Contains(msg, "cannot start any token") || strings.Contains(msg, "tab")):
		return "indent with spaces, not tabs"
	case strings.Contains(msg, "cannot start any token"):
		return "quote a value that starts with @, ` or %"
	case strings.Contains(msg, "expected ',' or ']'"):
		return "close the list with ], e.g. steps: [10, 25, 50]"
	case strings.Contains(msg, "expected ',' or '}'"):
		return "close the mapping with }"
	case strings.Contains(msg, "unexpected end of stream"):
		return "a quote or bracket opened on this line is never closed"
	case strings.Contains(msg, "could not find expected ':'"):
		return "write key: value, with a space after the colon"
	case strings.Contains(msg, "mapping values are not allowed"), strings.Contains(msg, "did not find expected key"),
		strings.Contains(msg, "block sequence entries are not allowed"), strings.Contains(msg, "did not find expected"):
		return "check this line's indent: the keys of one mapping line up, indented with spaces under their parent, and a value with \": \" in it is quoted"
	}
	return "fix the YAML"
}

// yamlWalk checks a YAML node tree against the Go type it decodes into, collecting what is wrong with
// its keys and noting which key path each line holds, for the decoder's errors.
type yamlWalk struct {
	lines  map[int]string
	issues []yamlIssue
}

type yamlIssue struct {
	line int
	msg  string
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (w *yamlWalk) note(line int, path string) {
	if _, ok := w.lines[line]; !ok && path != "" {
		w.lines[line] = path
	}
}

func (w *yamlWalk) walk(n *yaml.Node, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			w.walk(c, t, path)
		}
		return
	}
	if n.Kind == yaml.ScalarNode {
		w.note(n.Line, path)
	}
	if n.Kind == yaml.AliasNode || reflect.PointerTo(t).Implements(unmarshalerType) {
		return // the decoder follows aliases (with its limits) and runs the type's own checks
	}
	switch t.Kind() {
	case reflect.Struct:
		switch {
		case n.Kind == yaml.MappingNode:
			w.mapping(n, t, path)
		case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		default:
			w.issues = append(w.issues, yamlIssue{n.Line, fmt.Sprintf("%s: want key: value lines, indented under it, not %s", orTop(path), kindOf(n))})
		}
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for i, c := range n.Content {
				w.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				w.walk(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))
			}
		}
	}
}

// mapping checks the keys of a mapping that decodes into struct t.
func (w *yamlWalk) mapping(n *yaml.Node, t reflect.Type, path string) {
	fields := map[string]reflect.Type{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		fields[name] = f.Type
		names = append(names, name)
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "<<" && k.Tag == "!!merge" {
			continue
		}
		p := join(path, k.Value)
		if first, ok := seen[k.Value]; ok {
			w.issues = append(w.issues, yamlIssue{k.Line, fmt.Sprintf("%s is set twice (first at line %d): keep one", p, first)})
			continue
		}
		seen[k.Value] = k.Line
		ft, ok := fields[k.Value]
		if !ok {
			w.issues = append(w.issues, yamlIssue{k.Line, unknownKey(p, k.Value, path, names)})
			continue
		}
		w.note(k.Line, p)
		w.walk(v, ft, p)
	}
}

// unknownKey says what to do about key (at path p), which the mapping at parent does not take.
func unknownKey(p, key, parent string, known []string) string {
	if s, ok := secretKeys[p]; ok {
		return fmt.Sprintf("%s: secrets never go in fridaymorning.yaml: set %s, or %s to a file that holds it", p, s[0], s[1])
	}
	var close []string
	for _, k := range known {
		word, _, _ := strings.Cut(k, "_")
		if editDistance(key, k) <= 2 || len(key) >= 3 && editDistance(key, word) <= 1 {
			close = append(close, join(parent, k))
		}
	}
	if len(close) > 0 {
		return fmt.Sprintf("unknown key %s: did you mean %s?", p, strings.Join(close, " or "))
	}
	sorted := append([]string(nil), known...)
	sort.Strings(sorted)
	return fmt.Sprintf("unknown key %s: %s takes %s", p, orTop(parent), strings.Join(sorted, ", "))
}

// orTop names a key path, or the file's top level.
func orTop(path string) string {
	if path == "" {
		return "the top level"
	}
	return path
}

func kindOf(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return fmt.Sprintf("the value %q", n.Value)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// err joins the issues, in the file's order.
func (w *yamlWalk) err() error {
	sort.SliceStable(w.issues, func(i, j int) bool { return w.issues[i].line < w.issues[j].line })
	msgs := make([]string, 0, len(w.issues))
	for i, is := range w.issues {
		if i == 10 {
			msgs = append(msgs, fmt.Sprintf("and %d more", len(w.issues)-i))
			break
		}
		msgs = append(msgs, fmt.Sprintf("line %d: %s", is.line, is.msg))
	}
	return errors.New(strings.Join(msgs, "; "))
}

// unmarshalMessage is the decoder's "cannot unmarshal !!str `many` into uint64".
var unmarshalMessage = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `(.*)`)? into (.+)$")

// typeError rewrites the decoder's errors with the key path of their line and, for values of the wrong
// type, what the key wants in words rather than as a Go type.
func (w *yamlWalk) typeError(err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		parts := yamlMessage.FindStringSubmatch(m)
		line, _ := strconv.Atoi(parts[1])
		msg := parts[2]
		path := w.lines[line]
		if u := unmarshalMessage.FindStringSubmatch(msg); u != nil {
			got := "a " + u[1]
			switch {
			case u[1] == "seq":
				got = "a list"
			case u[1] == "map":
				got = "a mapping"
			case u[2] != "":
				got = "`" + u[2] + "`"
			}
			msg = fmt.Sprintf("want %s, not %s", wantOf(u[3]), got)
		}
		if path != "" {
			msg = path + ": " + msg
		}
		if line > 0 {
			msg = fmt.Sprintf("line %d: %s", line, msg)
		}
		out = append(out, msg)
	}
	return errors.New(strings.Join(out, "; "))
}

// wantOf says in words what a value of Go type typ (as the decoder names it) is.
func wantOf(typ string) string {
	typ = strings.TrimLeft(typ, "*")
	switch {
	case strings.HasPrefix(typ, "uint"), strings.HasPrefix(typ, "int"):
		return "a whole number"
	case strings.HasPrefix(typ, "float"):
		return "a number"
	case typ == "bool":
		return "true or false"
	case typ == "string":
		return "a single value (quote it if it holds \": \" or \" #\")"
	case strings.HasPrefix(typ, "[]"):
		return "a list, e.g. [a, b], or lines starting with -"
	}
	return "key: value lines, indented under it"
}
