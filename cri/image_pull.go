package cri

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/slipway-dev/slipway/runtime/images"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// PullImage pulls the image with the request's AuthConfig and returns its
// ID (the config digest).
func (s *Server) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, fmt.Errorf("image.image is required: %w", errdefs.ErrInvalidArgument)
	}
	named, err := images.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("image.image: %w", err)
	}
	creds, err := credentialsFor(req.GetAuth(), reference.Domain(named))
	if err != nil {
		return nil, err
	}
	img, err := s.opts.Images.Pull(ctx, ref, creds)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PullImageResponse{ImageRef: img.ID}, nil
}

// credentialsFor turns a CRI AuthConfig into registry credentials. When the
// config names a server_address, it is presented only to that host or,
// through a mirror, for images of that registry (imageHost).
func credentialsFor(auth *runtimeapi.AuthConfig, imageHost string) (images.Credentials, error) {
	if auth == nil {
		return nil, nil
	}
	user, secret, err := authSecret(auth)
	if err != nil {
		return nil, err
	}
	server := ""
	if auth.ServerAddress != "" {
		server = serverHost(auth.ServerAddress)
	}
	return func(host string) (string, string, error) {
		if server != "" && server != host && server != imageHost {
			return "", "", nil
		}
		return user, secret, nil
	}, nil
}

// authSecret picks the credential an AuthConfig carries, in the order
// containerd's CRI does: username/password, identity token, then auth.
func authSecret(auth *runtimeapi.AuthConfig) (string, string, error) {
	switch {
	case auth.Username != "":
		return auth.Username, auth.Password, nil
	case auth.IdentityToken != "":
		return "", auth.IdentityToken, nil
	case auth.Auth != "":
		decoded, err := base64.StdEncoding.DecodeString(auth.Auth)
		if err != nil {
			return "", "", fmt.Errorf("auth.auth is not valid base64: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		user, password, ok := strings.Cut(string(decoded), ":")
		if !ok {
			return "", "", fmt.Errorf("auth.auth does not decode to user:password: %w", errdefs.ErrInvalidArgument)
		}
		return user, strings.TrimRight(password, "\x00"), nil
	case auth.RegistryToken != "":
		return "", auth.RegistryToken, nil
	}
	return "", "", nil
}

// serverHost is the host of a server address given as a URL or a bare host.
func serverHost(address string) string {
	if u, err := url.Parse(address); err == nil && u.Host != "" {
		return u.Host
	}
	return strings.TrimSuffix(address, "/")
}
