package sshtest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The users of the fleet image.
const (
	// UserNopasswd may run anything with sudo without a password.
	UserNopasswd = "deploy"
	// UserPasswd's sudo asks for its password, SudoPassword, which is also
	// its login password (sudo asks for the user's own password).
	UserPasswd   = "deploy2"
	SudoPassword = "deploy2-sudo-pw"

	defaultMirror = "http://deb.debian.org/debian"
	imageRepo     = "star-deploy-test/debian"
	recipeLabel   = "org.star-deploy.test.recipe"
)

// packages are installed into the image besides the minbase variant:
// openssh-server pulls in openssh-sftp-server and procps.
var packages = []string{"openssh-server", "sudo", "procps"}

// configureScript runs in the debootstrapped root file system (chroot).
// Host keys are removed: every container gets its own (see Fleet).
const configureScript = `set -eu
useradd -m -u 1000 -s /bin/bash deploy
useradd -m -u 1001 -s /bin/bash deploy2
usermod -p '*' deploy
echo 'deploy2:deploy2-sudo-pw' | chpasswd
printf '%s\n' 'deploy ALL=(ALL:ALL) NOPASSWD: ALL' 'deploy2 ALL=(ALL:ALL) ALL' >/etc/sudoers.d/star-deploy-test
chmod 0440 /etc/sudoers.d/star-deploy-test
for u in deploy deploy2; do
	mkdir -p /home/$u/.ssh
	: >/home/$u/.ssh/authorized_keys
	chmod 0700 /home/$u/.ssh
	chmod 0600 /home/$u/.ssh/authorized_keys
	chown -R $u:$u /home/$u/.ssh
done
rm -f /etc/ssh/ssh_host_*
mkdir -p /run/sshd
# pam_loginuid cannot write /proc/self/loginuid in a container.
sed -i 's/^session\s\+required\s\+pam_loginuid.so/session optional pam_loginuid.so/' /etc/pam.d/sshd
cat >/etc/ssh/sshd_config.d/star-deploy-test.conf <<'EOF'
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_rsa_key
PasswordAuthentication yes
KbdInteractiveAuthentication no
MaxSessions 64
MaxStartups 200
AllowTcpForwarding yes
LogLevel VERBOSE
EOF
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/*.log
`

// buildSpec describes the image for this machine.
type buildSpec struct {
	codename, arch, mirror, mirrorFrom string
}

func (b buildSpec) image() string { return imageRepo + ":" + b.codename }

// tarballKey names the debootstrap package tarball: it changes with
// everything that changes the set of downloaded packages.
func (b buildSpec) tarballKey() string {
	return shortHash("minbase", b.codename, b.arch, b.mirror, strings.Join(packages, ","))
}

// recipe identifies the image content; an image with another recipe label
// is rebuilt.
func (b buildSpec) recipe() string {
	return shortHash(b.tarballKey(), configureScript)
}

func shortHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		io.WriteString(h, p)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// hostBuildSpec reads the Debian release and mirror of this machine.
func hostBuildSpec() buildSpec {
	b := buildSpec{codename: osRelease("/etc/os-release")["VERSION_CODENAME"], arch: runtime.GOARCH}
	if out, err := exec.Command("dpkg", "--print-architecture").Output(); err == nil {
		b.arch = strings.TrimSpace(string(out))
	}
	if b.codename == "" {
		b.codename = "bookworm"
	}
	if m := os.Getenv("STAR_DEPLOY_TEST_MIRROR"); m != "" {
		b.mirror, b.mirrorFrom = m, "STAR_DEPLOY_TEST_MIRROR"
	} else {
		b.mirror, b.mirrorFrom = aptMirror("/etc/apt", b.codename)
	}
	if b.mirror == "" {
		b.mirror, b.mirrorFrom = defaultMirror, "the Debian default (no apt source configured)"
	}
	return b
}

// osRelease parses an os-release file.
func osRelease(path string) map[string]string {
	m := map[string]string{}
	b, err := os.ReadFile(path)
	if err != nil {
		return m
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok {
			m[k] = strings.Trim(v, `"'`)
		}
	}
	return m
}

