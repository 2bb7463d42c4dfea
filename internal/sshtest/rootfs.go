package sshtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// RootFS returns the directory of a Debian root file system for chroot
// tests: the fleet image's (debootstrap minbase with openssh-server, sudo
// and procps, see Fleet), unpacked once into the cache directory and
// reused by every later test and process; a new image recipe gets a new
// directory. Its /dev has the usual character devices (null, zero, full,
// random, urandom, tty), made with mknod, as a bind mount of /dev would
// give them. Tests must write only below a directory of their own in it
// (ScratchIn) and leave the rest as they found it.
//
// It needs root (chroot, mknod, the file owners of the tree) and Docker
// (the image is exported with docker create and docker export); it skips
// t without them, and fails under CI=true. Unpacking is serialized across
// processes with the flock of the image build.
func RootFS(t testing.TB) string {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "a chroot root file system needs root")
	}
	if findProgram("docker", "") == "" {
		Skip(t, "docker is not installed: the chroot root file system is unpacked from the test image")
	}
	ctx := context.Background()
	image := ensureImage(ctx, t)
	spec := hostBuildSpec()
	dir, err := cacheDir()
	if err != nil {
		t.Fatalf("sshtest: cache directory: %v", err)
	}
	root := filepath.Join(dir, "rootfs-"+spec.codename+"-"+spec.recipe())
	if _, err := os.Stat(filepath.Join(root, "bin", "sh")); err == nil {
		return root
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("sshtest: flock %s: %v", lock.Name(), err)
	}
	if _, err := os.Stat(filepath.Join(root, "bin", "sh")); err == nil {
		return root // another process unpacked it meanwhile
	}
	old, _ := filepath.Glob(filepath.Join(dir, "rootfs-*.tmp"))
	for _, d := range old {
		removeRootfs(d)
	}
	work, err := os.MkdirTemp(dir, "rootfs-*.tmp")
	if err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	defer removeRootfs(work) // gone once renamed
	if err := exportImage(ctx, image, work); err != nil {
		t.Fatalf("sshtest: unpack %s into %s: %v", image, work, err)
	}
	for _, d := range []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}} {
		p := filepath.Join(work, "dev", d.name)
		os.Remove(p)
		if err := syscall.Mknod(p, syscall.S_IFCHR|0o666, int(d.major<<8|d.minor)); err != nil {
			t.Fatalf("sshtest: mknod %s: %v", p, err)
		}
		os.Chmod(p, 0o666) // mknod applies the umask
	}
	if err := os.Rename(work, root); err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	t.Logf("sshtest: unpacked %s into %s", image, root)
	return root
}

// exportImage writes the file system of a new, never started container of
// image into dir: docker create, docker export | tar -x, docker rm.
func exportImage(ctx context.Context, image, dir string) error {
	out, err := exec.CommandContext(ctx, "docker", "create", image).Output()
	if err != nil {
		return fmt.Errorf("docker create %s: %w", image, exitMessage(err))
	}
	id := strings.TrimSpace(string(out))
	defer exec.Command("docker", "rm", "-f", id).Run()
	export := exec.CommandContext(ctx, "docker", "export", id)
	untar := exec.CommandContext(ctx, "tar", "--numeric-owner", "-xpf", "-", "-C", dir)
	pipe, err := export.StdoutPipe()
	if err != nil {
		return err
	}
	untar.Stdin = pipe
	var exportErr, untarErr strings.Builder
	export.Stderr, untar.Stderr = &exportErr, &untarErr
	if err := export.Start(); err != nil {
		return err
	}
	uErr := untar.Run()
	eErr := export.Wait()
	if uErr != nil || eErr != nil {
		return fmt.Errorf("docker export | tar -x: %w (%s%s)", errors.Join(eErr, uErr), exportErr.String(), untarErr.String())
	}
	return nil
}

// exitMessage adds a failed command's standard error to err.
func exitMessage(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}

// ScratchIn returns a new empty directory below root's /tmp for t, as a
// path inside root ("/tmp/star-deploy-test-..."), removed when t ends.
func ScratchIn(t testing.TB, root string) string {
	t.Helper()
	host, err := os.MkdirTemp(filepath.Join(root, "tmp"), "star-deploy-test-")
	if err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(host) })
	return "/tmp/" + filepath.Base(host)
}
