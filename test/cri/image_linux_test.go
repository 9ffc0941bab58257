// SPDX-License-Identifier: Apache-2.0

//go:build linux

package cri

// Images built by the test, without a registry: an OCI image layout in a
// tar, one uncompressed layer, imported with `ctr images import`.

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const (
	// pauseImage is the sandbox image the runtimes are configured with;
	// busyboxImage the containers'. Tagged names, so that the runtime's
	// container status reports them (container.image.name).
	pauseImage     = "mitmexec.test/pause:cri"
	busyboxImage   = "mitmexec.test/busybox:cri"
	busyboxRepo    = "mitmexec.test/busybox"
	hostBusybox    = "/bin/busybox" // busybox-static: no library to bring
	mediaManifest  = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig    = "application/vnd.oci.image.config.v1+json"
	mediaLayerTar  = "application/vnd.oci.image.layer.v1.tar"
	annotationName = "io.containerd.image.name"
)

// layerEntry is one file, directory or symlink of a layer.
type layerEntry struct {
	path   string // inside the image, no leading slash
	src    string // host file for a regular file
	link   string // target of a symlink
	isDir  bool
	rwxMod int64
}

// layerTar writes the entries as an uncompressed layer.
func layerTar(entries []layerEntry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.path, Mode: e.rwxMod, Uname: "root", Gname: "root"}
		var body []byte
		switch {
		case e.isDir:
			h.Typeflag, h.Name = tar.TypeDir, e.path+"/"
		case e.link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.link
		default:
			b, err := os.ReadFile(e.src)
			if err != nil {
				return nil, err
			}
			h.Typeflag, h.Size, body = tar.TypeReg, int64(len(b)), b
		}
		if h.Mode == 0 {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(body); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), tw.Close()
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int               `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// ociArchive writes an OCI image layout tar holding one image named name,
// with one layer and the given entrypoint, and returns its path.
func ociArchive(dir, name string, entries []layerEntry, entrypoint []string) (string, error) {
	layer, err := layerTar(entries)
	if err != nil {
		return "", err
	}
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH, "os": "linux",
		"config": map[string]any{"Entrypoint": entrypoint, "Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digestOf(layer)}},
	})
	if err != nil {
		return "", err
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": mediaManifest,
		"config": descriptor{MediaType: mediaConfig, Digest: digestOf(config), Size: len(config)},
		"layers": []descriptor{{MediaType: mediaLayerTar, Digest: digestOf(layer), Size: len(layer)}},
	})
	if err != nil {
		return "", err
	}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"manifests": []descriptor{{MediaType: mediaManifest, Digest: digestOf(manifest), Size: len(manifest),
			Annotations: map[string]string{annotationName: name}}},
	})
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	put := func(p string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	for _, f := range []struct {
		p string
		b []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
		{"blobs/sha256/" + digestOf(layer)[7:], layer},
		{"blobs/sha256/" + digestOf(config)[7:], config},
		{"blobs/sha256/" + digestOf(manifest)[7:], manifest},
	} {
		if err := put(f.p, f.b); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	out := filepath.Join(dir, strings.ReplaceAll(filepath.Base(name), ":", "-")+".tar")
	return out, os.WriteFile(out, buf.Bytes(), 0o644)
}

// buildImages builds the static pause and the images into dir and returns
// the two archives. The busybox image has busybox's own /bin and an empty
// /usr on which the containers mount the host's /usr read only: the real
// tools (and their libraries, /lib being usr/lib here) run inside the
// container as they are installed on the host.
func buildImages(t *testing.T, dir string) (pause, busybox string) {
	t.Helper()
	pauseBin := filepath.Join(dir, "pause")
	if out, err := exec.Command("gcc", "-static", "-Os", "-o", pauseBin, "testdata/pause.c").CombinedOutput(); err != nil {
		t.Fatalf("building the static pause: %v\n%s", err, out)
	}
	var err error
	pause, err = ociArchive(dir, pauseImage, []layerEntry{{path: "pause", src: pauseBin}}, []string{"/pause"})
	if err != nil {
		t.Fatalf("pause image: %v", err)
	}
	entries := []layerEntry{
		{path: "bin", isDir: true}, {path: "usr", isDir: true}, {path: "etc", isDir: true},
		{path: "tmp", isDir: true, rwxMod: 0o1777}, {path: "proc", isDir: true}, {path: "sys", isDir: true}, {path: "dev", isDir: true},
		{path: "lib", link: "usr/lib"}, {path: "lib64", link: "usr/lib64"},
		{path: "bin/busybox", src: hostBusybox},
	}
	for _, applet := range []string{"sh", "sleep", "cp", "cat", "echo", "true"} {
		entries = append(entries, layerEntry{path: "bin/" + applet, link: "busybox"})
	}
	busybox, err = ociArchive(dir, busyboxImage, entries, []string{"/bin/sleep", "3600"})
	if err != nil {
		t.Fatalf("busybox image: %v", err)
	}
	return pause, busybox
}
