package spec

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"sync"
	"testing/fstest"
)

// UserFiles remembers the /etc/passwd and /etc/group of images, by image
// ID (the digest of the image's config, which names its layers), so that
// resolving a container's user does not wait for its rootfs snapshot:
// CreateContainer prepares the snapshot while it makes the spec and
// records the container, and a spec that must read the image's files
// waits for the snapshot only the first time an image is used. An image's
// files never change, and a container's rootfs starts as the image's.
// Only small files are kept (maxCachedUserFile each, userFilesImages
// images); a nil *UserFiles keeps nothing. It is safe for concurrent use.
type UserFiles struct {
	mu sync.Mutex
	// byImage are the files of each image; order is the images oldest
	// first, for eviction. mu guards both.
	byImage map[string]fstest.MapFS
	order   []string
}

const (
	// maxCachedUserFile is the largest /etc/passwd or /etc/group kept.
	maxCachedUserFile = 64 << 10
	// userFilesImages is how many images' files are kept.
	userFilesImages = 256
)

// userFileNames are the files user resolution reads (see users.go).
var userFileNames = []string{"etc/passwd", "etc/group"}

// NewUserFiles returns an empty UserFiles.
func NewUserFiles() *UserFiles { return &UserFiles{byImage: map[string]fstest.MapFS{}} }

// RootFS returns a RootFS that answers from the files kept for imageID,
// or reads them through root once and keeps them when they are small.
// With an empty imageID, or a nil u, it is root.
func (u *UserFiles) RootFS(imageID string, root RootFS) RootFS {
	if u == nil || imageID == "" {
		return root
	}
	return func(ctx context.Context, fn func(fs.FS) error) error {
		if files, ok := u.get(imageID); ok {
			return fn(files)
		}
		var kept fstest.MapFS
		err := root(ctx, func(fsys fs.FS) error {
			files, err := readUserFiles(fsys)
			if err != nil {
				return err
			}
			if files == nil {
				// Too big to keep: read them in place.
				return fn(fsys)
			}
			kept = files
			return fn(files)
		})
		if kept != nil {
			// Kept whatever fn made of them (a user not found is an error
			// about the config, not the files).
			u.put(imageID, kept)
		}
		return err
	}
}

func (u *UserFiles) get(imageID string) (fstest.MapFS, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	files, ok := u.byImage[imageID]
	return files, ok
}

func (u *UserFiles) put(imageID string, files fstest.MapFS) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.byImage[imageID]; ok {
		return
	}
	if len(u.order) >= userFilesImages {
		delete(u.byImage, u.order[0])
		u.order = u.order[1:]
	}
	u.byImage[imageID] = files
	u.order = append(u.order, imageID)
}

// readUserFiles reads the user files of fsys into memory: a missing file
// is left out (as openUserFile reports it), and any other error is
// returned as openUserFile returns it. It returns nil files when one is
// larger than maxCachedUserFile.
func readUserFiles(fsys fs.FS) (fstest.MapFS, error) {
	files := fstest.MapFS{}
	for _, name := range userFileNames {
		f, err := openUserFile(fsys, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(io.LimitReader(f, maxCachedUserFile+1))
		f.Close()
		if err != nil {
			return nil, err
		}
		if len(data) > maxCachedUserFile {
			return nil, nil
		}
		files[name] = &fstest.MapFile{Data: data, Mode: 0o644}
	}
	return files, nil
}
