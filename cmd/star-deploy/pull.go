package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/star-deploy/star-deploy/bundle"
	"github.com/star-deploy/star-deploy/bundle/signature"
	"github.com/star-deploy/star-deploy/connectors"
	"github.com/star-deploy/star-deploy/modules"
	sdrt "github.com/star-deploy/star-deploy/runtime"
)

// pullCmd fetches a bundle, verifies it and runs it on this machine.
type pullCmd struct {
	Source           string `arg:"" help:"The bundle: a file, an https:// or http:// URL, or git+URL@REF//PATH (a file in a git repository at REF, e.g. git+https://git.example.com/ops.git@v1.4//site.bundle). Its signature is SOURCE.sig beside it."`
	AllowedSigners   string `placeholder:"FILE" type:"path" help:"Trust the keys of FILE, an OpenSSH allowed_signers file (principals [namespaces=\"star-deploy-bundle\"] KEYTYPE KEY per line). Required unless --insecure-unsigned."`
	InsecureUnsigned bool   `help:"Run the bundle without verifying a signature (a signature that is there is still checked when --allowed-signers is given)."`
	Host             string `placeholder:"NAME" help:"Run with the bundle's inventory data of host NAME (default: this machine's hostname, or its short name)."`
	Wait             bool   `help:"When another pull is running (it holds the lock), wait for it to end, then run; by default this run is skipped and exits 0."`
	OnlyIfChanged    bool   `help:"Do not run when the bundle is the one the last successful run ran (same SHA-256); by default every pull runs, which corrects drift."`
	StateDir         string `placeholder:"DIR" type:"path" help:"Keep the lock and the last-run report in DIR (default: $STATE_DIRECTORY under systemd, /var/lib/star-deploy as root, else ~/.local/state/star-deploy)."`
	CacheDir         string `placeholder:"DIR" type:"path" help:"Cache downloads (with their ETags), git fetches and compiled stdlib modules in DIR (default: $CACHE_DIRECTORY under systemd, /var/cache/star-deploy as root, else ~/.cache/star-deploy)."`
	Report           string `placeholder:"FILE" type:"path" help:"Write the last-run report (JSON: time, source, bundle SHA-256, signer, exit code, counts) to FILE (default: STATE_DIR/last-run.json)."`
	JSONFile         string `name:"json-file" placeholder:"FILE" type:"path" help:"Write the run's JSON events (as --json does) to FILE instead of printing progress."`
}

const pullDetail = `pull takes a lock (STATE_DIR/pull.lock) so that runs from cron or a
systemd timer never overlap, fetches the bundle (an unchanged URL is not
downloaded again: If-None-Match with the ETag of the last download),
verifies its signature against --allowed-signers, runs it on @local with
the run flags given (--dry, --diff, --data, --sudo, -v, -q, --json), writes
the last-run report, and exits with the usual codes. An unsigned bundle, a
signature by a key not in the allowed signers, and a bundle altered after
signing are refused with exit 2, before anything runs.

  star-deploy pull --allowed-signers /etc/star-deploy/allowed_signers \
      https://deploy.example.com/site.bundle`

// pullReport is the last-run report.
type pullReport struct {
	Time       time.Time      `json:"time"`
	Duration   float64        `json:"duration_s"`
	Source     string         `json:"source"`
	Bundle     string         `json:"bundle_sha256,omitempty"`
	Commit     string         `json:"git_commit,omitempty"`
	Fetched    bool           `json:"downloaded"` // false when the cached copy was used (304)
	Signer     *reportSigner  `json:"signer,omitempty"`
	Unsigned   bool           `json:"unsigned,omitempty"`
	Dry        bool           `json:"dry,omitempty"`
	ExitCode   int            `json:"exit_code"`
	Status     string         `json:"status,omitempty"`
	Counts     sdrt.Counts    `json:"counts"`
	Error      string         `json:"error,omitempty"`
	StarDeploy string         `json:"star_deploy"`
	Contents   map[string]int `json:"contents,omitempty"` // how many scripts, files and stdlib modules the bundle holds
}

type reportSigner struct {
	Principals  []string `json:"principals"`
	Fingerprint string   `json:"fingerprint"`
}

