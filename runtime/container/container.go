// Package container keeps CRI containers on containerd: their records
// (containerd container objects carrying the CRI config and status, the
// single source of truth) with an in-memory index, their tasks, exit
// recording across slipwayd restarts, and the CRI event stream.
package container

import (
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The reasons ContainerStatus gives for an exited container.
const (
	ReasonCompleted = "Completed"
	ReasonError     = "Error"
	ReasonOOMKilled = "OOMKilled"
)

// Container is one CRI container. Values are copies: change a Container
// through the Store.
type Container struct {
	ID string
	// Name is the unique name kubelet's metadata gives it (see Name).
	Name   string
	PodID  string
	Config *runtimeapi.ContainerConfig
	// Image is the image as the user asked for it; ImageRef its image ID.
	Image    string
	ImageRef string
	// LogPath is the absolute path of the container's CRI log ("" for none).
	LogPath string
	// CgroupsPath is the OCI cgroupsPath the container runs under.
	CgroupsPath string
	State       runtimeapi.ContainerState
	CreatedAt   time.Time
	StartedAt   time.Time
	FinishedAt  time.Time
	ExitCode    int32
	Reason      string
	Message     string
	// Pid is the container's init process while it runs.
	Pid uint32
	// Resources are the container's current resources (create or update).
	Resources *runtimeapi.LinuxContainerResources
	// StopSignal is the image's stop signal, "" for SIGTERM.
	StopSignal string
	// User is the identity the container's process runs as, from its spec.
	User ProcessUser
}

// ProcessUser is the uid, gid and supplementary groups of a process.
type ProcessUser struct {
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
}

// Name is the unique name kubelet's metadata gives a container in a pod.
func Name(pod *runtimeapi.PodSandboxMetadata, c *runtimeapi.ContainerMetadata) string {
	return fmt.Sprintf("k8s_%s_%s_%s_%s_%d", c.GetName(), pod.GetName(), pod.GetNamespace(), pod.GetUid(), c.GetAttempt())
}

// record is the persisted form of a Container.
type record struct {
	ID          string          `json:"id"`
	Name        string          `json:"name,omitempty"`
	PodID       string          `json:"podId"`
	Config      json.RawMessage `json:"config"`
	Image       string          `json:"image"`
	ImageRef    string          `json:"imageRef"`
	LogPath     string          `json:"logPath,omitempty"`
	CgroupsPath string          `json:"cgroupsPath,omitempty"`
	State       string          `json:"state"`
	CreatedAt   time.Time       `json:"createdAt"`
	StartedAt   time.Time       `json:"startedAt,omitzero"`
	FinishedAt  time.Time       `json:"finishedAt,omitzero"`
	ExitCode    int32           `json:"exitCode"`
	Reason      string          `json:"reason,omitempty"`
	Message     string          `json:"message,omitempty"`
	Pid         uint32          `json:"pid,omitempty"`
	Resources   json.RawMessage `json:"resources,omitempty"`
	StopSignal  string          `json:"stopSignal,omitempty"`
	User        ProcessUser     `json:"user"`
}

func (c Container) marshal() ([]byte, error) {
	config, err := protojson.Marshal(c.Config)
	if err != nil {
		return nil, fmt.Errorf("encoding container config: %w", err)
	}
	r := record{
		ID: c.ID, Name: c.Name, PodID: c.PodID, Config: config, Image: c.Image, ImageRef: c.ImageRef,
		LogPath: c.LogPath, CgroupsPath: c.CgroupsPath, State: c.State.String(), CreatedAt: c.CreatedAt,
		StartedAt: c.StartedAt, FinishedAt: c.FinishedAt, ExitCode: c.ExitCode, Reason: c.Reason,
		Message: c.Message, Pid: c.Pid, StopSignal: c.StopSignal, User: c.User,
	}
	if c.Resources != nil {
		if r.Resources, err = protojson.Marshal(c.Resources); err != nil {
			return nil, fmt.Errorf("encoding container resources: %w", err)
		}
	}
	return json.Marshal(r)
}

func unmarshalContainer(b []byte) (Container, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return Container{}, fmt.Errorf("decoding container record: %w", err)
	}
	config := &runtimeapi.ContainerConfig{}
	if err := protojson.Unmarshal(r.Config, config); err != nil {
		return Container{}, fmt.Errorf("decoding container config: %w", err)
	}
	c := Container{
		ID: r.ID, Name: r.Name, PodID: r.PodID, Config: config, Image: r.Image, ImageRef: r.ImageRef,
		LogPath: r.LogPath, CgroupsPath: r.CgroupsPath, CreatedAt: r.CreatedAt, StartedAt: r.StartedAt,
		FinishedAt: r.FinishedAt, ExitCode: r.ExitCode, Reason: r.Reason, Message: r.Message,
		Pid: r.Pid, StopSignal: r.StopSignal, User: r.User,
		State: runtimeapi.ContainerState(runtimeapi.ContainerState_value[r.State]),
	}
	if len(r.Resources) > 0 {
		c.Resources = &runtimeapi.LinuxContainerResources{}
		if err := protojson.Unmarshal(r.Resources, c.Resources); err != nil {
			return Container{}, fmt.Errorf("decoding container resources: %w", err)
		}
	}
	return c, nil
}