// aptMirror returns the URI of the first apt source under etc (/etc/apt)
// for the suite codename itself (not -updates or -security), and the file
// that named it; "" when there is none. It reads sources.list, then
// sources.list.d/*.list and *.sources (deb822) in name order.
func aptMirror(etc, codename string) (uri, file string) {
	files := []string{filepath.Join(etc, "sources.list")}
	d, _ := filepath.Glob(filepath.Join(etc, "sources.list.d", "*"))
	sort.Strings(d)
	for _, f := range d {
		if strings.HasSuffix(f, ".list") || strings.HasSuffix(f, ".sources") {
			files = append(files, f)
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var sources []aptSource
		if strings.HasSuffix(f, ".sources") {
			sources = parseDeb822(string(b))
		} else {
			sources = parseOneLine(string(b))
		}
		for _, s := range sources {
			if !s.enabled || !contains(s.types, "deb") || !contains(s.suites, codename) {
				continue
			}
			for _, u := range s.uris {
				if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "file:/") {
					return strings.TrimSuffix(u, "/"), f
				}
			}
		}
	}
	return "", ""
}

type aptSource struct {
	enabled             bool
	types, uris, suites []string
}

// parseOneLine parses "deb [options] uri suite component..." lines.
func parseOneLine(text string) []aptSource {
	var out []aptSource
	for _, l := range strings.Split(text, "\n") {
		l, _, _ = strings.Cut(l, "#")
		f := strings.Fields(l)
		if len(f) > 1 && strings.HasPrefix(f[1], "[") {
			for len(f) > 1 && !strings.HasSuffix(f[1], "]") {
				f = append(f[:1], f[2:]...)
			}
			if len(f) > 1 {
				f = append(f[:1], f[2:]...)
			}
		}
		if len(f) < 3 {
			continue
		}
		out = append(out, aptSource{enabled: true, types: f[:1], uris: f[1:2], suites: f[2:3]})
	}
	return out
}

// parseDeb822 parses the stanzas of a .sources file.
func parseDeb822(text string) []aptSource {
	var out []aptSource
	cur, any := aptSource{enabled: true}, false
	flush := func() {
		if any {
			out = append(out, cur)
		}
		cur, any = aptSource{enabled: true}, false
	}
	for _, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) == "" {
			flush()
			continue
		}
		if strings.HasPrefix(l, "#") || strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t") {
			continue // comments and continuation lines (Signed-By keys)
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		any = true
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "types":
			cur.types = strings.Fields(v)
		case "uris":
			cur.uris = strings.Fields(v)
		case "suites":
			cur.suites = strings.Fields(v)
		case "enabled":
			cur.enabled = strings.TrimSpace(strings.ToLower(v)) != "no"
		}
	}
	flush()
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// cacheDir returns STAR_DEPLOY_TEST_CACHE, else /var/cache/star-deploy-test
// when it can be created, else a directory in the user's cache.
func cacheDir() (string, error) {
	if d := os.Getenv("STAR_DEPLOY_TEST_CACHE"); d != "" {
		d, err := filepath.Abs(d)
		if err != nil {
			return "", err
		}
		return d, os.MkdirAll(d, 0o755)
	}
	d := "/var/cache/star-deploy-test"
	if err := os.MkdirAll(d, 0o755); err == nil {
		return d, nil
	}
	uc, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	d = filepath.Join(uc, "star-deploy-test")
	return d, os.MkdirAll(d, 0o755)
}

