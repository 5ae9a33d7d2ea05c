# A Go toolchain image made from the host's GOROOT (no golang image is
# reachable offline). Context: the directory that holds GOROOT.
FROM busybox
ARG GOROOT_NAME=go
COPY ${GOROOT_NAME} /usr/local/go
ENV PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root GOTOOLCHAIN=local CGO_ENABLED=0
RUN mkdir -p /root && go version