// run does the pull; the report is that of the bundle's run.
func (p *pullCmd) run(ctx context.Context, f *flags, reg *connectors.Registry, prompt func(string) (string, error), stdout, stderr io.Writer) (*sdrt.Report, error) {
	var signers []signature.Signer
	if p.AllowedSigners != "" {
		b, err := os.ReadFile(p.AllowedSigners)
		if err != nil {
			return nil, usagef("pull: --allowed-signers: %w", err)
		}
		if signers, err = signature.ParseAllowedSigners(p.AllowedSigners, bytes.NewReader(b)); err != nil {
			return nil, usagef("pull: %w", err)
		}
		if len(signers) == 0 {
			return nil, usagef("pull: %s lists no keys", p.AllowedSigners)
		}
	} else if !p.InsecureUnsigned {
		return nil, usagef("pull: give --allowed-signers FILE (an OpenSSH allowed_signers file of the keys that sign bundles) to verify the bundle, or --insecure-unsigned to run it unverified")
	}
	stateDir, cacheDir := p.StateDir, p.CacheDir
	if stateDir == "" {
		stateDir = defaultDir("STATE_DIRECTORY", "/var/lib/star-deploy", stateHome)
	}
	if cacheDir == "" {
		cacheDir = defaultDir("CACHE_DIRECTORY", "/var/cache/star-deploy", os.UserCacheDir)
	}
	for _, d := range []string{stateDir, cacheDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, usagef("pull: %w", err)
		}
	}
	lockPath := filepath.Join(stateDir, "pull.lock")
	unlock, err := acquireLock(ctx, lockPath, p.Wait, func() {
		fmt.Fprintf(stderr, "star-deploy: pull: another pull holds %s; waiting for it to end\n", lockPath)
	})
	if errors.Is(err, errLocked) {
		fmt.Fprintf(stderr, "star-deploy: pull: another pull is running (it holds %s); skipped this run (--wait waits for it)\n", lockPath)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	defer unlock()

	reportPath := p.Report
	if reportPath == "" {
		reportPath = filepath.Join(stateDir, "last-run.json")
	}
	rep := &pullReport{Time: time.Now().UTC().Truncate(time.Millisecond), Source: p.Source, Dry: f.Dry, StarDeploy: versionString()}
	start := time.Now()
	result, runErr, skipped := p.pull(ctx, f, reg, prompt, signers, cacheDir, reportPath, rep, stdout, stderr)
	if skipped {
		return nil, nil
	}
	rep.Duration = time.Since(start).Seconds()
	rep.ExitCode = exitCode(ctx, result, runErr)
	if runErr != nil {
		rep.Error = runErr.Error()
	}
	if result != nil && len(result.Hosts) == 1 {
		h := result.Hosts[0]
		rep.Status, rep.Counts = string(h.Status), h.Counts
	}
	if err := writeReport(reportPath, rep); err != nil {
		fmt.Fprintf(stderr, "star-deploy: pull: writing the report: %v\n", err)
	}
	return result, runErr
}

// pull fetches, verifies and runs; skipped means --only-if-changed found
// nothing new.
func (p *pullCmd) pull(ctx context.Context, f *flags, reg *connectors.Registry, prompt func(string) (string, error), signers []signature.Signer, cacheDir, reportPath string, rep *pullReport, stdout, stderr io.Writer) (*sdrt.Report, error, bool) {
	got, err := fetchBundle(ctx, p.Source, cacheDir, f.gitSSH())
	if err != nil {
		return nil, err, false
	}
	rep.Fetched, rep.Commit = got.downloaded, got.commit
	rep.Bundle = bundle.Hash(got.data)
	switch {
	case got.sig != nil && signers != nil:
		v, err := signature.Verify(got.data, got.sig, signers, time.Now())
		if err != nil {
			what := "add its key to " + p.AllowedSigners + " if you trust it"
			if !errors.Is(err, signature.ErrUnknownSigner) {
				what = "fetch or make the bundle again"
			}
			return nil, usagef("pull: refusing %s: %v; %s", p.Source, err, what), false
		}
		rep.Signer = &reportSigner{Principals: v.Principals, Fingerprint: v.Fingerprint}
	case !p.InsecureUnsigned:
		return nil, usagef("pull: refusing %s: it is not signed (no %s): sign it with star-deploy bundle --sign KEY, or pass --insecure-unsigned to run it unverified", p.Source, got.sigName), false
	default:
		rep.Unsigned = true
		fmt.Fprintf(stderr, "star-deploy: pull: running %s unverified (--insecure-unsigned)\n", p.Source)
	}
	b, err := bundle.Read(p.Source, got.data)
	if err != nil {
		return nil, &usageError{err}, false
	}
	rep.Contents = map[string]int{"scripts": len(b.Manifest.Scripts), "files": len(b.Manifest.Files), "stdlib": len(b.Manifest.Stdlib)}
	if p.OnlyIfChanged {
		if last, err := readReport(reportPath); err == nil && last.Bundle == b.Hash && last.ExitCode == exitOK && !last.Dry {
			fmt.Fprintf(stderr, "star-deploy: pull: the bundle (sha256 %s) is the one the last successful run ran at %s; not run (--only-if-changed)\n", b.Hash, last.Time.Format(time.RFC3339))
			return nil, nil, true
		}
	}
	host, err := bundleHost(b, p.Host)
	if err != nil {
		return nil, err, false
	}
	out := stdout
	if p.JSONFile != "" {
		jf, err := os.Create(p.JSONFile)
		if err != nil {
			return nil, usagef("pull: --json-file: %w", err), false
		}
		defer jf.Close()
		f.JSON, out = true, jf
	}
	r := &runCmd{Inventory: "@local", Args: b.Manifest.Scripts, bundle: &bundleRun{b: b, host: host, compileCache: filepath.Join(cacheDir, "compiled")}}
	res, err := r.run(ctx, f, reg, prompt, out, stderr)
	return res, err, false
}

