package testregistry

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// passwd and group are busybox images' /etc/passwd and /etc/group (as in
// docker.io/library/busybox): root, www-data (uid 33) and nobody (65534)
// among others, which critest's user specs name.
const (
	passwd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`
	group = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
`
	// nsswitch makes a glibc busybox read /etc/hosts before DNS.
	nsswitch = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n"
)

// busyboxLayer returns the base layer of the busybox images: the usual
// top-level directories, /etc/passwd, /etc/group and /etc/nsswitch.conf, the
// busybox binary bin at /bin/busybox and every applet it lists with
// --list-full as a hard link to it (so masking one applet's path masks only
// that applet). A dynamically linked bin gets its ELF interpreter and
// libraries from the host, at the paths they have there.
func busyboxLayer(bin string) (v1.Layer, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	applets, err := listApplets(bin)
	if err != nil {
		return nil, err
	}
	deps, err := elfDeps(bin)
	if err != nil {
		return nil, err
	}

	l := newTarLayer()
	for _, d := range []string{"/bin", "/dev", "/etc", "/home", "/proc", "/sbin", "/sys", "/usr/bin", "/usr/sbin",
		"/var/spool/mail", "/var/www", "/var/run"} {
		l.dir(d, 0o755, 0, 0)
	}
	l.dir("/root", 0o700, 0, 0)
	l.dir("/tmp", 0o1777, 0, 0)
	l.file("/etc/passwd", 0o644, 0, 0, []byte(passwd))
	l.file("/etc/group", 0o644, 0, 0, []byte(group))
	l.file("/etc/nsswitch.conf", 0o644, 0, 0, []byte(nsswitch))
	l.file("/bin/busybox", 0o755, 0, 0, data)
	for _, a := range applets {
		if !l.has(a) {
			l.hardlink(a, "/bin/busybox")
		}
	}
	for _, d := range deps {
		l.file(d.path, 0o755, 0, 0, d.data)
	}
	return l.layer()
}

// listApplets returns the absolute install paths busybox bin reports with
// --list-full, leaving out "linuxrc" (a boot-time link) and bin itself.
func listApplets(bin string) ([]string, error) {
	out, err := exec.Command(bin, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-full: %w", bin, err)
	}
	var applets []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		if p == "" || p == "linuxrc" || p == "bin/busybox" || strings.HasSuffix(p, "/") {
			continue
		}
		applets = append(applets, "/"+p)
	}
	if len(applets) == 0 {
		return nil, fmt.Errorf("%s --list-full lists no applets", bin)
	}
	return applets, nil
}

// helpersLayer holds the helper programs every busybox image carries,
// replacing applets Debian's busybox lacks: /usr/bin/ipcs and /usr/bin/pgrep
// (critest runs `ipcs -m` and `pgrep sleep`).
func (b *builder) helpersLayer() (v1.Layer, error) {
	l := newTarLayer()
	l.file("/usr/bin/ipcs", 0o755, 0, 0, b.progs["ipcs"])
	l.file("/usr/bin/pgrep", 0o755, 0, 0, b.progs["pgrep"])
	return l.layer()
}
