package e2e

import (
	"context"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/slipway-dev/slipway/cni"
	"github.com/slipway-dev/slipway/runtime/namespaces"
)

var _ = Describe("Start-up reconciliation", func() {
	It("removes what a crash mid-RunPodSandbox leaves: network attachment, pins and directories", func(ctx context.Context) {
		before := footprint()
		// What RunPodSandbox has acquired before it records the pod.
		id := "0000000000000000000000000000000000000000000000000000000000c0ffee"
		stateDir := filepath.Join(daemon.State, "pods", id)
		rootDir := filepath.Join(daemon.Root, "pods", id)
		pinned, err := namespaces.Pin(namespaces.Request{Dir: filepath.Join(stateDir, "ns"), Kinds: []namespaces.Kind{namespaces.Net, namespaces.IPC, namespaces.UTS}})
		Expect(err).NotTo(HaveOccurred())
		Expect(os.MkdirAll(rootDir, 0o755)).To(Succeed())
		network, err := cni.New(ctx, cni.Options{ConfDir: daemon.cniConfDir, CacheDir: filepath.Join(daemon.Root, "cni", "cache")})
		Expect(err).NotTo(HaveOccurred())
		_, err = network.Setup(ctx, cni.Pod{ID: id, Name: "crashed", Namespace: "e2e", UID: "crashed", NetNS: pinned[namespaces.Net]})
		Expect(err).NotTo(HaveOccurred())
		Expect(footprint()).NotTo(Equal(before))

		daemon.restart(ctx)

		Expect(footprint()).To(Equal(before))
		Expect(stateDir).NotTo(BeAnExistingFile())
		Expect(rootDir).NotTo(BeAnExistingFile())
		attached, err := network.Attached()
		Expect(err).NotTo(HaveOccurred())
		Expect(attached).NotTo(ContainElement(id))
	})
})