// defaultDir is $env (systemd's StateDirectory= and CacheDirectory= set
// them), root's system directory, or the user's own.
func defaultDir(env, system string, user func() (string, error)) string {
	if d := os.Getenv(env); d != "" {
		d, _, _ = strings.Cut(d, ":")
		return d
	}
	if os.Geteuid() == 0 {
		return system
	}
	if d, err := user(); err == nil {
		return filepath.Join(d, "star-deploy")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("star-deploy-%d", os.Getuid()))
}

// stateHome is $XDG_STATE_HOME, or ~/.local/state.
func stateHome() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".local", "state"), nil
}

func writeReport(p string, rep *pullReport) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return writeAtomic(p, append(b, '\n'))
}

func readReport(p string) (*pullReport, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var rep pullReport
	return &rep, json.Unmarshal(b, &rep)
}

// fetched is a bundle and its signature as fetched.
type fetched struct {
	data       []byte
	sig        []byte // nil when there is none
	sigName    string // where the signature was looked for
	downloaded bool   // false when a cached copy served (HTTP 304)
	commit     string // the git commit, for git sources
}

// maxDownload bounds what a fetch reads.
const maxDownload = bundle.MaxSize + 1<<20

// fetchBundle fetches source and source.sig.
func fetchBundle(ctx context.Context, source, cacheDir string, ssh modules.SSHRunner) (*fetched, error) {
	switch {
	case strings.HasPrefix(source, "git+"):
		return fetchGit(ctx, source, cacheDir, ssh)
	case strings.HasPrefix(source, "https://") || strings.HasPrefix(source, "http://"):
		client := &http.Client{Timeout: 10 * time.Minute}
		creds := httpCreds{netrc: modules.Netrc(""), helper: modules.GitCredentials()}
		data, downloaded, err := httpGet(ctx, client, creds, source, cacheDir)
		if err != nil {
			return nil, err
		}
		sig, _, err := httpGet(ctx, client, creds, source+".sig", cacheDir)
		if errors.Is(err, fs.ErrNotExist) {
			sig, err = nil, nil
		}
		if err != nil {
			return nil, err
		}
		return &fetched{data: data, sig: sig, sigName: source + ".sig", downloaded: downloaded}, nil
	case strings.Contains(source, "://"):
		return nil, usagef("pull: %s: unknown scheme; SOURCE is a file, an https:// or http:// URL, or git+URL@REF//PATH", source)
	}
	data, err := os.ReadFile(source)
	if err != nil {
		return nil, usagef("pull: %w", err)
	}
	sig, err := os.ReadFile(source + ".sig")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, usagef("pull: %w", err)
	}
	return &fetched{data: data, sig: sig, sigName: source + ".sig", downloaded: true}, nil
}

// httpCreds are the credentials pull sends an https:// source: those of
// netrc (~/.netrc) for its host, else, once the server asked for some,
// those of helper (git's credential helpers), as git does.
type httpCreds struct {
	netrc  modules.Credentials
	helper modules.Helper
}