// imageRecipe returns the recipe label of image, or "" when there is no
// such image.
func imageRecipe(ctx context.Context, image string) string {
	out, err := exec.CommandContext(ctx, "docker", "image", "inspect", "--format",
		fmt.Sprintf("{{index .Config.Labels %q}}", recipeLabel), image).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// ensureImage returns the fleet image, building it when it is missing or
// stale. Builds are serialized across processes with a flock on the cache
// directory; the debootstrap package tarball stays there for rebuilds.
func ensureImage(ctx context.Context, t testing.TB) string {
	t.Helper()
	spec := hostBuildSpec()
	image, recipe := spec.image(), spec.recipe()
	if imageRecipe(ctx, image) == recipe {
		return image
	}
	dir, err := cacheDir()
	if err != nil {
		t.Fatalf("sshtest: cache directory: %v", err)
	}
	lock := lockCache(t, dir, image)
	defer lock.Close() // releases the flock
	if imageRecipe(ctx, image) == recipe {
		return image // another process built it meanwhile
	}

	// Work directories of builds that died (we hold the lock, so no build runs).
	stale, _ := filepath.Glob(filepath.Join(dir, "build-*.tmp"))
	for _, d := range stale {
		removeRootfs(d)
	}

	if os.Geteuid() != 0 {
		Skip(t, "building the test image "+image+" with debootstrap needs root")
	}
	debootstrap := findProgram("debootstrap", "/usr/sbin/debootstrap")
	if debootstrap == "" {
		Skip(t, "debootstrap is not installed (apt-get install debootstrap); it builds the test image "+image)
	}
	start := time.Now()
	t.Logf("sshtest: building %s (recipe %s) from %s %s/%s, mirror %s (from %s), cache %s",
		image, recipe, spec.codename, "minbase", spec.arch, spec.mirror, spec.mirrorFrom, dir)
	b := &imageBuild{ctx: ctx, t: t, spec: spec, dir: dir, image: image, debootstrap: debootstrap,
		common:  []string{"--variant=minbase", "--include=" + strings.Join(packages, ",")},
		logPath: filepath.Join(dir, "build-"+spec.codename+".log")}
	b.log, err = os.Create(b.logPath)
	if err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	defer b.log.Close()
	tarball := b.packages(start)
	rootfs, err := os.MkdirTemp(dir, "build-rootfs-*.tmp")
	if err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	defer removeRootfs(rootfs)
	b.install(tarball, rootfs)
	b.importImage(rootfs, recipe)
	t.Logf("sshtest: built %s in %v", image, time.Since(start).Round(time.Second))
	return image
}

// lockCache takes the flock on the cache directory that serializes image
// builds across processes, waiting (and saying so) while another holds it.
// Closing the file releases it.
func lockCache(t testing.TB, dir, image string) *os.File {
	t.Helper()
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Logf("sshtest: waiting for another process building %s (flock %s)", image, lock.Name())
		if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
			lock.Close()
			t.Fatalf("sshtest: flock %s: %v", lock.Name(), err)
		}
	}
	return lock
}

// imageBuild is one build of the fleet image, its commands logged to log.
type imageBuild struct {
	ctx         context.Context
	t           testing.TB
	spec        buildSpec
	dir         string // the cache directory
	image       string
	debootstrap string   // its path
	common      []string // debootstrap's arguments for every step
	log         *os.File
	logPath     string
}

// fail ends the test with what failed and the end of the build log.
func (b *imageBuild) fail(format string, args ...any) {
	b.t.Helper()
	b.t.Fatalf("sshtest: build %s: %s\nlast lines of %s:\n%s", b.image, fmt.Sprintf(format, args...), b.logPath, tail(b.logPath, 40))
}

// run runs a command with its output in the log.
func (b *imageBuild) run(name string, args ...string) error {
	fmt.Fprintf(b.log, "+ %s %s\n", name, strings.Join(args, " "))
	cmd := exec.CommandContext(b.ctx, name, args...)
	cmd.Stdout, cmd.Stderr = b.log, b.log
	return cmd.Run()
}

// packages returns the debootstrap package tarball of the cache,
// downloading it first when it is not there.
func (b *imageBuild) packages(start time.Time) string {
	b.t.Helper()
	spec := b.spec
	tarball := filepath.Join(b.dir, fmt.Sprintf("debootstrap-%s-%s-%s.tgz", spec.codename, spec.arch, spec.tarballKey()))
	if _, err := os.Stat(tarball); err == nil {
		b.t.Logf("sshtest: reusing the packages in %s", tarball)
		return tarball
	}
	b.t.Logf("sshtest: downloading packages into %s", tarball)
	work, err := os.MkdirTemp(b.dir, "build-download-*.tmp")
	if err != nil {
		b.t.Fatalf("sshtest: %v", err)
	}
	tmp := tarball + ".part"
	err = b.run(b.debootstrap, append(b.common, "--make-tarball="+tmp, spec.codename, work, spec.mirror)...)
	removeRootfs(work)
	if err != nil {
		os.Remove(tmp)
		b.fail("debootstrap --make-tarball: %v", err)
	}
	if err := os.Rename(tmp, tarball); err != nil {
		b.t.Fatalf("sshtest: %v", err)
	}
	b.t.Logf("sshtest: downloaded in %v", time.Since(start).Round(time.Second))
	return tarball
}

