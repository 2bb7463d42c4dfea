package sshtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The Debian test image: debootstrap (minbase) with sshd and sudo, two users,
// imported into Docker. Bump imageVersion when the recipe changes.
const (
	imageVersion  = "v1"
	SudoPassword  = "deploy2-sudo-pw" // deploy2's password, for sudo and login
	fleetCacheEnv = "STAR_DEPLOY_TEST_CACHE"
)

// Container is one Debian container running sshd, published on 127.0.0.1.
type Container struct {
	Name      string // docker container name
	Host      string // 127.0.0.1
	Port      int
	Addr      string // host:port
	ClientKey string // accepted for both users
}

// Users of the image: deploy has passwordless sudo; deploy2 needs
// SudoPassword for sudo (and may log in with it).
const (
	UserNopasswd = "deploy"
	UserPasswd   = "deploy2"
)

// Fleet starts n containers of the Debian test image, building the image
// first if needed (about half a minute with a Debian mirror). It needs
// Docker and debootstrap; without them it skips (fails under CI=true).
func Fleet(t testing.TB, n int) []*Container {
	t.Helper()
	if testing.Short() {
		t.Skip("the Debian fleet is not started with -short")
	}
	for _, tool := range []string{"docker", "debootstrap"} {
		if _, err := exec.LookPath(tool); err != nil {
			Skip(t, tool+" is not installed (apt-get install docker.io debootstrap)")
		}
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		Skip(t, "the Docker engine does not answer: "+strings.TrimSpace(string(out)))
	}
	image := buildImage(t)
	key := filepath.Join(t.TempDir(), "client_ed25519")
	keygen(t, "ed25519", "", key)
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	var out []*Container
	for range n {
		out = append(out, startContainer(t, image, key, pub))
	}
	return out
}

