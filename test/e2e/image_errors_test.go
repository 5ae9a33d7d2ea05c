package e2e

import (
	"context"
	"encoding/base64"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var _ = Describe("Image errors", func() {
	pull := func(ctx context.Context, ref string, auth *runtimeapi.AuthConfig) error {
		_, err := imageSvc.PullImage(ctx, &runtimeapi.PullImageRequest{
			Image: &runtimeapi.ImageSpec{Image: ref}, Auth: auth,
		})
		return err
	}

	It("answers NotFound, naming the image, for an image the registry lacks", func(ctx context.Context) {
		ref := "registry.k8s.io/e2e-test-images/no-such-image:1.0"
		err := pull(ctx, ref, nil)
		Expect(status.Code(err)).To(Equal(codes.NotFound), "%v", err)
		Expect(err.Error()).To(ContainSubstring(ref))
	})

	It("answers InvalidArgument, naming the field, for an empty or malformed reference", func(ctx context.Context) {
		for _, ref := range []string{"", "Upper/Case:tag", "busybox:bad tag", "repo@sha256:short"} {
			err := pull(ctx, ref, nil)
			Expect(status.Code(err)).To(Equal(codes.InvalidArgument), "%q: %v", ref, err)
			Expect(err.Error()).To(ContainSubstring("image.image"), "%q", ref)
		}
		_, err := imageSvc.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{})
		Expect(status.Code(err)).To(Equal(codes.InvalidArgument))
		_, err = imageSvc.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{}})
		Expect(status.Code(err)).To(Equal(codes.InvalidArgument))
	})

	Describe("a registry that requires credentials", func() {
		var ref string
		BeforeEach(func() { ref = testRegistry.Addr() + "/private/busybox:1.0" })

		It("refuses an anonymous pull and a pull with a wrong password", func(ctx context.Context) {
			err := pull(ctx, ref, nil)
			Expect(status.Code(err)).To(Equal(codes.Unauthenticated), "%v", err)
			err = pull(ctx, ref, &runtimeapi.AuthConfig{Username: privateUser, Password: "wrong"})
			Expect(status.Code(err)).To(Equal(codes.Unauthenticated), "%v", err)
			Expect(imageStatus(ctx, ref)).To(BeNil())
		})

		It("pulls with the right username and password, or base64 auth", func(ctx context.Context) {
			pullImage(ctx, ref, &runtimeapi.AuthConfig{Username: privateUser, Password: privatePassword})
			removeImage(ctx, ref)
			encoded := base64.StdEncoding.EncodeToString([]byte(privateUser + ":" + privatePassword))
			pullImage(ctx, ref, &runtimeapi.AuthConfig{Auth: encoded, ServerAddress: testRegistry.Addr()})
			removeImage(ctx, ref)
		})

		It("presents credentials for the image's registry to its mirror", func(ctx context.Context) {
			mirrored := "registry.k8s.io/private/busybox:1.0"
			err := pull(ctx, mirrored, &runtimeapi.AuthConfig{Username: privateUser, Password: privatePassword, ServerAddress: "other.example"})
			Expect(status.Code(err)).To(Equal(codes.Unauthenticated), "credentials for another server are withheld: %v", err)
			pullImage(ctx, mirrored, &runtimeapi.AuthConfig{Username: privateUser, Password: privatePassword, ServerAddress: "https://registry.k8s.io"})
			removeImage(ctx, mirrored)
		})
	})
})