// install unpacks the packages of tarball into rootfs and configures it
// (configureScript, in a chroot).
func (b *imageBuild) install(tarball, rootfs string) {
	b.t.Helper()
	installStart := time.Now()
	if err := b.run(b.debootstrap, append(b.common, "--unpack-tarball="+tarball, b.spec.codename, rootfs, b.spec.mirror)...); err != nil {
		b.fail("debootstrap: %v (if %s is damaged, remove it: the next run downloads anew)", err, tarball)
	}
	b.t.Logf("sshtest: debootstrap installed the packages in %v", time.Since(installStart).Round(time.Second))
	chroot := exec.CommandContext(b.ctx, "chroot", rootfs, "/bin/sh", "-c", configureScript)
	chroot.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive"}
	chroot.Stdout, chroot.Stderr = b.log, b.log
	fmt.Fprintf(b.log, "+ chroot %s <configure script>\n", rootfs)
	if err := chroot.Run(); err != nil {
		b.fail("configure the root file system: %v", err)
	}
	if err := checkNoMounts(rootfs); err != nil {
		b.fail("%v", err)
	}
}

// importImage makes the image of rootfs, labelled with recipe: tar |
// docker import.
func (b *imageBuild) importImage(rootfs, recipe string) {
	b.t.Helper()
	tarCmd := exec.CommandContext(b.ctx, "tar", "--numeric-owner", "-C", rootfs,
		"--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", "--exclude=./debootstrap", "-cf", "-", ".")
	imp := exec.CommandContext(b.ctx, "docker", "import",
		"--change", `CMD ["/usr/sbin/sshd","-D","-e"]`,
		"--change", "EXPOSE 22",
		"--change", "LABEL "+recipeLabel+"="+recipe,
		"--message", "star-deploy test image (internal/sshtest)",
		"-", b.image)
	pipe, err := tarCmd.StdoutPipe()
	if err != nil {
		b.t.Fatalf("sshtest: %v", err)
	}
	imp.Stdin = pipe
	tarCmd.Stderr = b.log
	imp.Stdout, imp.Stderr = b.log, b.log
	fmt.Fprintf(b.log, "+ tar -C %s -c . | docker import - %s\n", rootfs, b.image)
	if err := tarCmd.Start(); err != nil {
		b.t.Fatalf("sshtest: tar: %v", err)
	}
	impErr := imp.Run()
	tarErr := tarCmd.Wait()
	if err := errors.Join(tarErr, impErr); err != nil {
		b.fail("tar | docker import: %v", err)
	}
}

// checkNoMounts fails when debootstrap left a file system mounted in
// rootfs: removing the tree would then delete through the mount.
func checkNoMounts(rootfs string) error {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && (f[1] == rootfs || strings.HasPrefix(f[1], rootfs+"/")) {
			return fmt.Errorf("%s is still mounted", f[1])
		}
	}
	return nil
}

// removeRootfs removes a debootstrap target, unmounting what debootstrap
// may have left mounted after a failure. It leaves the tree in place when
// something stays mounted.
func removeRootfs(rootfs string) {
	for i := 0; i < 3 && checkNoMounts(rootfs) != nil; i++ {
		for _, sub := range []string{"proc", "sys", "dev/pts", "dev"} {
			exec.Command("umount", "-l", filepath.Join(rootfs, sub)).Run()
		}
	}
	if checkNoMounts(rootfs) == nil {
		os.RemoveAll(rootfs)
	}
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