func startContainer(t testing.TB, image, key string, pub []byte) *Container {
	t.Helper()
	var b [4]byte
	rand.Read(b[:])
	c := &Container{Name: "star-deploy-test-" + hex.EncodeToString(b[:]), Host: "127.0.0.1", ClientKey: key}
	if out, err := exec.Command("docker", "run", "-d", "--rm", "--name", c.Name, "-p", "127.0.0.1::22", image).CombinedOutput(); err != nil {
		t.Fatalf("docker run %s: %v\n%s", image, err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", c.Name).Run() })
	for _, u := range []string{UserNopasswd, UserPasswd} {
		script := fmt.Sprintf("install -d -m 700 -o %[1]s -g %[1]s /home/%[1]s/.ssh && cat > /home/%[1]s/.ssh/authorized_keys && chown %[1]s: /home/%[1]s/.ssh/authorized_keys", u)
		cmd := exec.Command("docker", "exec", "-i", c.Name, "sh", "-c", script)
		cmd.Stdin = bytes.NewReader(pub)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("authorize key in %s: %v\n%s", c.Name, err, out)
		}
	}
	out, err := exec.Command("docker", "port", c.Name, "22/tcp").Output()
	if err != nil {
		t.Fatalf("docker port %s: %v", c.Name, err)
	}
	first := strings.Fields(strings.TrimSpace(string(out)))[0]
	host, port, err := net.SplitHostPort(first)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("container %s published on %q, want 127.0.0.1", c.Name, first)
	}
	c.Port, _ = strconv.Atoi(port)
	c.Addr = net.JoinHostPort(c.Host, port)
	// Wait for the SSH banner.
	for i := 0; ; i++ {
		conn, err := net.DialTimeout("tcp", c.Addr, time.Second)
		if err == nil {
			conn.SetReadDeadline(time.Now().Add(time.Second))
			buf := make([]byte, 4)
			_, rerr := conn.Read(buf)
			conn.Close()
			if rerr == nil && string(buf) == "SSH-" {
				return c
			}
		}
		if i == 100 {
			logs, _ := exec.Command("docker", "logs", c.Name).CombinedOutput()
			t.Fatalf("sshd in %s did not answer:\n%s", c.Name, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Exec runs argv in the container as root.
func (c *Container) Exec(t testing.TB, argv ...string) string {
	t.Helper()
	out, err := exec.Command("docker", append([]string{"exec", c.Name}, argv...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker exec %s %v: %v\n%s", c.Name, argv, err, out)
	}
	return string(out)
}

// buildImage returns the image name, building it once per machine. A lock
// file keeps parallel test processes from building it twice.
func buildImage(t testing.TB) string {
	t.Helper()
	codename := osRelease("VERSION_CODENAME")
	if codename == "" {
		codename = "bookworm"
	}
	image := "star-deploy-test/debian:" + codename + "-" + imageVersion
	if exec.Command("docker", "image", "inspect", image).Run() == nil {
		return image
	}
	cache := os.Getenv(fleetCacheEnv)
	if cache == "" {
		cache = "/var/cache/star-deploy-test"
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(cache, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if exec.Command("docker", "image", "inspect", image).Run() == nil {
		return image // built by another process meanwhile
	}
	start := time.Now()
	root, err := os.MkdirTemp(cache, "rootfs-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	mirror := debianMirror()
	t.Logf("building %s: debootstrap %s from %s", image, codename, mirror)
	if out, err := exec.Command("debootstrap", "--variant=minbase", "--include=openssh-server,sudo,procps",
		codename, root, mirror).CombinedOutput(); err != nil {
		t.Fatalf("debootstrap: %v\n%s", err, tail(out))
	}
	setup := fmt.Sprintf(`set -e
useradd -m -s /bin/bash %[1]s
useradd -m -s /bin/bash %[2]s
echo '%[2]s:%[3]s' | chpasswd
echo '%[1]s ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/%[1]s
echo '%[2]s ALL=(ALL) ALL' > /etc/sudoers.d/%[2]s
chmod 0440 /etc/sudoers.d/*
mkdir -p /run/sshd
ssh-keygen -A
printf 'PasswordAuthentication yes\nUseDNS no\nMaxSessions 64\nMaxStartups 200\n' > /etc/ssh/sshd_config.d/star-deploy-test.conf
apt-get clean
rm -rf /var/lib/apt/lists/*
`, UserNopasswd, UserPasswd, SudoPassword)
	if out, err := exec.Command("chroot", root, "/bin/sh", "-c", setup).CombinedOutput(); err != nil {
		t.Fatalf("configure the image: %v\n%s", err, out)
	}
	tar := exec.Command("tar", "-C", root, "-c", ".")
	imp := exec.Command("docker", "import", "--change", `CMD ["/usr/sbin/sshd","-D","-e"]`, "-", image)
	pipe, err := tar.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	imp.Stdin = pipe
	var impOut bytes.Buffer
	imp.Stdout, imp.Stderr = &impOut, &impOut
	if err := imp.Start(); err != nil {
		t.Fatal(err)
	}
	if err := tar.Run(); err != nil {
		t.Fatalf("tar the rootfs: %v", err)
	}
	if err := imp.Wait(); err != nil {
		t.Fatalf("docker import: %v\n%s", err, impOut.String())
	}
	t.Logf("built %s in %s", image, time.Since(start).Round(time.Second))
	return image
}

// debianMirror returns the Debian mirror of the machine's apt sources.
func debianMirror() string {
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*")
	files = append([]string{"/etc/apt/sources.list"}, files...)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			fields := strings.Fields(line)
			var uri string
			switch {
			case len(fields) >= 2 && fields[0] == "URIs:":
				uri = fields[1]
			case len(fields) >= 3 && fields[0] == "deb":
				uri = fields[1]
				if strings.HasPrefix(uri, "[") {
					uri = fields[2]
				}
			}
			if strings.HasSuffix(strings.TrimRight(uri, "/"), "/debian") {
				return uri
			}
		}
	}
	return "http://deb.debian.org/debian"
}

func osRelease(key string) string {
	b, _ := os.ReadFile("/etc/os-release")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

func tail(b []byte) string {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
