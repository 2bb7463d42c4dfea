package runtime

import (
	"context"
	"strings"
	"testing"
)

type mapRemote map[string]string

func (m mapRemote) Resolve(from, name string) (string, error) { return name, nil }
func (m mapRemote) Read(_ context.Context, key string) ([]byte, error) {
	return []byte(m[key]), nil
}

// The parent reads only keys of its RemoteAllow, whatever the child asks:
// the child runs the untrusted script.
func TestServeRemoteRefusesWhatIsNotAllowed(t *testing.T) {
	const ok = "git+https://git.example.com/ops/web@v1//a.star"
	r := New(Options{Remote: mapRemote{ok: "x = 1", "git+https://evil.example.com/x@v1//a.star": "secret", "/etc/passwd": "root"},
		RemoteAllow: []string{"git+https://git.example.com/ops/"}})
	if rep := r.serveRemote(t.Context(), remoteCall{ID: 7, Op: "read", Key: ok}); rep.ID != 7 || rep.Err != "" || string(rep.Data) != "x = 1" {
		t.Errorf("an allowed read: %+v", rep)
	}
	for _, key := range []string{"git+https://evil.example.com/x@v1//a.star", "/etc/passwd"} {
		if rep := r.serveRemote(t.Context(), remoteCall{ID: 1, Op: "read", Key: key}); rep.Data != nil || !strings.Contains(rep.Err, "not an allowed source") {
			t.Errorf("read %s: %+v", key, rep)
		}
	}
	if rep := New(Options{}).serveRemote(t.Context(), remoteCall{Op: "read", Key: ok}); rep.Data != nil || !strings.Contains(rep.Err, "off") {
		t.Errorf("without Remote: %+v", rep)
	}
}
