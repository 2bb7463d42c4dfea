package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// documentedEventFields reads the table of docs/guide/json-events.md:
// for each kind, the fields it documents.
func documentedEventFields(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "guide", "json-events.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(b), "| kind | fields |\n| --- | --- |\n")
	if !ok {
		t.Fatal(`docs/guide/json-events.md has no "| kind | fields |" table`)
	}
	tick := regexp.MustCompile("`([a-z_0-9]+)`")
	doc := map[string][]string{}
	for line := range strings.Lines(table) {
		cells := strings.Split(strings.TrimSpace(line), "|")
		if len(cells) != 4 {
			break
		}
		kind := tick.FindStringSubmatch(cells[1])
		if kind == nil {
			t.Fatalf("row without a kind: %q", line)
		}
		for _, m := range tick.FindAllStringSubmatch(cells[2], -1) {
			doc[kind[1]] = append(doc[kind[1]], m[1])
		}
	}
	if len(doc) == 0 {
		t.Fatal("the kind/fields table is empty")
	}
	return doc
}

// jsonFields returns the JSON names of the fields of struct type t,
// embedded structs included.
func jsonFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case tag == "-":
		case f.Anonymous && tag == "":
			out = append(out, jsonFields(f.Type)...)
		case tag != "":
			out = append(out, tag)
		}
	}
	return out
}

// TestJSONSchemaIsDocumented checks that docs/guide/json-events.md documents exactly the
// fields --json can write: the run events from runEvent, the host events
// from jsonEvent. A field added to either without a line there
// fails here, and so does a documented field that no longer exists.
func TestJSONSchemaIsDocumented(t *testing.T) {
	doc := documentedEventFields(t)
	union := func(kinds ...string) []string {
		var out []string
		for _, k := range kinds {
			if doc[k] == nil {
				t.Errorf("docs/guide/json-events.md documents no fields for %s", k)
			}
			out = append(out, doc[k]...)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	sorted := func(s []string) []string { slices.Sort(s); return s }
	if got, want := union(kindRunStart, kindRunEnd), sorted(jsonFields(reflect.TypeFor[runEvent]())); !slices.Equal(got, want) {
		t.Errorf("documented run_start/run_end fields:\n%v\nthe code writes:\n%v", got, want)
	}
	if got, want := union("host_start", "op_start", "op_end", "print", "command", "output", "fact", "host_end"), sorted(jsonFields(reflect.TypeFor[jsonEvent]())); !slices.Equal(got, want) {
		t.Errorf("documented host event fields:\n%v\nthe code writes:\n%v", got, want)
	}
	if got, want := union(kindError), sorted(jsonFields(reflect.TypeFor[errorEvent]())); !slices.Equal(got, want) {
		t.Errorf("documented error event fields:\n%v\nthe code writes:\n%v", got, want)
	}
	if len(doc) != 11 {
		t.Errorf("docs/guide/json-events.md documents %d kinds, want 11: %v", len(doc), doc)
	}
}

// TestJSONEventsMatchTheGuide runs a script through the real binary's code
// with --json and checks that every field each event carries is one the
// docs/guide/json-events.md documents for its kind, and that the fields this issue added are
// there: schema and version in run_start, exit_code on shell's op_end.
func TestJSONEventsMatchTheGuide(t *testing.T) {
	doc := documentedEventFields(t)
	dir := t.TempDir()
	script := writeFile(t, dir, "deploy.star", `
shell("echo hi")
shell("exit 3", ignore_errors=True)
put(dest="`+dir+`/f", content="x\n")
print("done")
`)
	code, stdout, stderr := runCLI(t, "--json", "-v", "--diff", "@local", script)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var exitCodes []float64
	for line := range strings.Lines(stdout) {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		kind, _ := ev["kind"].(string)
		for k := range ev {
			if !slices.Contains(doc[kind], k) {
				t.Errorf("%s carries %q, which docs/guide/json-events.md does not list for it: %s", kind, k, line)
			}
		}
		switch {
		case kind == kindRunStart:
			if ev["schema"] != float64(jsonSchema) || ev["version"] == nil || ev["hosts"] != 1.0 {
				t.Errorf("run_start lacks schema, version or hosts: %s", line)
			}
		case kind == "op_end" && ev["op"] == "shell":
			c, ok := ev["exit_code"].(float64)
			if !ok {
				t.Errorf("shell op_end without exit_code: %s", line)
			}
			exitCodes = append(exitCodes, c)
		}
	}
	if !slices.Equal(exitCodes, []float64{0, 3}) {
		t.Errorf("exit codes of shell op_end events = %v, want [0 3]", exitCodes)
	}
}
