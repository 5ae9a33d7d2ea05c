package testregistry

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// This file holds what the server, setuid and user images carry beyond their
// base, mirroring the configuration of the upstream images they replace.

// nginxConf returns the files of an nginx image listening on port: the
// "nginx" shared layer holds the server itself, /usr/sbin/nginx.
func nginxConf(port int) func(*builder, *tarLayer) {
	return func(_ *builder, l *tarLayer) {
		l.file("/etc/nginx/conf.d/default.conf", 0o644, 0, 0, fmt.Appendf(nil,
			"server {\n    listen       %d;\n    server_name  localhost;\n    location / {\n        root   /usr/share/nginx/html;\n        index  index.html;\n    }\n}\n", port))
		l.file("/usr/share/nginx/html/index.html", 0o644, 0, 0, []byte(
			"<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head>\n<body><h1>Welcome to nginx!</h1></body></html>\n"))
		l.dir("/var/log/nginx", 0o755, 0, 0)
	}
}

// nginxConfig runs nginx in the foreground as the nginx images do.
func nginxConfig(stopSignal string) v1.Config {
	return v1.Config{
		Env:          []string{pathEnv},
		Cmd:          []string{"nginx", "-g", "daemon off;"},
		ExposedPorts: map[string]struct{}{"80/tcp": {}},
		StopSignal:   stopSignal,
	}
}

// httpdFiles lays out Apache httpd's prefix with the web server as
// /usr/local/bin/httpd-foreground.
func httpdFiles(b *builder, l *tarLayer) {
	l.file("/usr/local/bin/httpd-foreground", 0o755, 0, 0, b.progs["webserver"])
	l.file("/usr/local/apache2/htdocs/index.html", 0o644, 0, 0, []byte("<html><body><h1>It works!</h1></body></html>\n"))
	l.dir("/usr/local/apache2/logs", 0o755, 0, 0)
}

// httpdConfig mirrors the httpd:2.4 image, including its stop signal.
func httpdConfig() v1.Config {
	return v1.Config{
		Env:          []string{"PATH=/usr/local/apache2/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HTTPD_PREFIX=/usr/local/apache2"},
		Cmd:          []string{"httpd-foreground"},
		WorkingDir:   "/usr/local/apache2",
		ExposedPorts: map[string]struct{}{"80/tcp": {}},
		StopSignal:   "SIGWINCH",
	}
}

// nnpFiles installs nnp setuid root, as Kubernetes' nonewprivs image does.
func nnpFiles(b *builder, l *tarLayer) {
	l.file("/usr/local/bin/nnp", 0o4755, 0, 0, b.progs["nnp"])
}

// predefinedGroupFiles adds default-user (uid 1000, primary group 1000) and
// puts it in group-defined-in-image (gid 50000), as cri-tools'
// image-predefined-group Dockerfile does with adduser and addgroup.
func predefinedGroupFiles(_ *builder, l *tarLayer) {
	l.file("/etc/passwd", 0o644, 0, 0, []byte(passwd+"default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n"))
	l.file("/etc/group", 0o644, 0, 0, []byte(group+"default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n"))
	l.dir("/home/default-user", 0o755, 1000, 1000)
}

// pauseConfig mirrors registry.k8s.io/pause: /pause as user 65535.
func pauseConfig() v1.Config {
	return v1.Config{
		Env:        []string{pathEnv},
		Entrypoint: []string{"/pause"},
		User:       "65535:65535",
		WorkingDir: "/",
	}
}