// httpGet fetches url, sending the ETag of the cached copy in
// If-None-Match, and basic authentication with creds, as curl and git do;
// a 304 serves the cached copy. A 404 wraps fs.ErrNotExist.
func httpGet(ctx context.Context, client *http.Client, creds httpCreds, url, cacheDir string) ([]byte, bool, error) {
	sum := sha256.Sum256([]byte(url))
	dir := filepath.Join(cacheDir, "http", hex.EncodeToString(sum[:16]))
	bodyPath, etagPath := filepath.Join(dir, "body"), filepath.Join(dir, "etag")
	cached, cerr := os.ReadFile(bodyPath)
	etag, eerr := os.ReadFile(etagPath)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, false, usagef("pull: %w", err)
	}
	host := req.URL.Hostname()
	send := func(user, password string, auth bool) (*http.Response, error) {
		req := req.Clone(ctx)
		if auth {
			req.SetBasicAuth(user, password)
		}
		if eerr == nil && cerr == nil {
			req.Header.Set("If-None-Match", string(etag))
		}
		return client.Do(req)
	}
	user, password, netrc := creds.netrc(host)
	resp, err := send(user, password, netrc)
	helped := false
	if err == nil && resp.StatusCode == http.StatusUnauthorized && !netrc && creds.helper != nil {
		first := resp
		helped, err = modules.AskHelper(ctx, creds.helper, url, func(user, password string) (bool, error) {
			first.Body.Close()
			var err error
			if resp, err = send(user, password, true); err != nil {
				return false, err
			}
			return resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden, nil
		})
	}
	if err != nil {
		return nil, false, fmt.Errorf("pull: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		if cerr != nil {
			return nil, false, fmt.Errorf("pull: GET %s: 304 Not Modified, but the cached copy is gone: %w", url, cerr)
		}
		return cached, false, nil
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, false, fmt.Errorf("pull: GET %s: %s: %w", url, resp.Status, fs.ErrNotExist)
	case http.StatusUnauthorized:
		switch {
		case helped:
			return nil, false, fmt.Errorf("pull: GET %s: %s: the server refused the credentials git's credential helper gave for %s", url, resp.Status, host)
		case netrc:
			return nil, false, fmt.Errorf("pull: GET %s: %s: the server refused the credentials of ~/.netrc for %s", url, resp.Status, host)
		}
		return nil, false, fmt.Errorf("pull: GET %s: %s: give credentials for %s in %s", url, resp.Status, host, modules.NetrcHelp())
	default:
		return nil, false, fmt.Errorf("pull: GET %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDownload+1))
	if err != nil {
		return nil, false, fmt.Errorf("pull: GET %s: %w", url, err)
	}
	if len(body) > maxDownload {
		return nil, false, fmt.Errorf("pull: GET %s: larger than %d MiB", url, maxDownload>>20)
	}
	if err := os.MkdirAll(dir, 0o700); err == nil {
		os.Remove(etagPath) // never an ETag beside another body
		if writeAtomic(bodyPath, body) == nil {
			if etag := resp.Header.Get("ETag"); etag != "" {
				writeAtomic(etagPath, []byte(etag))
			}
		}
	}
	return body, true, nil
}

// parseGitSource splits git+URL@REF//PATH. REF is optional (the remote's
// default branch); PATH is the bundle's path in the repository.
func parseGitSource(source string) (url, ref, path string, err error) {
	rest := strings.TrimPrefix(source, "git+")
	scheme := strings.Index(rest, "://")
	if scheme < 0 {
		return "", "", "", usagef("pull: %s: want git+URL@REF//PATH, e.g. git+https://git.example.com/ops.git@main//site.bundle", source)
	}
	i := strings.Index(rest[scheme+3:], "//")
	if i < 0 {
		return "", "", "", usagef("pull: %s: no //PATH: name the bundle's path in the repository (git+URL@REF//site.bundle)", source)
	}
	url, path = rest[:scheme+3+i], rest[scheme+3+i+2:]
	// An @ in the URL's path starts the ref (which may hold slashes:
	// release/2); one before the path is user information (git@host).
	if slash := strings.Index(url[scheme+3:], "/"); slash >= 0 {
		if at := strings.LastIndex(url, "@"); at > scheme+3+slash {
			url, ref = url[:at], url[at+1:]
		}
	}
	if path == "" || url == "" {
		return "", "", "", usagef("pull: %s: want git+URL@REF//PATH", source)
	}
	return url, ref, path, nil
}

// fetchGit fetches REF of the repository into the cache with the remote
// modules' fetcher (go-git: no git command needed; git+ssh through the SSH
// connector, as remote loads), then reads PATH and PATH.sig of that commit.
func fetchGit(ctx context.Context, source, cacheDir string, ssh modules.SSHRunner) (*fetched, error) {
	url, ref, path, err := parseGitSource(source)
	if err != nil {
		return nil, err
	}
	res, err := modules.New(gitAccess(modules.Options{CacheDir: cacheDir}, ssh))
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	commit, files, err := res.FetchFiles(ctx, url, ref, maxDownload, path, path+".sig")
	if err != nil {
		return nil, fmt.Errorf("pull: %s: %w", source, err)
	}
	if files[0] == nil {
		at := ref
		if at == "" {
			at = "HEAD"
		}
		return nil, usagef("pull: %s: no file %s at %s of %s", source, path, at, url)
	}
	return &fetched{data: files[0], sig: files[1], sigName: path + ".sig in the repository", downloaded: true, commit: commit}, nil
}
