package images

import (
	"context"
	"net"
	"testing"

	contentapi "github.com/containerd/containerd/api/services/content/v1"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/containerd/containerd/v2/plugins/services/content/contentserver"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
)

// countingContentClient counts the content service calls made through it.
type countingContentClient struct {
	contentapi.ContentClient
	info, read int
}

func (c *countingContentClient) Info(ctx context.Context, in *contentapi.InfoRequest, opts ...grpc.CallOption) (*contentapi.InfoResponse, error) {
	c.info++
	return c.ContentClient.Info(ctx, in, opts...)
}

func (c *countingContentClient) Read(ctx context.Context, in *contentapi.ReadContentRequest, opts ...grpc.CallOption) (contentapi.Content_ReadClient, error) {
	c.read++
	return c.ContentClient.Read(ctx, in, opts...)
}

// A blob of known size is read in one Read call, with no Info; a missing
// blob is NotFound.
func TestSizedContentReadsABlobInOneCall(t *testing.T) {
	ctx := context.Background()
	store, err := local.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	blob := make([]byte, 3<<20) // several gRPC messages
	for i := range blob {
		blob[i] = byte(i)
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	if err := content.WriteBlob(ctx, store, "blob", bytesReader(blob), desc); err != nil {
		t.Fatal(err)
	}

	listener := bufconn.Listen(1 << 20)
	server := grpc.NewServer()
	contentapi.RegisterContentServer(server, contentserver.New(store))
	go server.Serve(listener)
	defer server.Stop()
	conn, err := grpc.NewClient("passthrough:///bufconn", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return listener.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := &countingContentClient{ContentClient: contentapi.NewContentClient(conn)}
	provider := sizedContent{Provider: store, client: client}

	got, err := content.ReadBlob(ctx, provider, desc)
	if err != nil {
		t.Fatal(err)
	}
	if digest.FromBytes(got) != desc.Digest {
		t.Errorf("read %d bytes that do not match the blob", len(got))
	}
	if client.info != 0 || client.read != 1 {
		t.Errorf("reading a blob of known size made %d Info and %d Read calls, want 0 and 1", client.info, client.read)
	}

	missing := ocispec.Descriptor{Digest: digest.FromString("missing"), Size: 10}
	if _, err := content.ReadBlob(ctx, provider, missing); !errdefs.IsNotFound(err) {
		t.Errorf("reading a missing blob: %v, want NotFound", err)
	}
}
