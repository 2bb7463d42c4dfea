package docker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/client"

	"github.com/star-deploy/star-deploy/connectors"
)

// engineEnv is what decides how the Engine is reached: the host's data
// and the environment (DOCKER_HOST, DOCKER_CERT_PATH, DOCKER_TLS_VERIFY).
type engineEnv struct {
	dataHost  string // data docker_host; wins over DOCKER_HOST
	insecure  bool   // data docker_insecure
	envHost   string // DOCKER_HOST
	certPath  string // DOCKER_CERT_PATH
	tlsVerify string // DOCKER_TLS_VERIFY: any non-empty value turns verification on
	home      string // the user's home, for the default ~/.docker certificates
}

// enginePlan is how to reach the Engine, as planEngine decides.
type enginePlan struct {
	host    string // Engine address; "" for the client's default, the local socket
	tls     bool   // speak TLS
	certDir string // directory of ca.pem, cert.pem and key.pem; "" for the system roots and no client certificate
	verify  bool   // verify the Engine's certificate (against ca.pem when certDir is set)
	warning string // to tell the user before connecting; "" when there is nothing to say
}

// planEngine decides how to reach the Engine: a Unix socket as it is;
// tcp:// with TLS when DOCKER_CERT_PATH or DOCKER_TLS_VERIFY is set (the
// Engine's certificate is always verified, unless docker_insecure=true and
// DOCKER_TLS_VERIFY is unset); tcp:// without TLS only to a loopback
// address (with a warning) or with docker_insecure=true. It does no I/O.
func planEngine(e engineEnv) (enginePlan, error) {
	host, source := e.dataHost, "docker_host"
	if host == "" {
		host, source = e.envHost, "DOCKER_HOST"
	}
	if host == "" {
		return enginePlan{}, nil
	}
	scheme, addr, ok := strings.Cut(host, "://")
	if !ok || addr == "" {
		return enginePlan{}, fmt.Errorf("%s=%s: want an address such as unix:///var/run/docker.sock or tcp://HOST:2376", source, host)
	}
	p := enginePlan{host: host}
	if scheme != "tcp" && scheme != "http" && scheme != "https" {
		return p, nil // unix://, npipe://: local; others fail in the client
	}
	p.certDir = e.certPath
	if p.certDir == "" && e.tlsVerify != "" && e.home != "" {
		p.certDir = filepath.Join(e.home, ".docker") // as the docker CLI does
	}
	if p.certDir != "" || e.tlsVerify != "" || scheme == "https" {
		p.tls, p.verify = true, e.tlsVerify != "" || !e.insecure
		if !p.verify {
			p.warning = fmt.Sprintf("WARNING: %s=%s: docker_insecure=true and DOCKER_TLS_VERIFY is unset, so the engine's TLS certificate is NOT verified; anyone on the network path can impersonate the engine", source, host)
		}
		return p, nil
	}
	if loopback(addr) {
		p.warning = fmt.Sprintf("warning: %s=%s is plain TCP without TLS: every user of this machine can reach the engine, which gives root", source, host)
		return p, nil
	}
	if e.insecure {
		p.warning = fmt.Sprintf("WARNING: %s=%s is plain TCP without TLS (docker_insecure=true): anyone on the network path can read the traffic and run commands as root on the engine's host", source, host)
		return p, nil
	}
	return enginePlan{}, fmt.Errorf("%s=%s is plain TCP without TLS, which gives anyone on the network path root on the engine's host: "+
		"set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the engine's ca.pem, cert.pem and key.pem (port 2376), "+
		"use a unix:// socket, or accept the risk with --data docker_insecure=true", source, host)
}

// loopback reports whether the host of addr ("host:port", an IP or a name,
// with or without a path) is a loopback address or "localhost".
func loopback(addr string) bool {
	addr, _, _ = strings.Cut(addr, "/")
	h := addr
	if host, _, err := net.SplitHostPort(addr); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// engineEnvFor reads the environment and t's data for planEngine.
func engineEnvFor(data map[string]string) (engineEnv, error) {
	e := engineEnv{
		dataHost:  data["docker_host"],
		envHost:   os.Getenv(client.EnvOverrideHost),
		certPath:  os.Getenv(client.EnvOverrideCertPath),
		tlsVerify: os.Getenv(client.EnvTLSVerify),
	}
	e.home, _ = os.UserHomeDir()
	var err error
	e.insecure, err = connectors.DataBool(data, "docker_insecure", false)
	return e, err
}

// clientOptions are the Engine client options that carry out p.
func (p enginePlan) clientOptions() ([]client.Opt, error) {
	opts := []client.Opt{client.WithAPIVersionNegotiation(), client.WithAPIVersionFromEnv()}
	if p.tls {
		cfg, err := p.tlsConfig()
		if err != nil {
			return nil, err
		}
		// WithHost, after it, sets up the dialer of this transport.
		opts = append(opts, client.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, CheckRedirect: client.CheckRedirect}))
	}
	if p.host != "" {
		opts = append(opts, client.WithHost(p.host))
	}
	return opts, nil
}

// tlsConfig loads the certificates of p.certDir: ca.pem replaces the
// system roots, cert.pem and key.pem are the client's certificate.
func (p enginePlan) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: !p.verify}
	if p.certDir == "" {
		return cfg, nil
	}
	ca, err := os.ReadFile(filepath.Join(p.certDir, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("docker TLS (DOCKER_CERT_PATH=%s): %w", p.certDir, err)
	}
	cfg.RootCAs = x509.NewCertPool()
	if !cfg.RootCAs.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("docker TLS: %s holds no PEM certificate", filepath.Join(p.certDir, "ca.pem"))
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(p.certDir, "cert.pem"), filepath.Join(p.certDir, "key.pem"))
	switch {
	case err == nil:
		cfg.Certificates = []tls.Certificate{cert}
	case errors.Is(err, os.ErrNotExist):
		// No client certificate: an engine that asks for one refuses.
	default:
		return nil, fmt.Errorf("docker TLS (DOCKER_CERT_PATH=%s): client certificate: %w", p.certDir, err)
	}
	return cfg, nil
}
