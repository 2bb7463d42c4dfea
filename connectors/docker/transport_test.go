package docker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/star-deploy/star-deploy/connectors"
)

// TestPlanEngine covers the decision alone; nothing here dials, so the
// addresses outside loopback are never reached.
func TestPlanEngine(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     engineEnv
		want    enginePlan // warning: compared by substring
		wantErr []string   // substrings of the error
	}{
		{name: "default socket", env: engineEnv{}, want: enginePlan{}},
		{name: "unix", env: engineEnv{envHost: "unix:///run/docker.sock"}, want: enginePlan{host: "unix:///run/docker.sock"}},
		{name: "unix ignores certs", env: engineEnv{envHost: "unix:///run/docker.sock", certPath: "/c"}, want: enginePlan{host: "unix:///run/docker.sock"}},
		{name: "plain tcp refused", env: engineEnv{envHost: "tcp://192.0.2.10:2375"},
			wantErr: []string{"DOCKER_HOST=tcp://192.0.2.10:2375 is plain TCP without TLS", "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH", "docker_insecure=true"}},
		{name: "plain tcp by name refused", env: engineEnv{envHost: "tcp://docker.example.com:2375"}, wantErr: []string{"plain TCP"}},
		{name: "data key named", env: engineEnv{dataHost: "tcp://192.0.2.10:2375", envHost: "unix:///x"}, wantErr: []string{"docker_host=tcp://192.0.2.10:2375"}},
		{name: "http refused", env: engineEnv{envHost: "http://192.0.2.10:2375"}, wantErr: []string{"plain TCP"}},
		{name: "plain tcp opted in", env: engineEnv{envHost: "tcp://192.0.2.10:2375", insecure: true},
			want: enginePlan{host: "tcp://192.0.2.10:2375", warning: "plain TCP without TLS (docker_insecure=true)"}},
		{name: "loopback allowed with a warning", env: engineEnv{envHost: "tcp://127.0.0.1:2375"},
			want: enginePlan{host: "tcp://127.0.0.1:2375", warning: "DOCKER_HOST=tcp://127.0.0.1:2375 is plain TCP without TLS"}},
		{name: "loopback 127/8", env: engineEnv{envHost: "tcp://127.3.4.5:2375"}, want: enginePlan{host: "tcp://127.3.4.5:2375", warning: "plain TCP"}},
		{name: "loopback v6", env: engineEnv{envHost: "tcp://[::1]:2375"}, want: enginePlan{host: "tcp://[::1]:2375", warning: "plain TCP"}},
		{name: "localhost", env: engineEnv{envHost: "tcp://localhost:2375"}, want: enginePlan{host: "tcp://localhost:2375", warning: "plain TCP"}},
		{name: "localhost lookalike refused", env: engineEnv{envHost: "tcp://localhost.example.com:2375"}, wantErr: []string{"plain TCP"}},
		{name: "cert path verifies without TLS_VERIFY", env: engineEnv{envHost: "tcp://192.0.2.10:2376", certPath: "/certs"},
			want: enginePlan{host: "tcp://192.0.2.10:2376", tls: true, certDir: "/certs", verify: true}},
		{name: "cert path and TLS_VERIFY", env: engineEnv{envHost: "tcp://192.0.2.10:2376", certPath: "/certs", tlsVerify: "1"},
			want: enginePlan{host: "tcp://192.0.2.10:2376", tls: true, certDir: "/certs", verify: true}},
		{name: "TLS_VERIFY alone uses ~/.docker", env: engineEnv{envHost: "tcp://192.0.2.10:2376", tlsVerify: "1", home: "/home/u"},
			want: enginePlan{host: "tcp://192.0.2.10:2376", tls: true, certDir: "/home/u/.docker", verify: true}},
		{name: "insecure skips verification without TLS_VERIFY", env: engineEnv{envHost: "tcp://192.0.2.10:2376", certPath: "/certs", insecure: true},
			want: enginePlan{host: "tcp://192.0.2.10:2376", tls: true, certDir: "/certs", warning: "NOT verified"}},
		{name: "TLS_VERIFY wins over insecure", env: engineEnv{envHost: "tcp://192.0.2.10:2376", certPath: "/certs", tlsVerify: "1", insecure: true},
			want: enginePlan{host: "tcp://192.0.2.10:2376", tls: true, certDir: "/certs", verify: true}},
		{name: "https uses the system roots", env: engineEnv{envHost: "https://192.0.2.10:2376"},
			want: enginePlan{host: "https://192.0.2.10:2376", tls: true, verify: true}},
		{name: "not an address", env: engineEnv{envHost: "192.0.2.10:2375"}, wantErr: []string{"DOCKER_HOST=192.0.2.10:2375: want an address"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := planEngine(tc.env)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("planEngine = %+v, want an error", got)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want.warning == "" && got.warning != "" || !strings.Contains(got.warning, tc.want.warning) {
				t.Errorf("warning %q, want one containing %q", got.warning, tc.want.warning)
			}
			got.warning, tc.want.warning = "", ""
			if got != tc.want {
				t.Errorf("planEngine = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestEngineOverTLS puts a TLS-terminating proxy on 127.0.0.1 in front of
// the real Docker socket, with certificates of a test CA: with the right
// ca.pem in DOCKER_CERT_PATH the connector reaches the engine, with a wrong
// one it refuses the engine's certificate even though DOCKER_TLS_VERIFY is
// unset; plain TCP on loopback works, with a warning.
func TestEngineOverTLS(t *testing.T) {
	id := busyboxContainer(t)
	ca, caKey := testCA(t, "star-deploy test CA")
	otherCA, _ := testCA(t, "some other CA")
	serverCert := issue(t, ca, caKey, x509.ExtKeyUsageServerAuth)
	clientCert := issue(t, ca, caKey, x509.ExtKeyUsageClientAuth)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	tlsAddr := proxyToSocket(t, &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool})
	plainAddr := proxyToSocket(t, nil)

	right := certDir(t, ca, clientCert)
	wrong := certDir(t, otherCA, clientCert)
	open := func(t *testing.T, env map[string]string) (connectors.Connector, []string, error) {
		for _, k := range []string{"DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY"} {
			t.Setenv(k, env[k])
		}
		var warnings []string
		f := NewFactory(Options{Warn: func(msg string) { warnings = append(warnings, msg) }})
		target, _ := f.Parse(id, nil)
		c, err := f.Open(t.Context(), target)
		if err == nil {
			t.Cleanup(func() { c.Close() })
		}
		return c, warnings, err
	}
	run := func(t *testing.T, c connectors.Connector) {
		res, err := c.Run(t.Context(), connectors.Command{Script: "echo through the proxy"})
		if err != nil || string(res.Stdout) != "through the proxy\n" {
			t.Fatalf("run: %v, stdout %q", err, res.Stdout)
		}
	}

	t.Run("right CA", func(t *testing.T) {
		c, warnings, err := open(t, map[string]string{"DOCKER_HOST": "tcp://" + tlsAddr, "DOCKER_CERT_PATH": right})
		if err != nil {
			t.Fatal(err)
		}
		run(t, c)
		if len(warnings) != 0 {
			t.Errorf("warnings %q, want none", warnings)
		}
	})
	t.Run("right CA with TLS_VERIFY", func(t *testing.T) {
		c, _, err := open(t, map[string]string{"DOCKER_HOST": "tcp://" + tlsAddr, "DOCKER_CERT_PATH": right, "DOCKER_TLS_VERIFY": "1"})
		if err != nil {
			t.Fatal(err)
		}
		run(t, c)
	})
	t.Run("wrong CA", func(t *testing.T) {
		_, _, err := open(t, map[string]string{"DOCKER_HOST": "tcp://" + tlsAddr, "DOCKER_CERT_PATH": wrong})
		if err == nil || !strings.Contains(err.Error(), "TLS certificate is not trusted") || !strings.Contains(err.Error(), "x509: certificate signed by unknown authority") {
			t.Fatalf("err = %v, want a certificate error", err)
		}
		t.Logf("refused: %v", err)
	})
	t.Run("plain loopback", func(t *testing.T) {
		c, warnings, err := open(t, map[string]string{"DOCKER_HOST": "tcp://" + plainAddr})
		if err != nil {
			t.Fatal(err)
		}
		run(t, c)
		if len(warnings) != 1 || !strings.Contains(warnings[0], "plain TCP without TLS") {
			t.Errorf("warnings %q, want one about plain TCP", warnings)
		}
		t.Logf("warned: %s", warnings)
	})
}

// proxyToSocket serves on 127.0.0.1, with TLS when cfg is set, and pipes
// every connection to the Docker socket. It returns host:port.
func proxyToSocket(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn // closed at the end: idle keep-alive connections stay
	closed := false
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				c.Close()
				return
			}
			open = append(open, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				up, err := net.Dial("unix", "/var/run/docker.sock")
				if err != nil {
					return
				}
				defer up.Close()
				// The client may half-close (end of stdin); the engine's
				// end of the stream ends the connection.
				done := make(chan struct{})
				go func() { io.Copy(up, c); up.(*net.UnixConn).CloseWrite(); close(done) }()
				io.Copy(c, up)
				c.Close()
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}

// testCA returns a self-signed CA certificate and its key.
func testCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// issue returns a certificate for 127.0.0.1 signed by ca.
func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// certDir writes ca.pem, cert.pem and key.pem as DOCKER_CERT_PATH holds them.
func certDir(t *testing.T, ca *x509.Certificate, client tls.Certificate) string {
	t.Helper()
	dir := t.TempDir()
	keyDER, err := x509.MarshalPKCS8PrivateKey(client.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, block := range map[string]*pem.Block{
		"ca.pem":   {Type: "CERTIFICATE", Bytes: ca.Raw},
		"cert.pem": {Type: "CERTIFICATE", Bytes: client.Certificate[0]},
		"key.pem":  {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
